// One Database interface over two engines: PostgreSQL through a `pg` pool, or embedded PGlite (file-backed
// under DATA_DIR, or in memory for `pglite://memory`). Everything above this file speaks Kysely.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, sql, type PostgresPool } from 'kysely';
import pg from 'pg';
import type { Log } from '../../observability/logger.js';
import { PGlitePool } from './pglite-pool.js';
import type { DatabaseSchema } from './schema.js';

export interface DatabaseOptions {
  /** postgres://, postgresql://, pglite://memory, pglite:///abs/dir; undefined means a PGlite under dataDir. */
  url: string | undefined;
  dataDir: string;
  poolSize: number;
  statementTimeoutMs: number;
  applicationName: string;
  logger: Log;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly db: Kysely<DatabaseSchema>;
  /** Round-trips `select 1`; resolves with the latency in milliseconds. */
  ping(): Promise<number>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** Where an embedded database lives: `memory` or a directory. */
export function pgliteLocation(url: string | undefined, dataDir: string): string {
  if (url === undefined) return path.resolve(dataDir, 'pglite');
  const parsed = new URL(url);
  if (parsed.host === 'memory') return 'memory';
  return decodeURIComponent(parsed.host ? `${parsed.host}${parsed.pathname}` : parsed.pathname);
}

export function describeDatabase(url: string | undefined, dataDir: string): string {
  if (url === undefined || url.startsWith('pglite:')) return `pglite:${pgliteLocation(url, dataDir)}`;
  const parsed = new URL(url);
  return `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
}

async function openPglite(location: string): Promise<{ pool: PGlitePool }> {
  // Imported lazily: the WASM build costs start-up time and memory that a PostgreSQL deployment never needs.
  const { PGlite } = await import('@electric-sql/pglite');
  if (location !== 'memory') mkdirSync(location, { recursive: true });
  const pglite = location === 'memory' ? new PGlite() : new PGlite(location);
  await pglite.waitReady;
  return { pool: new PGlitePool(pglite) };
}

function openPostgres(options: DatabaseOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    application_name: options.applicationName,
    statement_timeout: options.statementTimeoutMs || undefined,
    // Fail a checkout fast instead of queueing forever behind a dead server; readiness reports it.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would crash the process.
  pool.on('error', (error) => options.logger.warn({ err: error }, 'idle PostgreSQL connection failed'));
  return pool;
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  const embedded = options.url === undefined || options.url.startsWith('pglite:');
  let pool: PostgresPool;
  let poolStats: () => PoolStats;
  if (embedded) {
    ({ pool } = await openPglite(pgliteLocation(options.url, options.dataDir)));
    poolStats = () => ({ total: 1, idle: 1, waiting: 0 });
  } else {
    const pgPool = openPostgres(options);
    pool = pgPool;
    poolStats = () => ({ total: pgPool.totalCount, idle: pgPool.idleCount, waiting: pgPool.waitingCount });
  }
  const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    kind: embedded ? 'pglite' : 'postgres',
    db,
    async ping() {
      const started = performance.now();
      await sql`select 1`.execute(db);
      return performance.now() - started;
    },
    poolStats,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
