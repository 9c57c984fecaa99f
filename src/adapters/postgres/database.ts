// One Database interface over two engines: PostgreSQL through a `pg` pool, or embedded PGlite (file-backed
// under DATA_DIR, or in memory for `pglite://memory`). Everything above this file speaks Kysely. Every
// query gets a client span (inside a trace) and, once instrument() is called, a duration metric. A
// file-backed PGlite is opened only under its lock (embedded-lock.ts): one process at a time.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { SpanKind, SpanStatusCode, context, trace, type Attributes } from '@opentelemetry/api';
import {
  Kysely,
  PostgresDialect,
  sql,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
} from 'kysely';
import pg from 'pg';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { dependencyUnavailable } from '../../lib/errors.js';
import type { Log } from '../../lib/log.js';
import { TRACER_NAME } from '../../observability/tracing.js';
import { acquireEmbeddedLock, type HeldLock } from './embedded-lock.js';
import { PGlitePool } from './pglite-pool.js';
import type { DatabaseSchema } from './schema.js';

export interface DatabaseOptions {
  /** postgres://, postgresql://, pglite://memory, pglite:///abs/dir; undefined means a PGlite under dataDir. */
  url: string | undefined;
  dataDir: string;
  poolSize: number;
  /**
   * Server-side statement timeout (0: none). The client gives up on a query 500 ms after it (see
   * QUERY_DEADLINE_SLACK_MS), so a silent network costs a request a bounded wait, not a hang.
   */
  statementTimeoutMs: number;
  /** How long a checkout may wait for a pooled connection or a new one (default 1000 ms). */
  connectTimeoutMs?: number;
  applicationName: string;
  /** Who opens an embedded database, as its lock names the holder (default: `applicationName`). */
  owner?: string;
  logger: Log;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/** Where a file-backed embedded database keeps its files, its lock and its local admin socket. */
export interface EmbeddedPaths {
  /** The PGlite data directory. */
  readonly directory: string;
  readonly lock: string;
  readonly socket: string;
  /** How messages name it: DATA_DIR as configured, or the directory of a `pglite:` URL. */
  readonly label: string;
}

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly db: Kysely<DatabaseSchema>;
  /** Set for a file-backed embedded database (not for PostgreSQL or `pglite://memory`). */
  readonly embedded: EmbeddedPaths | undefined;
  /**
   * A consistent copy of the embedded data directory (gzipped tar, after a checkpoint) taken between
   * transactions; undefined for PostgreSQL, whose backups are pg_dump's job.
   */
  dumpEmbedded: (() => Promise<Blob>) | undefined;
  /** Round-trips `select 1`; resolves with the latency in milliseconds. */
  ping(): Promise<number>;
  poolStats(): PoolStats;
  /**
   * Registers `db_query_duration_seconds{operation}` and `db_pool_connections{state}` in `registry` and
   * records every query of this database in it (whichever app sent it) until the returned function is
   * called. Optional: the CLI and tests use a database without metrics.
   */
  instrument(registry: Registry): () => void;
  close(): Promise<void>;
}

// From 1 ms (an indexed read on a warm pool) to 5 s (the default statement timeout).
export const DB_QUERY_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const OPERATIONS = ['select', 'insert', 'update', 'delete', 'other'] as const;
type Operation = (typeof OPERATIONS)[number];
type QueryObserver = (operation: Operation, seconds: number) => void;

// A statement's first word: bounded (a keyword, at most 16 letters) so it can name spans.
const VERB = /^\s*([A-Za-z]{1,16})\b/;
const IDENTIFIER = String.raw`((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)`;
// Targets that are unambiguous in the SQL text: the one table a write names, or a select's only FROM.
const TARGET: Record<string, RegExp> = {
  INSERT: new RegExp(String.raw`^\s*insert\s+into\s+${IDENTIFIER}`, 'i'),
  UPDATE: new RegExp(String.raw`^\s*update\s+${IDENTIFIER}`, 'i'),
  DELETE: new RegExp(String.raw`^\s*delete\s+from\s+${IDENTIFIER}`, 'i'),
  SELECT: new RegExp(String.raw`\bfrom\s+${IDENTIFIER}`, 'i'),
};

