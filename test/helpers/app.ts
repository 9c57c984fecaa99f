// Boots the real app for a test: real config loading, the embedded database in memory unless a test
// passes DATABASE_URL, and log lines captured so tests can assert on them.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createDatabase, type Database } from '../../src/adapters/postgres/database.js';
import { buildApp, startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Clock } from '../../src/lib/clock.js';
import { loggerOptions } from '../../src/observability/logger.js';

export interface TestApp {
  app: App;
  config: Config;
  /** Every JSON log line written so far. */
  logs: Record<string, unknown>[];
}

// Redis keys of one test file never meet another's (or an earlier run's) in the shared Redis.
const FILE_REDIS_PREFIX = `test-${randomBytes(6).toString('hex')}:`;

// Tests send thousands of requests from one address; limits that never bite, unless a test sets its own.
const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };
const NO_LIMITS = JSON.stringify({
  api: { anonymous: UNLIMITED, user: UNLIMITED, api_key: UNLIMITED, admin: UNLIMITED },
  auth: { anonymous: UNLIMITED },
});

// Where outbound calls may go in a test: this machine only. A test that forgets its stub must fail at once,
// not call the public beacon (or anything else) from CI.
const OUTBOUND_SETTINGS = [
  'DATABASE_URL',
  'REDIS_URL',
  'RATE_LIMIT_STORAGE_URI',
  'CIRCUIT_BREAKER_CACHE_URL',
  'BEACON_URL',
  'OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'PROMETHEUS_BASE_URL',
  'TRIAGE_LLM_BASE_URL',
] as const satisfies readonly (keyof Config)[];
const LOOPBACK_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;
// The discard port: nothing listens there, so a call that was not meant to happen is refused at once.
const NOWHERE = 'http://127.0.0.1:9';

/** Refuses a configuration that would send a test's traffic off this machine. */
export function sealOutbound(config: Config): Config {
  for (const name of OUTBOUND_SETTINGS) {
    const value = config[name];
    if (value === undefined) continue;
    const url = new URL(value);
    if (url.protocol === 'pglite:' || url.protocol === 'memory:') continue;
    if (!LOOPBACK_HOSTS.test(url.hostname))
      throw new Error(`test config: ${name} points off this machine (${url.host}); use a loopback stub`);
  }
  return config;
}

export function testConfig(env: Record<string, string> = {}): Config {
  const config = loadConfig(
    {
      ENVIRONMENT: 'test',
      DATABASE_URL: 'pglite://memory',
      LOG_LEVEL: 'info',
      REDIS_KEY_PREFIX: FILE_REDIS_PREFIX,
      RATE_LIMITS: NO_LIMITS,
      // A loaded CI machine must not make tests shed their own requests; shedding has its own test.
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
      LOAD_SHED_MAX_HEAP_USED_RATIO: '0',
      BEACON_URL: NOWHERE,
      ...env,
    },
    { cwd: '/nonexistent' },
  );
  return sealOutbound(config);
}

// One in-memory PGlite per test file (vitest isolates modules per file): starting one costs about a second
// and 100+ MB, so the apps of a file share it unless a test asks for its own DATABASE_URL.
let shared: Promise<Database> | undefined;
function sharedDatabase(): Promise<Database> {
  shared ??= createDatabase({
    url: 'pglite://memory',
    dataDir: '.',
    poolSize: 1,
    statementTimeoutMs: 0,
    applicationName: 'test',
    logger: pino({ level: 'silent' }),
  });
  return shared;
}

export async function buildTestApp(
  env: Record<string, string> = {},
  options: { start?: boolean; ownDatabase?: boolean; clock?: Clock } = {},
): Promise<TestApp> {
  const config = testConfig(env);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = pino(loggerOptions(config, 'reliability-api', 'test'), sink);
  const database =
    options.ownDatabase === true || env.DATABASE_URL !== undefined ? undefined : await sharedDatabase();
  const app = await buildApp(config, { logger, database, clock: options.clock });
  if (options.start !== false) {
    await app.ready();
    await startApp(app, config);
  }
  return { app, config, logs };
}

/**
 * The app of a describe block (or a file): built before its tests, closed after them. `env` may be a
 * function, read when the app is built, for values an earlier beforeAll produces (a stub's URL, a database).
 * The returned object reads the current app, so it can be destructured only inside a test.
 */
export function useTestApp(
  env: Record<string, string> | (() => Record<string, string>) = {},
  options: Parameters<typeof buildTestApp>[1] = {},
): TestApp {
  let current: TestApp | undefined;
  beforeAll(async () => {
    current = await buildTestApp(typeof env === 'function' ? env() : env, options);
  });
  afterAll(async () => {
    await current?.app.close();
  });
  const get = (): TestApp => {
    if (current === undefined) throw new Error('useTestApp: the app exists only inside its tests');
    return current;
  };
  return {
    get app() {
      return get().app;
    },
    get config() {
      return get().config;
    },
    get logs() {
      return get().logs;
    },
  };
}
