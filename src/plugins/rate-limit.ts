// Rate limits per route group and identity tier (anonymous by client IP, user, API key, admin), with IETF
// RateLimit-Policy / RateLimit headers and 429 problem answers. The policies are lib/rate-policy; GCRA runs
// in Redis (adapters/redis/gcra-store) when RATE_LIMIT_STORAGE_URI is redis://, in process when memory://.
// Redis trouble never stalls a request: each call has a short deadline, and on failure the local limiter
// decides (or 503 with RATE_LIMIT_FAILURE_MODE=closed); readiness then shows rate limiting "degraded", a
// metric counts it, and Redis is tried again a second later without a restart.
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { RedisGcraStore } from '../adapters/redis/gcra-store.js';
import type { Config } from '../config/schema.js';
import { rateLimitUnavailable, tooManyRequests } from '../lib/errors.js';
import { MemoryGcra, type Decision } from '../lib/gcra.js';
import { resolvePolicies, type CompiledPolicy, type RouteGroup, type Tier } from '../lib/rate-policy.js';
import { BoundCounter } from '../observability/bound-metrics.js';
import { cachedChildren } from '../observability/label-cache.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which policy group a route draws from; `api` by default. */
    rateLimitGroup?: RouteGroup;
  }
  interface FastifyInstance {
    rateLimit: { storeStatus(): 'up' | 'degraded' | undefined };
  }
}

// After a store failure, decide locally for this long before trying Redis again: during an outage requests
// do not each pay the deadline, and a recovered Redis is picked up within a second.
const STORE_RETRY_MS = 1_000;
// During an outage, one warning per this interval instead of one per request.
const WARN_INTERVAL_MS = 10_000;

function identify(request: FastifyRequest): { tier: Tier; id: string } {
  const p = request.principal;
  if (p === null) return { tier: 'anonymous', id: request.ip };
  if (p.kind === 'api_key') return { tier: 'api_key', id: p.apiKeyId! };
  return { tier: p.role === 'admin' ? 'admin' : 'user', id: p.userId };
}

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
    const policies = resolvePolicies(config.RATE_LIMITS);
    const local = new MemoryGcra(() => Math.round(performance.timeOrigin * 1000 + performance.now() * 1000));

    const decisions = new BoundCounter({
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
    const decisionCounter = cachedChildren((policy, outcome) => decisions.series({ policy, outcome }));
    const count = (policy: string, outcome: string) => decisionCounter(policy, outcome).inc();

    let shared: RedisGcraStore | undefined;
    if (config.RATE_LIMIT_STORAGE_URI.startsWith('redis')) {
      const store = new RedisGcraStore({
        url: config.RATE_LIMIT_STORAGE_URI,
        keyPrefix: `${config.REDIS_KEY_PREFIX}rl:`,
        timeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
        metrics: app.metrics.registry,
        logger: app.log,
      });
      shared = store;
      app.addHook('onClose', async () => store.close());
    }

    let storeDownUntil = 0;
    let lastWarning = 0;
    app.decorate('rateLimit', {
      storeStatus: () =>
        shared === undefined ? undefined : shared.ready && Date.now() >= storeDownUntil ? 'up' : 'degraded',
    });

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

    async function decide(
      store: RedisGcraStore,
      policy: CompiledPolicy,
      key: string,
      traced: boolean,
    ): Promise<Decision | 'store_error'> {
      if (store.ready && Date.now() >= storeDownUntil) {
        try {
          return await store.take(key, policy.intervalUs, policy.capacityUs, traced);
        } catch (error) {
          storeFailed(error);
        }
      } else if (Date.now() >= storeDownUntil) {
        storeFailed(new Error(`redis ${store.status}`));
      }
      if (config.RATE_LIMIT_FAILURE_MODE === 'closed') return 'store_error';
      return local.take(key, policy.intervalUs, policy.capacityUs);
    }

    app.addHook('onRequest', (request, reply, done) => {
      const route = request.routeOptions; // a getter that builds an object: read once
      const routeConfig = route.config;
      if (routeConfig.operational === true || route.url === undefined) return done();
      const { tier, id } = identify(request);
      const policy = policies.for(routeConfig.rateLimitGroup ?? 'api', tier, id);
      const key = `${policy.name}:${id}`;
      const apply = (decision: Decision | 'store_error') => {
        if (decision === 'store_error') {
          count(policy.name, 'store_error');
          return done(rateLimitUnavailable());
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
      if (shared === undefined) return apply(local.take(key, policy.intervalUs, policy.capacityUs));
      decide(shared, policy, key, request.traceSpan?.isRecording() === true).then(apply, (error: unknown) =>
        done(error as Error),
      );
    });
  },
  { name: 'rate-limit', dependencies: ['metrics', 'authentication'] },
);
