// The servers' setup: the service's environment (rate limits raised above the load, the demo admin, the
// embedded PGlite database in a temporary directory) and what the variants depend on: the shared Redis,
// private redis-servers that can be killed, an OTLP/HTTP sink; and bench:workers' PostgreSQL database.
import type { ChildProcess } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { BenchError } from './common.js';
import {
  READY_TIMEOUT_MS,
  freePort,
  launch,
  spawnService,
  startRaw,
  tempDir,
  type Runtime,
  type Server,
  type Target,
} from './processes.js';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
// The limiter's deadline on Redis: the outage run checks no request waited much longer than this.
export const REDIS_DEADLINE_MS = 50;

// Rate limits far above any load the bench makes, for every tier of both route groups: every request still
// goes through the limiter (its cost is measured) but none is refused, and every login answers 200.
const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };
const TIERS = ['anonymous', 'user', 'api_key', 'admin'] as const;
const BENCH_RATE_LIMITS = JSON.stringify({
  api: Object.fromEntries(TIERS.map((tier) => [tier, UNLIMITED])),
  auth: Object.fromEntries(TIERS.map((tier) => [tier, UNLIMITED])),
});

/** The service's environment for `npm run bench`: this process's, with the bench's settings over it. */
export function serviceEnv(
  port: number,
  dataDir: string,
  extraEnv: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // production refuses the embedded database; test validates config the same way otherwise.
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    MIGRATE_ON_START: 'true',
    PORT: String(port),
    HOST: '127.0.0.1',
    // No load balancer to drain for: stop at once so the run ends promptly.
    SHUTDOWN_DRAIN_SECONDS: '0',
    // A demo admin whose password is logged once (development and test only): the identity cases use it.
    SEED_DEMO_USER: 'true',
    // The one access token must outlive the longest run (8 cases x (60 + 600) s is 88 min).
    ACCESS_TOKEN_EXPIRE_MINUTES: '1440',
    // The default policies would answer 429 to nearly every request of a load run (one client IP).
    RATE_LIMITS: process.env.RATE_LIMITS ?? BENCH_RATE_LIMITS,
  };
  for (const name of [
    'DATABASE_URL',
    'METRICS_PORT',
    'FAULT_INJECTION_ENABLED',
    'RATE_LIMIT_STORAGE_URI',
    'REDIS_URL',
    'OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_TRACES_SAMPLER',
  ])
    delete env[name];
  Object.assign(env, extraEnv);
  return env;
}

/** How serviceEnv() configures the service, for the settings in the JSON results. */
export function serviceSettings() {
  return {
    serviceEnvironment: 'test',
    serviceLogLevel: 'info',
    database: 'embedded PGlite',
    identity: 'demo admin (SEED_DEMO_USER=true), one access token for the whole run',
    rateLimits:
      process.env.RATE_LIMITS === undefined ? 'raised above the load' : 'RATE_LIMITS from the environment',
  };
}

/** A new directory for an embedded PGlite database, removed at the end of the run. */
export const pgliteDir = () => tempDir('bench-pglite-');

/** Starts the service with serviceEnv() on a free port, logging to `logFile`, on `options.runtime`. */
export async function startService(
  logFile: string,
  dataDir: string,
  extraEnv: Record<string, string> = {},
  options: { runtime?: Runtime; nodeArgs?: string[] } = {},
): Promise<Server> {
  const port = await freePort();
  return spawnService({ port, env: serviceEnv(port, dataDir, extraEnv), logFile, ...options });
}

/** The service (default configuration) and the raw baseline, both on core 0, both on `runtime`. */
export async function startServers(
  logFile: string,
  dataDir: string,
  runtime?: Runtime,
): Promise<Record<Target, Server>> {
  try {
    const service = await startService(logFile, dataDir, {}, { runtime });
    const raw = await startRaw(runtime);
    return { service, raw };
  } catch (error) {
    if (error instanceof BenchError) throw new BenchError(`server failed to start: ${error.message}`);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Dependencies of the variants: an OTLP/HTTP sink that accepts and counts what tracing exports (in the
// bench's own process: a collector is another process in production too), and private Redis servers.

export interface Sink {
  url: string;
  exports: () => number;
  close: () => Promise<void>;
}

export async function startSink(): Promise<Sink> {
  let exports = 0;
  const server = createHttpServer((req, res) => {
    req.resume();
    req.once('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') exports += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    exports: () => exports,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379), timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A throwaway redis-server on core 1 (with the load), so it can be killed without touching anyone's. */
export async function startPrivateRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = launch(1, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', ''], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await reachable(url))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new BenchError('redis-server did not start');
    await sleep(100);
  }
  return { url, child };
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL (bench:workers): a database of its own, created through an administrative connection that
// stays open until it is dropped.

export interface Database {
  url: string;
  drop: () => Promise<void>;
}

export async function createDatabase(adminUrl: string, name: string): Promise<Database> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      try {
        await admin.query(`drop database if exists ${name} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}
