// Migrations up, down and up again on both engines, the schema left empty at the bottom, and concurrent
// migrators (two replicas starting together) serialized by the advisory lock.
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type Database } from '../../src/adapters/postgres/database.js';
import {
  MIGRATION_SCHEMA,
  migrateDown,
  migrateUp,
  migrationStatus,
  pendingMigrations,
} from '../../src/adapters/postgres/migrator.js';
import { buildTestApp } from '../helpers/app.js';
import { useTestDatabases } from '../helpers/services.js';
import { migrations } from '../../migrations/index.js';

const silent = pino({ level: 'silent' });
const allNames = Object.keys(migrations);

async function open(url: string): Promise<Database> {
  return createDatabase({
    url,
    dataDir: '.',
    poolSize: 4,
    statementTimeoutMs: 5_000,
    applicationName: 'test',
    logger: silent,
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function publicTables(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables where table_schema = 'public' order by 1`.execute(
    db,
  );
  return rows.map((r) => r.name);
}

function roundTrip(label: string, connect: () => Promise<Database>) {
  describe(label, () => {
    let database: Database;
    beforeAll(async () => {
      database = await connect();
    });
    afterAll(async () => {
      await database.close();
    });

    it('when migrated up, down to the start and up again, then each step leaves the expected schema', async () => {
      expect(await pendingMigrations(database.db)).toEqual(allNames);
      expect(await migrateUp(database.db)).toEqual(allNames);
      expect(await publicTables(database.db)).toContain('users');
      expect(await migrateUp(database.db)).toEqual([]);
      expect(
        (await migrationStatus(database.db)).every((m) => m.applied && m.applied_at instanceof Date),
      ).toBe(true);

      expect(await migrateDown(database.db, 'all')).toEqual([...allNames].reverse());
      expect(await publicTables(database.db)).toEqual([]);
      expect(await migrateDown(database.db, 1)).toEqual([]);

      expect(await migrateUp(database.db)).toEqual(allNames);
      expect(await pendingMigrations(database.db)).toEqual([]);
    });

    it('when the users table exists, then usernames are unique without regard to case', async () => {
      await database.db
        .insertInto('users')
        .values({ username: 'Alice', password_hash: 'x', role: 'user' })
        .execute();
      await expect(
        database.db
          .insertInto('users')
          .values({ username: 'alice', password_hash: 'y', role: 'user' })
          .execute(),
      ).rejects.toThrow(/users_username_lower_key|duplicate/);
    });

    it('when migrating down one step, then only the last migration is reverted', async () => {
      const reverted = await migrateDown(database.db, 1);
      expect(reverted).toEqual([allNames.at(-1)]);
      await migrateUp(database.db);
    });
  });
}

roundTrip('on embedded PGlite', () => open('pglite://memory'));

describe.skipIf(!inject('postgresAvailable'))('on PostgreSQL', () => {
  const { fresh } = useTestDatabases();

  roundTrip('round trip', async () => open((await fresh('migrations')).url));

  it('when bookkeeping lives in its own schema, then the public schema is empty at the start', async () => {
    const { url } = await fresh('schema');
    const database = await open(url);
    try {
      await migrateUp(database.db);
      await migrateDown(database.db, 'all');
      expect(await publicTables(database.db)).toEqual([]);
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from information_schema.tables where table_schema = ${MIGRATION_SCHEMA}`.execute(
        database.db,
      );
      expect(rows[0]?.n).toBeGreaterThan(0);
    } finally {
      await database.close();
    }
  });

  it('when several migrators start together, then each migration is applied exactly once', async () => {
    const { url } = await fresh('concurrent');
    const replicas = await Promise.all(Array.from({ length: 4 }, () => open(url)));
    try {
      const applied = await Promise.all(replicas.map((r) => migrateUp(r.db)));
      expect(applied.flat().sort()).toEqual([...allNames].sort());
      expect(await pendingMigrations(replicas[0]!.db)).toEqual([]);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('when the app runs on PostgreSQL, then it migrates on start and reports the database ready', async () => {
    const { url } = await fresh('app');
    const t = await buildTestApp({ DATABASE_URL: url, DB_POOL_SIZE: '3' });
    try {
      expect(t.app.database.kind).toBe('postgres');
      const ready = await t.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json().checks.database.status).toBe('up');
      expect(await pendingMigrations(t.app.database.db)).toEqual([]);
      expect((await t.app.inject({ url: '/v1/random?min=1&max=6' })).statusCode).toBe(200);
    } finally {
      await t.app.close();
    }
  });
});
