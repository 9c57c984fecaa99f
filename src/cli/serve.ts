// `serve`: build the app, listen, finish initialization (migrations when enabled), and shut down gracefully.
import { buildApp, startApp } from '../app.js';
import type { Config } from '../config/schema.js';
import { buildInfo } from '../lib/build-info.js';
import { createLogger } from '../observability/logger.js';
import { installShutdown } from './shutdown.js';

export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config, buildInfo.name, buildInfo.version);
  const app = await buildApp(config, { logger });
  const exit = (code: number) => {
    // Let pino's asynchronous destination write the last lines before the process ends (bounded).
    setTimeout(() => process.exit(code), 1_000).unref();
    logger.flush(() => process.exit(code));
  };
  const shutdown = installShutdown({ app, config, exit });
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
}
