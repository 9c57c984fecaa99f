// Boots the real app for a test: real config loading, the embedded database in memory unless a test
// passes DATABASE_URL, and log lines captured so tests can assert on them.
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildApp, startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { loggerOptions } from '../../src/observability/logger.js';

export interface TestApp {
  app: App;
  config: Config;
  /** Every JSON log line written so far. */
  logs: Record<string, unknown>[];
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ENVIRONMENT: 'test', DATABASE_URL: 'pglite://memory', LOG_LEVEL: 'info', ...env }, { cwd: '/nonexistent' });
}

export async function buildTestApp(env: Record<string, string> = {}, options: { start?: boolean } = {}): Promise<TestApp> {
  const config = testConfig(env);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = pino(loggerOptions(config, 'reliability-api', 'test'), sink);
  const app = await buildApp(config, { logger });
  if (options.start !== false) {
    await app.ready();
    await startApp(app, config);
  }
  return { app, config, logs };
}
