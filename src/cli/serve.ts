// `serve`: build the app, listen, finish initialization (migrations when enabled), and shut down gracefully.
// With WEB_CONCURRENCY > 1 this runs in each worker process, under a primary (cluster/primary.ts).
import type { AddressInfo } from 'node:net';
import { buildApp, startApp, type App } from '../app.js';
import type { Config } from '../config/schema.js';
import { buildInfo } from '../lib/build-info.js';
import { hasActiveAdmin } from '../modules/users/repository.js';
import { LOG_EXPORT_DEADLINE_MS, startLogExport } from '../observability/log-export.js';
import { createLogger } from '../observability/logger.js';
import { PrimaryLink } from './cluster/worker.js';
import { installShutdown } from './shutdown.js';
import { startStallGuard } from './stall-guard.js';

export interface WorkerIdentity {
  /** The worker's slot, 1..WEB_CONCURRENCY: on its log lines and its metrics. */
  slot: string;
}

export async function serve(config: Config, worker?: WorkerIdentity): Promise<void> {
  const logExport =
    config.OTEL_LOGS_EXPORTER === 'otlp' ? await startLogExport(config, buildInfo.version) : undefined;
  const root = createLogger(config, buildInfo.name, buildInfo.version, undefined, logExport?.write);
  const logger = worker === undefined ? root : root.child({ worker: worker.slot });
  const primary = worker === undefined ? undefined : new PrimaryLink();
  const app = await buildApp(config, { logger, metricsSource: primary?.metrics });
  // Once the app is built: starting the embedded database compiles its WASM and runs initdb in one
  // synchronous stretch of seconds, which is start-up work, not a stall.
  if (config.EVENT_LOOP_STALL_EXIT_SECONDS > 0)
    startStallGuard({
      exitAfterSeconds: config.EVENT_LOOP_STALL_EXIT_SECONDS,
      service: buildInfo.name,
      version: buildInfo.version,
    });
  const exit = (code: number) => {
    // Let the last records reach the collector, then stdout's buffered access lines be written
    // before the process ends (both bounded).
    setTimeout(
      () => process.exit(code),
      1_000 + (logExport === undefined ? 0 : LOG_EXPORT_DEADLINE_MS),
    ).unref();
    const flushed = logExport === undefined ? Promise.resolve(true) : logExport.shutdown();
    void flushed.then((complete) => {
      if (!complete)
        root.warn('log export: records not sent before shutdown (the collector did not take them)');
      root.flush(() => process.exit(code));
    });
  };
  const shutdown = installShutdown({ app, config, exit, signals: worker === undefined });
  // Listen before migrating: the startup probe must be able to answer 503 while migrations run.
  await app.listen({ port: config.PORT, host: config.HOST });
  try {
    await startApp(app, config);
  } catch (error) {
    app.log.fatal({ err: error }, 'initialization failed');
    await shutdown('initialization failed', 1);
    return;
  }
  app.log.info(
    { environment: config.ENVIRONMENT, migrate_on_start: config.MIGRATE_ON_START },
    'ready to serve',
  );
  primary?.attach(app, config, shutdown, exit);
  if (config.ENVIRONMENT === 'development' && (worker === undefined || worker.slot === '1'))
    await firstRunHint(app, config);
}

/** Until the first admin exists, a development server says how to create one, and where the docs are. */
async function firstRunHint(app: App, config: Config): Promise<void> {
  if (await hasActiveAdmin(app.database.db)) return;
  const { port } = app.server.address() as AddressInfo;
  const wildcard = ['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(config.HOST);
  const host = wildcard ? 'localhost' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  const docs = `http://${host}:${port}/docs`;
  const command = "echo '<password>' | npx reliability-api create-user --username admin --role admin";
  app.log.info(
    { create_first_admin: command, docs },
    `no admin yet: create the first one in another terminal with: ${command} (API docs: ${docs})`,
  );
}