// A query whose answer has not arrived this long after the statement timeout would have ended it is on a
// dead connection (packets dropped, server gone silent): the client gives up and discards the connection.
export const QUERY_DEADLINE_SLACK_MS = 500;

// SQLSTATE classes and codes that mean "the database cannot serve now", not "this query is wrong":
// 08 connection exception, 57P01-57P03 shutdown or start-up, 53300 too many connections.
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);
// pg and pg-pool report lost or timed-out connections with these messages and no code.
const UNAVAILABLE_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error)/;

/** Whether `error` says the database is unreachable or not serving (as opposed to a failed statement). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) {
    return true;
  }
  return UNAVAILABLE_MESSAGE.test(error.message);
}

/**
 * Logs the database going away once, and its return once, instead of a line per failed request during
 * an outage.
 */
class AvailabilityLog {
  #down = false;
  constructor(private readonly logger: Log) {}

  failed(error: unknown) {
    if (this.#down) return;
    this.#down = true;
    this.logger.warn({ err: error }, 'database unavailable: requests that need it answer 503');
  }

  succeeded() {
    if (!this.#down) return;
    this.#down = false;
    this.logger.info('database available again');
  }
}

function operationOf(verb: string | undefined): Operation {
  const lower = verb?.toLowerCase();
  return lower === 'select' || lower === 'insert' || lower === 'update' || lower === 'delete'
    ? lower
    : 'other';
}

function targetOf(verb: string, text: string): string | undefined {
  const pattern = TARGET[verb];
  if (pattern === undefined) return undefined;
  // A select with subqueries or several FROMs has no single table to name.
  if (verb === 'SELECT' && text.search(/\bfrom\b[\s\S]*\bfrom\b/i) !== -1) return undefined;
  return pattern.exec(text)?.[1]?.replaceAll('"', '');
}

/**
 * Wraps the pool Kysely drives, the one seam both engines share. Each query gets a client span started in
 * the caller's context (Kysely awaits connect() and query() in the caller's async chain, so the parent is
 * right) and ended when the result is in, errors recorded as they happen; Kysely's `log` option would
 * report the same queries only after the fact, and only with logging switched on. The first query after a
 * checkout also counts the wait for that connection: it is what the caller waited for.
 *
 * Queries outside any trace (start-up, the revocation catch-up every 500 ms) are measured but start no
 * trace of their own: otherwise they would be a root trace twice a second.
 */
function instrumentPool(
  pool: PostgresPool,
  observers: Set<QueryObserver>,
  base: Attributes,
  availability: AvailabilityLog,
): PostgresPool {
  const wrapped = new WeakMap<PostgresPoolClient, PostgresPoolClient>();
  const checkedOutAt = new WeakMap<PostgresPoolClient, number>();
  // Clients whose connection failed mid-query: released with the error so the pool discards them (pg
  // keeps a client whose query timed out on the client side, its protocol state stuck on that query).
  const broken = new WeakMap<PostgresPoolClient, Error>();

  /** A connection failure becomes a 503 for the caller; any other error is the statement's own. */
  function unavailable(client: PostgresPoolClient | undefined, error: unknown): unknown {
    if (!isDatabaseUnavailable(error)) return error;
    if (client !== undefined) broken.set(client, error as Error);
    availability.failed(error);
    return dependencyUnavailable('database', error);
  }

  async function run<R>(
    client: PostgresPoolClient,
    started: number,
    text: string,
    parameters: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> {
    const verb = VERB.exec(text)?.[1]?.toUpperCase();
    const parent = trace.getSpan(context.active());
    let span;
    if (parent !== undefined) {
      const table = verb === undefined ? undefined : targetOf(verb, text);
      // The parameterized SQL only: parameter values (passwords, tokens, user data) never reach a span.
      const attributes: Attributes = { ...base, 'db.query.text': text };
      if (verb !== undefined) attributes['db.operation.name'] = verb;
      if (table !== undefined) attributes['db.collection.name'] = table;
      const name = verb === undefined ? 'db.query' : table === undefined ? verb : `${verb} ${table}`;
      span = trace
        .getTracer(TRACER_NAME)
        .startSpan(name, { kind: SpanKind.CLIENT, attributes, startTime: performance.timeOrigin + started });
    }
    try {
      const result = await client.query<R>(text, parameters);
      availability.succeeded();
      return result;
    } catch (error) {
      if (span !== undefined) {
        const code = (error as { code?: unknown }).code;
        span.recordException(error as Error);
        span.setAttribute('error.type', typeof code === 'string' ? code : 'error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      }
      throw unavailable(client, error);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const operation = operationOf(verb);
      for (const observe of observers) observe(operation, seconds);
      span?.end();
    }
  }

  function wrap(client: PostgresPoolClient): PostgresPoolClient {
    let traced = wrapped.get(client);
    if (traced === undefined) {
      const self: PostgresPoolClient = {
        query(textOrCursor: string | PostgresCursor<unknown>, parameters?: ReadonlyArray<unknown>) {
          // Cursors (Kysely's stream()) pass through untraced: a span would end before the rows are read.
          if (typeof textOrCursor !== 'string') return client.query(textOrCursor);
          const started = checkedOutAt.get(self) ?? performance.now();
          checkedOutAt.delete(self);
          return run(client, started, textOrCursor, parameters ?? []);
        },
        release: () => {
          const error = broken.get(client);
          // pg's release(error) destroys the connection instead of returning it to the pool.
          if (error === undefined) client.release();
          else (client as unknown as { release(error: Error): void }).release(error);
        },
      } as PostgresPoolClient;
      traced = self;
      // The same wrapper for the same client: Kysely keys its connection objects by client identity.
      wrapped.set(client, traced);
    }
    return traced;
  }

  return {
    async connect() {
      const started = performance.now();
      let client: PostgresPoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw unavailable(undefined, error);
      }
      const traced = wrap(client);
      checkedOutAt.set(traced, started);
      return traced;
    },
    end: () => pool.end(),
  };
}

function instrumentWith(
  registry: Registry,
  observers: Set<QueryObserver>,
  poolStats: () => PoolStats,
): () => void {
  const duration = new Histogram({
    name: 'db_query_duration_seconds',
    help: 'Time of one database query until its result, by operation (select, insert, update, delete, other); the first query of a checkout includes the wait for its connection.',
    labelNames: ['operation'],
    buckets: DB_QUERY_DURATION_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'db_pool_connections',
    help: 'Database connections by state: idle, in_use, and waiting (callers queued for a connection).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const stats = poolStats();
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'in_use' }, stats.total - stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  const children = new Map(OPERATIONS.map((operation) => [operation, duration.labels({ operation })]));
  const observer: QueryObserver = (operation, seconds) => children.get(operation)!.observe(seconds);
  observers.add(observer);
  return () => observers.delete(observer);
}

/** Where an embedded database lives: `memory` or a directory. */
export function pgliteLocation(url: string | undefined, dataDir: string): string {
  if (url === undefined) return path.resolve(dataDir, 'pglite');
  const parsed = new URL(url);
  if (parsed.host === 'memory') return 'memory';
  return decodeURIComponent(parsed.host ? `${parsed.host}${parsed.pathname}` : parsed.pathname);
}

/**
 * The lock and the admin socket sit beside the data directory, not in it: PGlite creates the directory
 * itself on first start (initdb wants it empty), and the lock must exist before PGlite touches anything.
 */
export function embeddedPaths(url: string | undefined, dataDir: string): EmbeddedPaths | undefined {
  if (url !== undefined && !url.startsWith('pglite:')) return undefined;
  const directory = pgliteLocation(url, dataDir);
  if (directory === 'memory') return undefined;
  return {
    directory,
    lock: `${directory}.lock`,
    socket: `${directory}.sock`,
    label: url === undefined ? dataDir : directory,
  };
}

export function describeDatabase(url: string | undefined, dataDir: string): string {
  if (url === undefined || url.startsWith('pglite:')) return `pglite:${pgliteLocation(url, dataDir)}`;
  const parsed = new URL(url);
  return `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
}

async function openPglite(location: string, loadDataDir?: Blob): Promise<PGlitePool> {
  // Imported lazily: the WASM build costs start-up time and memory that a PostgreSQL deployment never needs.
  const { PGlite } = await import('@electric-sql/pglite');
  if (location !== 'memory') mkdirSync(location, { recursive: true, mode: 0o700 });
  const pglite = location === 'memory' ? new PGlite() : new PGlite(location, { loadDataDir });
  await pglite.waitReady;
  return new PGlitePool(pglite);
}

/**
 * Creates the embedded database at `paths` from a dump of dumpEmbedded(). The caller holds its lock, and
 * the directory must not hold a database yet (PGlite refuses to load over one).
 */
export async function loadEmbedded(paths: EmbeddedPaths, tarball: Blob): Promise<void> {
  const pool = await openPglite(paths.directory, tarball);
  await pool.end();
}

function openPostgres(options: DatabaseOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    application_name: options.applicationName,
    statement_timeout: options.statementTimeoutMs || undefined,
    // The client's own deadline: the server ends a slow statement first, so this one fires only when
    // the answer cannot arrive (a silent network, a frozen server).
    query_timeout: options.statementTimeoutMs
      ? options.statementTimeoutMs + QUERY_DEADLINE_SLACK_MS
      : undefined,
    // A checkout (queueing for a pooled connection, or opening one) fails fast instead of waiting
    // behind a dead server: the request answers 503 and readiness reports it.
    connectionTimeoutMillis: options.connectTimeoutMs ?? 1_000,
    // Dead peers are noticed on idle connections too, not only when a query is sent.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
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
  let lock: HeldLock | undefined;
  let dumpEmbedded: (() => Promise<Blob>) | undefined;
  const paths = embeddedPaths(options.url, options.dataDir);
  const attributes: Attributes = { 'db.system.name': 'postgresql' };
  if (embedded) {
    if (paths !== undefined) {
      // Before PGlite opens a single file: a second opener must never touch them.
      lock = await acquireEmbeddedLock(
        paths.lock,
        paths.label,
        options.owner ?? options.applicationName,
        options.logger,
      );
    }
    let pglite: PGlitePool;
    try {
      pglite = await openPglite(pgliteLocation(options.url, options.dataDir));
    } catch (error) {
      await lock?.release();
      throw error;
    }
    pool = pglite;
    poolStats = () => ({ total: 1, idle: 1 - pglite.inUse, waiting: pglite.waiting });
    if (paths !== undefined) dumpEmbedded = () => pglite.dumpDataDir();
  } else {
    const pgPool = openPostgres(options);
    pool = pgPool;
    poolStats = () => ({ total: pgPool.totalCount, idle: pgPool.idleCount, waiting: pgPool.waitingCount });
    const url = new URL(options.url!);
    attributes['server.address'] = url.hostname;
    attributes['server.port'] = Number(url.port || 5432);
    attributes['db.namespace'] = decodeURIComponent(url.pathname.slice(1));
  }
  const observers = new Set<QueryObserver>();
  const db = new Kysely<DatabaseSchema>({
    dialect: new PostgresDialect({
      pool: instrumentPool(pool, observers, attributes, new AvailabilityLog(options.logger)),
    }),
  });
  let closed = false;
  return {
    kind: embedded ? 'pglite' : 'postgres',
    db,
    embedded: paths,
    dumpEmbedded,
    async ping() {
      const started = performance.now();
      await sql`select 1`.execute(db);
      return performance.now() - started;
    },
    poolStats,
    instrument: (registry) => instrumentWith(registry, observers, poolStats),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.destroy();
      } finally {
        await lock?.release();
      }
    },
  };
}
