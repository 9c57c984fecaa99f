// Idempotency keys (draft-ietf-httpapi-idempotency-key-header) for routes that opt in with
// `config: { idempotency: true }`: the first final answer to a key is kept and replayed to its retries.
// The key's syntax and fingerprint are in lib/idempotency-key, the table in adapters/postgres; this plugin
// adds the header to the routes' schemas and runs the claim, replay and store around each request.
import { Type } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { IdempotencyStore, type Lease } from '../adapters/postgres/idempotency-store.js';
import { idempotencyKeyInUse, idempotencyKeyReused } from '../lib/errors.js';
import {
  IDEMPOTENCY_HEADER,
  IdempotencyKeyHeader,
  fingerprintOf,
  keyHashOf,
  parseIdempotencyKey,
} from '../lib/idempotency-key.js';
import { every, type PeriodicJob } from '../lib/periodic.js';
import { keysFor, open, seal } from '../lib/sealing.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** POST or PATCH only: honour the Idempotency-Key request header (docs/idempotency.md). */
    idempotency?: boolean;
  }
  interface FastifyInstance {
    idempotency: {
      /** Deletes expired keys, in bounded batches; resolves with how many went. */
      purgeExpired(): Promise<number>;
    };
  }
}

const METHODS = new Set(['POST', 'PATCH']);
const REPLAYED_HEADERS = ['content-type', 'location', 'cache-control'] as const;

// While a request runs its row is a lease of IDEMPOTENCY_LEASE_SECONDS, renewed every third of that for as
// long as the request runs: a key held by a replica that crashed frees itself within one lease (its
// retries get 409 with Retry-After until then), and a slow request keeps its key however long it takes.
// Requests that finish within a third of the lease (nearly all) never renew. Renewal stops after
// MAX_HOLD_SECONDS, far past any request's deadlines, so a handler that never answers cannot hold a key.
const MAX_HOLD_SECONDS = 600;
// Expired rows are also deleted on every conflict; the sweep catches keys that are never retried. Up to
// 10,000 rows a minute per replica, far above the rate these routes create keys (accounts and API keys).
const PURGE_INTERVAL_MS = 60_000;

interface Claim extends Lease {
  encryptionKey: Buffer;
  renewal: NodeJS.Timeout;
}

/** Whose key it is: the authenticated user or API key, else the client address. */
function scopeOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (principal === null) return `ip:${request.ip}`;
  return principal.kind === 'api_key' ? `api-key:${principal.apiKeyId}` : `user:${principal.userId}`;
}

