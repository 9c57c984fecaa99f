// Rate limits per route group and identity tier (anonymous by client IP, user, API key, admin), with IETF
// RateLimit-Policy / RateLimit headers and 429 problem answers. GCRA in Redis (one EVALSHA, auto-pipelined)
// when RATE_LIMIT_STORAGE_URI is redis://, in process when memory://. Redis trouble never stalls a request:
// each call has a short deadline, no offline queue, and on failure the local limiter decides (or 503 with
// RATE_LIMIT_FAILURE_MODE=closed); readiness then shows rate limiting "degraded", a metric counts it, and
// Redis is tried again a second later without a restart.
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import type { Config } from '../config/schema.js';
import { AppError, tooManyRequests } from '../lib/errors.js';
import { instrumentRedis } from '../adapters/redis/client.js';
import { cachedChildren } from '../observability/label-cache.js';
import { TRACER_NAME } from '../observability/tracing.js';
import { GCRA_LUA, MemoryGcra, gcraParams, type Decision, type RatePolicy } from '../lib/gcra.js';

export type Tier = 'anonymous' | 'user' | 'api_key' | 'admin';
export type RouteGroup = 'api' | 'auth';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which policy group a route draws from; `api` by default. */
    rateLimitGroup?: RouteGroup;
  }
  interface FastifyInstance {
    rateLimit: { storeStatus(): 'up' | 'degraded' | undefined };
  }
}

type PolicyConfig = Record<string, { limit: number; window_seconds: number; burst: number }>;

export const DEFAULT_POLICIES: Record<RouteGroup, Partial<Record<Tier, RatePolicy>>> = {
  api: {
    anonymous: { limit: 60, windowSeconds: 60, burst: 20 },
    user: { limit: 600, windowSeconds: 60, burst: 100 },
    api_key: { limit: 1200, windowSeconds: 60, burst: 200 },
    admin: { limit: 6000, windowSeconds: 60, burst: 1000 },
  },
  // Sign-in endpoints: a person logs in a few times a day; scripts hammering them are attacks.
  auth: { anonymous: { limit: 20, windowSeconds: 60, burst: 10 } },
};

// After a store failure, decide locally for this long before trying Redis again: during an outage requests
// do not each pay the deadline, and a recovered Redis is picked up within a second.
const STORE_RETRY_MS = 1_000;
// During an outage, one warning per this interval instead of one per request.
const WARN_INTERVAL_MS = 10_000;

interface CompiledPolicy {
  name: string;
  intervalUs: number;
  capacityUs: number;
  policyHeader: string;
  windowSeconds: number;
}

function compile(name: string, p: RatePolicy): CompiledPolicy {
  return {
    name,
    ...gcraParams(p),
    policyHeader: `"${name}";q=${p.limit};w=${p.windowSeconds}`,
    windowSeconds: p.windowSeconds,
  };
}

const fromConfig = (p: { limit: number; window_seconds: number; burst: number }): RatePolicy => ({
  limit: p.limit,
  windowSeconds: p.window_seconds,
  burst: p.burst,
});

export function resolvePolicies(overrides: Config['RATE_LIMITS']) {
  const table = new Map<string, CompiledPolicy>();
  for (const group of ['api', 'auth'] as const) {
    const merged: Partial<Record<Tier, RatePolicy>> = { ...DEFAULT_POLICIES.api, ...DEFAULT_POLICIES[group] };
    for (const [tier, p] of Object.entries((overrides[group] ?? {}) as PolicyConfig))
      merged[tier as Tier] = fromConfig(p);
    for (const [tier, p] of Object.entries(merged))
      table.set(`${group}:${tier}`, compile(`${group}-${tier}`, p));
  }
  const perKey = new Map<string, CompiledPolicy>();
  for (const [id, p] of Object.entries((overrides.api_keys ?? {}) as PolicyConfig))
    perKey.set(id, compile(`api-key-${id.slice(0, 8)}`, fromConfig(p)));
  return { table, perKey };
}

type RedisWithGcra = Redis & {
  gcra(key: string, intervalUs: number, capacityUs: number): Promise<[number, number, number, number]>;
};

