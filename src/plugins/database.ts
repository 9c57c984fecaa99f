// Opens the database (PostgreSQL or embedded PGlite) for the app and closes it in onClose, after the
// HTTP server has stopped and in-flight requests have finished. Its query and pool metrics go to the app's
// registry, whoever opened it.
import fp from 'fastify-plugin';
import { createDatabase, describeDatabase, type Database } from '../adapters/postgres/database.js';
import type { Config } from '../config/schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: Database;
  }
}

export interface DatabasePluginOptions {
  config: Pick<
    Config,
    'DATABASE_URL' | 'DATA_DIR' | 'DB_POOL_SIZE' | 'DB_STATEMENT_TIMEOUT_MS' | 'DB_CONNECT_TIMEOUT_MS'
  >;
  /** A database opened by the caller (tests, CLI); the caller then owns closing it. */
  database?: Database;
}

export default fp(
  async (app, opts: DatabasePluginOptions) => {
    const { config } = opts;
    const database =
      opts.database ??
      (await createDatabase({
        url: config.DATABASE_URL,
        dataDir: config.DATA_DIR,
        poolSize: config.DB_POOL_SIZE,
        statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
        connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
        applicationName: 'reliability-api',
        owner: 'reliability-api serve',
        logger: app.log,
      }));
    app.log.info({ database: describeDatabase(config.DATABASE_URL, config.DATA_DIR) }, 'database opened');
    app.decorate('database', database);
    const uninstrument = database.instrument(app.metrics.registry);
    app.addHook('onClose', async () => {
      // A database the caller owns outlives this app: it stops reporting into this app's registry.
      uninstrument();
      if (opts.database !== undefined) return;
      await database.close();
      app.log.info('database closed');
    });
  },
  { name: 'database', dependencies: ['metrics'] },
);
