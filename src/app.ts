// buildApp(): the whole service as a Fastify instance, plugins registered in a fixed order. It never reads
// the environment and never listens; the CLI (serve) and the tests decide that.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import type { Database } from './adapters/postgres/database.js';
import { migrateUp } from './adapters/postgres/migrator.js';
import type { Config } from './config/schema.js';
import { buildInfo } from './lib/build-info.js';
import randomRoutes from './modules/random/routes.js';
import { AccessLogController } from './observability/access-log.js';
import { createLogger } from './observability/logger.js';
import database from './plugins/database.js';
import errorHandler from './plugins/error-handler.js';
import faultInjection from './plugins/fault-injection.js';
import health from './plugins/health.js';
import lifecycle from './plugins/lifecycle.js';
import metrics from './plugins/metrics.js';
import openapi from './plugins/openapi.js';
import redis from './plugins/redis.js';
import requestContext, { genReqId } from './plugins/request-context.js';
import './plugins/route-config.js';
import security from './plugins/security.js';

export interface AppDeps {
  /** Log destination (tests capture lines); defaults to a JSON logger on stdout. */
  logger?: Logger;
  /** An already opened database; the caller keeps ownership. */
  database?: Database;
}

// Server timeouts, each chosen on purpose:
// - keep-alive idle longer than the 60 s idle timeout of common load balancers (AWS ALB, nginx), so the
//   balancer, not the app, closes idle connections and never sends a request on a socket we just closed;
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
// - headers must arrive within 10 s: slow-header (slowloris) clients cannot hold sockets open;
const HEADERS_TIMEOUT_MS = 10_000;
// - a whole request (headers and body) within 30 s, well under the shutdown timeout;
const REQUEST_TIMEOUT_MS = 30_000;

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const logger: FastifyBaseLogger = deps.logger ?? createLogger(config, buildInfo.name, buildInfo.version);
  const app = Fastify({
    loggerInstance: logger,
    genReqId,
    requestIdHeader: false,
    logController: new AccessLogController(),
    // Fastify takes a hop count too, though its types omit it.
    trustProxy: config.TRUST_PROXY as boolean | string[],
    bodyLimit: config.BODY_LIMIT_BYTES,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Requests that arrive while closing are served (see lifecycle); Fastify's bare 503 would drop them.
    return503OnClosing: false,
    ajv: {
      customOptions: { allErrors: true, removeAdditional: false, coerceTypes: 'array', useDefaults: true },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;

  await app.register(lifecycle);
  await app.register(requestContext);
  await app.register(errorHandler, { exposeInternalErrors: config.ENVIRONMENT === 'development' });
  await app.register(security, { corsAllowOrigins: config.CORS_ALLOW_ORIGINS });
  await app.register(metrics, {
    metricsPort: config.METRICS_PORT,
    host: config.HOST,
    commit: config.APP_COMMIT,
  });
  await app.register(database, { config, database: deps.database });
  await app.register(redis, { url: config.REDIS_URL });
  await app.register(openapi);
  if (config.FAULT_INJECTION_ENABLED) await app.register(faultInjection);
  await app.register(health, { commit: config.APP_COMMIT });
  await app.register(randomRoutes, { prefix: '/v1' });
  return app;
}

/** Finishes initialization: pending migrations when MIGRATE_ON_START, then the startup probe passes. */
export async function startApp(app: App, config: Pick<Config, 'MIGRATE_ON_START'>): Promise<void> {
  if (config.MIGRATE_ON_START) {
    const applied = await migrateUp(app.database.db);
    app.log.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date');
  }
  app.lifecycle.markStarted();
}