export default fp(
  async (
    app,
    opts: {
      config: Pick<
        Config,
        | 'RATE_LIMITS'
        | 'RATE_LIMIT_STORAGE_URI'
        | 'RATE_LIMIT_REDIS_TIMEOUT_MS'
        | 'RATE_LIMIT_FAILURE_MODE'
        | 'REDIS_KEY_PREFIX'
      >;
    },
  ) => {
    const { config } = opts;
    const { table, perKey } = resolvePolicies(config.RATE_LIMITS);
    const local = new MemoryGcra(() => Math.round(performance.timeOrigin * 1000 + performance.now() * 1000));
    const prefix = `${config.REDIS_KEY_PREFIX}rl:`;

    const decisions = new Counter({
      name: 'rate_limit_decisions_total',
      help: 'Rate-limit decisions by policy and outcome (allowed, limited, store_error).',
      labelNames: ['policy', 'outcome'],
      registers: [app.metrics.registry],
    });
    const storeErrors = new Counter({
      name: 'rate_limit_store_errors_total',
      help: 'Rate-limit calls to Redis that failed or missed their deadline; the local limiter decided instead.',
      registers: [app.metrics.registry],
    });
    const decisionCounter = cachedChildren((policy, outcome) => decisions.labels({ policy, outcome }));
    const count = (policy: string, outcome: string) => decisionCounter(policy, outcome).inc();

    let redis: RedisWithGcra | undefined;
    if (config.RATE_LIMIT_STORAGE_URI.startsWith('redis')) {
      const client = new Redis(config.RATE_LIMIT_STORAGE_URI, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true, // concurrent requests share one round trip
        maxRetriesPerRequest: 0,
        commandTimeout: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
        connectTimeout: 1_000,
        connectionName: 'reliability-api-ratelimit',
        retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
      });
      client.defineCommand('gcra', { numberOfKeys: 1, lua: GCRA_LUA });
      // Durations only: auto-pipelined commands leave on a later tick, under whichever request started the
      // batch, so command spans would hang under the wrong request. decide() traces the call instead.
      instrumentRedis(client, app.metrics.registry, { traced: false });
      client.on('error', () => {
        // counted and logged per failed decision below
      });
      client.connect().catch(() => undefined);
      redis = client as RedisWithGcra;
      app.addHook('onClose', async () => {
        client.disconnect(false);
      });
    }

    let storeDownUntil = 0;
    let lastWarning = 0;
    app.decorate('rateLimit', {
      storeStatus: () =>
        redis === undefined
          ? undefined
          : redis.status === 'ready' && Date.now() >= storeDownUntil
            ? 'up'
            : 'degraded',
    });

    function identify(request: FastifyRequest): { tier: Tier; id: string } {
      const p = request.principal;
      if (p === null) return { tier: 'anonymous', id: request.ip };
      if (p.kind === 'api_key') return { tier: 'api_key', id: p.apiKeyId! };
      return { tier: p.role === 'admin' ? 'admin' : 'user', id: p.userId };
    }

    function storeFailed(error: unknown): void {
      storeErrors.inc();
      storeDownUntil = Date.now() + STORE_RETRY_MS;
      const now = Date.now();
      if (now - lastWarning > WARN_INTERVAL_MS) {
        lastWarning = now;
        app.log.warn(
          { err: error, failure_mode: config.RATE_LIMIT_FAILURE_MODE },
          'rate-limit store unavailable; deciding locally',
        );
      }
    }

    const tracer = trace.getTracer(TRACER_NAME);
    async function decide(
      policy: CompiledPolicy,
      key: string,
      traced: boolean,
    ): Promise<Decision | 'store_error'> {
      if (redis !== undefined && redis.status === 'ready' && Date.now() >= storeDownUntil) {
        // A child of the request's span (this runs in its context); only for a traced request.
        const span = traced
          ? tracer.startSpan('EVALSHA', {
              kind: SpanKind.CLIENT,
              attributes: {
                'db.system.name': 'redis',
                'db.operation.name': 'EVALSHA',
                'db.stored_procedure.name': 'gcra',
              },
            })
          : undefined;
        try {
          const [allowed, remaining, retryUs, resetUs] = await redis.gcra(
            prefix + key,
            policy.intervalUs,
            policy.capacityUs,
          );
          span?.end();
          return {
            allowed: allowed === 1,
            remaining,
            retryAfterMs: Math.ceil(retryUs / 1000),
            resetMs: Math.ceil(resetUs / 1000),
          };
        } catch (error) {
          span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          span?.end();
          storeFailed(error);
        }
      } else if (redis !== undefined && Date.now() >= storeDownUntil) {
        storeFailed(new Error(`redis ${redis.status}`));
      }
      if (redis !== undefined && config.RATE_LIMIT_FAILURE_MODE === 'closed') return 'store_error';
      return local.take(key, policy.intervalUs, policy.capacityUs);
    }

    app.addHook('onRequest', (request, reply, done) => {
      const routeConfig = request.routeOptions.config;
      if (routeConfig.operational === true || request.routeOptions.url === undefined) return done();
      const { tier, id } = identify(request);
      const group = routeConfig.rateLimitGroup ?? 'api';
      const policy = (tier === 'api_key' ? perKey.get(id) : undefined) ?? table.get(`${group}:${tier}`)!;
      const key = `${policy.name}:${id}`;
      const apply = (decision: Decision | 'store_error') => {
        if (decision === 'store_error') {
          count(policy.name, 'store_error');
          return done(
            new AppError(
              503,
              'APP_RATE_LIMIT_UNAVAILABLE',
              'service-unavailable',
              'rate limiting is unavailable; try again shortly',
              { 'retry-after': '1' },
            ),
          );
        }
        reply.header('ratelimit-policy', policy.policyHeader);
        reply.header(
          'ratelimit',
          `"${policy.name}";r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`,
        );
        if (decision.allowed) {
          count(policy.name, 'allowed');
          return done();
        }
        count(policy.name, 'limited');
        done(
          tooManyRequests(
            `rate limit "${policy.name}" exceeded (${policy.policyHeader})`,
            decision.retryAfterMs / 1000,
          ),
        );
      };
      // The memory store decides synchronously: no promise on the hot path.
      if (redis === undefined) return apply(local.take(key, policy.intervalUs, policy.capacityUs));
      decide(policy, key, request.traceSpan?.isRecording() === true).then(apply, (error: unknown) =>
        done(error as Error),
      );
    });
  },
  { name: 'rate-limit', dependencies: ['metrics', 'authentication'] },
);