export default fp(
  async (app, opts: { ttlSeconds: number; leaseSeconds: number }) => {
    const keys = new IdempotencyStore(app.database.db, opts);
    const claims = new WeakMap<FastifyRequest, Claim>();
    const held = new Set<NodeJS.Timeout>();
    const outcomes = new Counter({
      name: 'idempotency_requests_total',
      help: 'Requests carrying an Idempotency-Key, by outcome (stored, replayed, released, mismatch, in_progress, store_error).',
      labelNames: ['outcome'],
      registers: [app.metrics.registry],
    });
    const count = (outcome: string) => outcomes.labels({ outcome }).inc();

    async function preHandler(request: FastifyRequest, reply: FastifyReply) {
      const raw = request.headers[IDEMPOTENCY_HEADER];
      if (raw === undefined) return;
      const key = parseIdempotencyKey(raw);
      const scope = scopeOf(request);
      const keyHash = keyHashOf(key);
      const { macKey, encryptionKey } = keysFor(scope, key);
      const fingerprint = fingerprintOf(macKey, {
        method: request.method,
        route: request.routeOptions.url,
        params: request.params,
        query: request.query,
        body: request.body,
      });
      const outcome = await keys.claim(scope, keyHash, fingerprint);
      if (outcome.kind === 'claimed') {
        const lease = { scope, keyHash, lockId: outcome.lockId };
        claims.set(request, { ...lease, encryptionKey, renewal: renewWhileRunning(request, lease) });
        return;
      }
      const { row } = outcome;
      if (row.fingerprint !== fingerprint) {
        count('mismatch');
        throw idempotencyKeyReused();
      }
      if (row.status === null || row.body === null) {
        count('in_progress');
        throw idempotencyKeyInUse();
      }
      count('replayed');
      reply
        .code(row.status)
        .headers(row.headers ?? {})
        .header('idempotent-replayed', 'true');
      return reply.send(open(encryptionKey, Buffer.from(row.body)));
    }

    function renewWhileRunning(request: FastifyRequest, lease: Lease) {
      const started = Date.now();
      const renewal = setInterval(
        () => {
          if (Date.now() - started > MAX_HOLD_SECONDS * 1000) {
            stopRenewing(renewal);
            return;
          }
          keys
            .renew(lease)
            .catch((error: unknown) =>
              request.log.warn({ err: error }, 'could not renew an idempotency lease'),
            );
        },
        (opts.leaseSeconds * 1000) / 3,
      );
      renewal.unref();
      held.add(renewal);
      return renewal;
    }

    function stopRenewing(renewal: NodeJS.Timeout) {
      clearInterval(renewal);
      held.delete(renewal);
    }

    async function store(reply: FastifyReply, c: Claim, body: Buffer) {
      const headers: Record<string, string> = {};
      for (const name of REPLAYED_HEADERS) {
        const value = reply.getHeader(name);
        if (value !== undefined) headers[name] = String(value);
      }
      const stored = await keys.store(c, {
        status: reply.statusCode,
        headers,
        body: seal(c.encryptionKey, body),
      });
      if (stored) {
        count('stored');
      } else {
        reply.log.warn({ scope: c.scope }, 'idempotency lease expired before the answer; not stored');
        count('store_error');
      }
    }

    // Stores before the answer leaves, so a retry that follows the answer always finds it.
    async function onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
      const c = claims.get(request);
      if (c === undefined) return payload;
      claims.delete(request);
      stopRenewing(c.renewal);
      try {
        const body = payload ?? '';
        // A 5xx (or a crash) is not the operation's outcome: the client may retry and run it again. A
        // streamed body cannot be captured without buffering it, so it is not replayable either.
        const storable = typeof body === 'string' || Buffer.isBuffer(body);
        if (reply.statusCode >= 500 || !storable) {
          await keys.release(c);
          count('released');
        } else {
          await store(reply, c, Buffer.from(body));
        }
      } catch (error) {
        // The operation has happened; its answer still goes out. The lease frees the key later.
        count('store_error');
        request.log.warn({ err: error }, 'could not record the idempotent answer');
      }
      return payload;
    }

    app.addHook('onRoute', (route) => {
      if (route.config?.idempotency !== true) return;
      const methods = [route.method].flat();
      if (!methods.every((m) => METHODS.has(m))) {
        throw new Error(`idempotency is for POST and PATCH routes, not ${methods.join(', ')} ${route.url}`);
      }
      // The header joins the route's schema: validated like any input and documented in OpenAPI.
      const existing = route.schema?.headers as { properties?: Record<string, unknown> } | undefined;
      const headers =
        existing === undefined
          ? Type.Object({ [IDEMPOTENCY_HEADER]: Type.Optional(IdempotencyKeyHeader) })
          : {
              ...existing,
              properties: { ...existing.properties, [IDEMPOTENCY_HEADER]: IdempotencyKeyHeader },
            };
      route.schema = { ...route.schema, headers };
      // Last of the route's preHandlers: input is validated and the caller known before a key is claimed.
      route.preHandler = [...[route.preHandler ?? []].flat(), preHandler] as typeof route.preHandler;
      route.onSend = [...[route.onSend ?? []].flat(), onSend] as typeof route.onSend;
    });

    app.decorate('idempotency', { purgeExpired: () => keys.purgeExpired() });

    let sweeper: PeriodicJob | undefined;
    app.addHook('onReady', async () => {
      sweeper = every(
        PURGE_INTERVAL_MS,
        async () => {
          const removed = await keys.purgeExpired();
          if (removed > 0) app.log.info({ removed }, 'purged expired idempotency keys');
        },
        { onError: (error) => app.log.warn({ err: error }, 'idempotency key purge failed') },
      );
    });
    app.addHook('onClose', async () => {
      await sweeper?.stop();
      for (const renewal of held) stopRenewing(renewal);
    });
  },
  { name: 'idempotency', dependencies: ['database', 'metrics', 'authentication'] },
);
