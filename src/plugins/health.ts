// Probes and build information. Liveness never touches a dependency; readiness checks the database
// (required) and Redis (optional, "degraded" when down) with a deadline, and caches the result briefly so
// that many probers cannot stampede the database.
import { Type } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { buildInfo } from '../lib/build-info.js';
import { withDeadline } from '../lib/deadline.js';

// A probe answer older than this is recomputed. Kubernetes probes every few seconds per kubelet, load
// balancers more often; one second keeps the database load constant whatever the number of probers.
const READINESS_CACHE_MS = 1_000;
// Below the default 1 s probe timeout of Kubernetes, so a slow database reads as "down", not as a hung probe.
const DATABASE_CHECK_TIMEOUT_MS = 800;
const REDIS_CHECK_TIMEOUT_MS = 300;

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('degraded')]),
  latency_ms: Type.Optional(Type.Number()),
  error: Type.Optional(Type.String()),
});
type Check = typeof CheckSchema.static;

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('not_ready')]),
  reason: Type.Optional(Type.String()),
  checks: Type.Record(Type.String(), CheckSchema),
});
type Readiness = typeof ReadySchema.static;

const StatusSchema = Type.Object({ status: Type.String() });

const VersionSchema = Type.Object({
  version: Type.String(),
  commit: Type.String(),
  node: Type.String(),
  started_at: Type.String({ format: 'date-time' }),
});

const round = (ms: number) => Math.round(ms * 100) / 100;

function reasonOf(error: unknown): string {
  return error instanceof Error && error.name === 'DeadlineExceededError' ? 'timeout' : 'unreachable';
}

async function runChecks(app: FastifyInstance): Promise<Readiness> {
  const checks: Record<string, Check> = {};
  const database = withDeadline(app.database.ping(), DATABASE_CHECK_TIMEOUT_MS).then(
    (latency) => {
      checks.database = { status: 'up', latency_ms: round(latency) };
    },
    (error: unknown) => {
      app.log.warn({ err: error }, 'readiness: database check failed');
      checks.database = { status: 'down', error: reasonOf(error) };
    },
  );
  const redisClient = app.redis;
  const redis =
    redisClient === undefined
      ? undefined
      : withDeadline(
          (async () => {
            const started = performance.now();
            await redisClient.ping();
            return performance.now() - started;
          })(),
          REDIS_CHECK_TIMEOUT_MS,
        ).then(
          (latency) => {
            checks.redis = { status: 'up', latency_ms: round(latency) };
          },
          (error: unknown) => {
            app.log.debug({ err: error }, 'readiness: redis check failed');
            checks.redis = { status: 'degraded', error: reasonOf(error) };
          },
        );
  await Promise.all([database, redis]);
  const rateLimitStore = app.rateLimit.storeStatus();
  if (rateLimitStore !== undefined) checks.rate_limit = { status: rateLimitStore };
  if (checks.database?.status !== 'up')
    return { status: 'not_ready', reason: 'database unavailable', checks };
  const degraded = Object.values(checks).some((c) => c.status !== 'up');
  return { status: degraded ? 'degraded' : 'ready', checks };
}

export default fp(
  async (app, opts: { commit: string }) => {
    let cached: { at: number; result: Promise<Readiness> } | undefined;
    const readiness = (): Promise<Readiness> => {
      const now = performance.now();
      // Single flight: concurrent probes share one check in progress as well as a recent result.
      if (cached === undefined || now - cached.at > READINESS_CACHE_MS) {
        cached = { at: now, result: runChecks(app) };
      }
      return cached.result;
    };

    const live = {
      config: { operational: true },
      schema: {
        tags: ['health'],
        summary: 'Liveness: the event loop is running',
        description:
          '200 while the process can answer at all. Checks nothing else, so a dependency outage never makes an orchestrator restart healthy instances.',
        response: { 200: StatusSchema },
      },
    };
    const liveHandler = async () => ({ status: 'ok' });
    app.get('/health/live', live, liveHandler);
    app.get('/health', { ...live, schema: { ...live.schema, hide: true } }, liveHandler);

    const ready = {
      config: { operational: true },
      schema: {
        tags: ['health'],
        summary: 'Readiness: can this instance serve traffic now?',
        description:
          '200 `ready` (or `degraded` when only optional dependencies such as Redis are down, each named in `checks`); 503 `not_ready` while starting, draining for shutdown, or when the database is unreachable. Load balancers route by it.',
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    };
    const readyHandler = async (_request: unknown, reply: FastifyReply) => {
      reply.header('cache-control', 'no-store');
      if (app.lifecycle.phase === 'starting') {
        return reply.code(503).send({ status: 'not_ready', reason: 'starting', checks: {} });
      }
      if (!app.lifecycle.acceptingTraffic) {
        return reply.code(503).send({ status: 'not_ready', reason: 'shutting down', checks: {} });
      }
      const result = await readiness();
      return reply.code(result.status === 'not_ready' ? 503 : 200).send(result);
    };
    app.get('/health/ready', ready, readyHandler);
    app.get('/ready', { ...ready, schema: { ...ready.schema, hide: true } }, readyHandler);

    app.get(
      '/health/startup',
      {
        config: { operational: true },
        schema: {
          tags: ['health'],
          summary: 'Startup: initialization (migrations included) has finished',
          description:
            '503 until the schema is migrated and identity state is loaded, then 200 for good. Orchestrators hold liveness and readiness probes until it passes.',
          response: { 200: StatusSchema, 503: StatusSchema },
        },
      },
      async (_request, reply) =>
        app.lifecycle.phase === 'starting'
          ? reply.code(503).send({ status: 'starting' })
          : reply.send({ status: 'started' }),
    );

    app.get(
      '/version',
      {
        config: { operational: true },
        schema: {
          tags: ['health'],
          summary: 'Build information',
          description: 'The version, commit and Node.js runtime of this instance.',
          response: { 200: VersionSchema },
        },
      },
      async () => ({
        version: buildInfo.version,
        commit: opts.commit,
        node: process.version,
        started_at: app.lifecycle.createdAt.toISOString(),
      }),
    );
  },
  { name: 'health', dependencies: ['lifecycle', 'database', 'redis', 'rate-limit'] },
);
