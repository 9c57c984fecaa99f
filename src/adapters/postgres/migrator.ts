// Migrations up, down and status on either engine. Kysely's migrator takes a PostgreSQL advisory lock
// around every run, so replicas that start together apply each migration exactly once.
import { Migrator, NO_MIGRATIONS, type Kysely, type MigrationResult } from 'kysely';
import { errorChain } from '../../lib/errors.js';

// Migrations work on any schema version, so they see the database untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;
import { migrations } from '../../../migrations/index.js';

/** Bookkeeping lives in its own schema so that `down` to the start leaves the application schema empty. */
export const MIGRATION_SCHEMA = 'app_migrations';

export interface MigrationState {
  name: string;
  applied: boolean;
  applied_at: Date | null;
}

export class MigrationFailedError extends Error {
  constructor(
    readonly migration: string | undefined,
    override readonly cause: unknown,
  ) {
    super(`migration ${migration ?? '(setup)'} failed: ${errorChain(cause)}`);
    this.name = 'MigrationFailedError';
  }
}

function migrator(db: AnyDb): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableSchema: MIGRATION_SCHEMA,
  });
}

function unwrap(outcome: { error?: unknown; results?: MigrationResult[] }): MigrationResult[] {
  if (outcome.error !== undefined) {
    const failed = outcome.results?.find((r) => r.status === 'Error');
    throw new MigrationFailedError(failed?.migrationName, outcome.error);
  }
  return outcome.results ?? [];
}

/** Applies every pending migration; returns the names applied. */
export async function migrateUp(db: AnyDb): Promise<string[]> {
  return unwrap(await migrator(db).migrateToLatest()).map((r) => r.migrationName);
}

/** Reverts the last `steps` migrations, or all of them when steps is 'all'; returns the names reverted. */
export async function migrateDown(db: AnyDb, steps: number | 'all' = 1): Promise<string[]> {
  const m = migrator(db);
  if (steps === 'all') return unwrap(await m.migrateTo(NO_MIGRATIONS)).map((r) => r.migrationName);
  const reverted: string[] = [];
  for (let i = 0; i < steps; i++) {
    const results = unwrap(await m.migrateDown());
    if (results.length === 0) break;
    reverted.push(...results.map((r) => r.migrationName));
  }
  return reverted;
}

export async function migrationStatus(db: AnyDb): Promise<MigrationState[]> {
  const list = await migrator(db).getMigrations();
  return list.map((m) => ({
    name: m.name,
    applied: m.executedAt !== undefined,
    applied_at: m.executedAt ?? null,
  }));
}

export async function pendingMigrations(db: AnyDb): Promise<string[]> {
  return (await migrationStatus(db)).filter((m) => !m.applied).map((m) => m.name);
}
