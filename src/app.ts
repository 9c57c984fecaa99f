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
import { migrateUp, pendingMigrations } from './adapters/postgres/migrator.js';
import { seedDemoUser } from './modules/users/seed.js';
import type { Config } from './config/schema.js';
import { buildInfo } from './lib/build-info.js';
import { systemClock, type Clock } from './lib/clock.js';
import randomRoutes from './modules/random/routes.js';
import { beaconRoutes } from './modules/beacon/routes.js';
import { homeRoutes } from './modules/home/routes.js';
import { AccessLogController } from './observability/access-log.js';
import { createLogger, lazyRequestLogger } from './observability/logger.js';
import formbody from '@fastify/formbody';
import { apiKeyRoutes } from './modules/api-keys/routes.js';
import { auditRoutes } from './modules/audit/routes.js';
import { breakerRoutes } from './modules/breakers/routes.js';
import { faultRoutes } from './modules/faults/routes.js';
import localAdmin from './modules/local-admin/plugin.js';
import { triageRoutes } from './modules/triage/routes.js';
import { sloRoutes } from './modules/slo/routes.js';
import { authRoutes, jwksRoute } from './modules/auth/routes.js';
import { userRoutes } from './modules/users/routes.js';
import authentication from './plugins/authentication.js';
import identity from './modules/auth/plugin.js';
import loadShedding from './plugins/load-shedding.js';
import rateLimit from './plugins/rate-limit.js';
import database from './plugins/database.js';
import errorHandler, { clientErrorHandler, frameworkErrors } from './plugins/error-handler.js';
import errorTracking from './plugins/error-tracking.js';
import faultInjection from './plugins/fault-injection.js';
import health from './plugins/health.js';
import idempotency from './plugins/idempotency.js';
import lifecycle from './plugins/lifecycle.js';
import metrics from './plugins/metrics.js';
import openapi from './plugins/openapi.js';
import outbound from './plugins/outbound.js';
import redis from './plugins/redis.js';
import requestContext, { genReqId } from './plugins/request-context.js';
import './plugins/route-config.js';
import security from './plugins/security.js';
import validation, { AJV_OPTIONS } from './plugins/validation.js';
import tracing from './plugins/tracing.js';

export interface AppDeps {
  /** Log destination (tests capture lines); defaults to a JSON logger on stdout. */
  logger?: Logger;
  /** An already opened database; the caller keeps ownership. */
  database?: Database;
  /** The wall clock: token lifetimes, cache expiry, timestamps; tests pass one they advance. */
  clock?: Clock;
  /** In a worker process: what /metrics answers (the whole service's metrics, from the primary). */
  metricsSource?: () => Promise<{ text: string; contentType: string }>;
}

// The server's timeouts are settings (HTTP_*_TIMEOUT_SECONDS, each with its reason in the schema). Node
// checks them on a timer, every 30 s by default, which would let a slowloris client hold a socket up to
// 30 s past its deadline; once a second keeps every deadline to within a second.
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;
// Node's default, stated: a request's line and headers together; more answers 431.
const MAX_HEADER_BYTES = 16_384;

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const clock = deps.clock ?? systemClock;
  const logger: FastifyBaseLogger = deps.logger ?? createLogger(config, buildInfo.name, buildInfo.version);
  const app = Fastify({
    loggerInstance: logger,
    genReqId,
    requestIdHeader: false,
    logController: new AccessLogController(logger),
    childLoggerFactory: lazyRequestLogger,
    // Fastify takes a hop count too, though its types omit it.
    trustProxy: config.TRUST_PROXY as boolean | string[],
    bodyLimit: config.BODY_LIMIT_BYTES,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS * 1000,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_SECONDS * 1000,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_SECONDS * 1000,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    clientErrorHandler,
    frameworkErrors,
    // Requests that arrive while closing are served (see lifecycle); Fastify's bare 503 would drop them.
    return503OnClosing: false,
    ajv: AJV_OPTIONS,
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(tracing, { config }); // first: its hooks wrap every other plugin's
  await app.register(lifecycle);
  await app.register(requestContext);
  await app.register(errorHandler, { exposeInternalErrors: config.ENVIRONMENT === 'development' });
  await app.register(validation);
  await app.register(errorTracking);
  await app.register(security, { corsAllowOrigins: config.CORS_ALLOW_ORIGINS });
  await app.register(metrics, {
    metricsPort: config.METRICS_PORT,
    host: config.HOST,
    commit: config.APP_COMMIT,
    source: deps.metricsSource,
  });
  await app.register(database, { config, database: deps.database });
  await app.register(redis, { url: config.REDIS_URL });
  await app.register(outbound, { config });
  await app.register(formbody); // OAuth2 password-grant clients log in form-encoded
  await app.register(loadShedding, { config });
  await app.register(identity, { config, clock });
  await app.register(authentication);
  await app.register(rateLimit, { config });
  await app.register(idempotency, {
    ttlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
    leaseSeconds: config.IDEMPOTENCY_LEASE_SECONDS,
  });
  await app.register(localAdmin); // only with a file-backed embedded database
  await app.register(openapi);
  if (config.FAULT_INJECTION_ENABLED) await app.register(faultInjection);
  await app.register(health, { commit: config.APP_COMMIT });
  await app.register(homeRoutes);
  await app.register(jwksRoute);
  await app.register(randomRoutes, { prefix: '/v1', anonymous: config.ANONYMOUS_ACCESS });
  await app.register(beaconRoutes, { prefix: '/v1', anonymous: config.ANONYMOUS_ACCESS, config, clock });
  await app.register(authRoutes, { prefix: '/v1', allowSignup: config.ALLOW_SIGNUP });
  await app.register(userRoutes, { prefix: '/v1' });
  await app.register(apiKeyRoutes, { prefix: '/v1' });
  await app.register(auditRoutes, { prefix: '/v1' });
  await app.register(breakerRoutes, { prefix: '/v1' });
  if (config.FAULT_INJECTION_ENABLED) await app.register(faultRoutes, { prefix: '/v1' });
  await app.register(triageRoutes, { prefix: '/v1', config });
  await app.register(sloRoutes, { config });
  return app;
}

/**
 * Finishes initialization: pending migrations when MIGRATE_ON_START, the revocation state, the demo user
 * when asked for; then the startup probe passes.
 */
export async function startApp(
  app: App,
  config: Pick<Config, 'MIGRATE_ON_START' | 'SEED_DEMO_USER'>,
): Promise<void> {
  if (config.MIGRATE_ON_START) {
    const applied = await migrateUp(app.database.db);
    app.log.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date');
  } else {
    const pending = await pendingMigrations(app.database.db);
    if (pending.length > 0)
      throw new Error(
        `database schema is behind: pending migrations ${pending.join(', ')}; run "migrate up"`,
      );
  }
  await app.startIdentity();
  if (config.SEED_DEMO_USER) await seedDemoUser(app);
  app.lifecycle.markStarted();
}
