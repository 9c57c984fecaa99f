// Idempotency keys (draft-ietf-httpapi-idempotency-key-header) for routes that opt in with
// `config: { idempotency: true }`: the first final answer to a key is kept and replayed to its retries.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { Counter } from 'prom-client';
import { configure } from 'safe-stable-stringify';
import { InvalidParametersError, idempotencyKeyInUse, idempotencyKeyReused } from '../lib/errors.js';
import { keysFor, open, seal } from '../lib/sealing.js';

/** JSON with object keys sorted at every level: equal bodies give equal fingerprints whatever their key order. */
const canonicalJson = configure({ deterministic: true, bigint: true });

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

const HEADER = 'idempotency-key';
// Visible ASCII and space: the draft's sf-string alphabet. Node trims the ends of header values.
const KEY_PATTERN = '^[\\x20-\\x7E]{1,255}$';
const KEY_REGEX = new RegExp(KEY_PATTERN);
const KeyHeader = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: KEY_PATTERN,
  description:
    'Makes a retry of this request safe: the first final answer to a key is replayed (with `Idempotent-Replayed: true`) instead of running the request again. Use a fresh random value (a UUID) per operation.',
});
const METHODS = new Set(['POST', 'PATCH']);
const REPLAYED_HEADERS = ['content-type', 'location', 'cache-control'] as const;

// While a request runs its row is a lease of IDEMPOTENCY_LEASE_SECONDS, renewed every third of that for as
// long as the request runs: a key held by a replica that crashed frees itself within one lease (its
// retries get 409 with Retry-After until then), and a slow request keeps its key however long it takes.
// Requests that finish within a third of the lease (nearly all) never renew. Renewal stops after
// MAX_HOLD_SECONDS, far past any request's deadlines, so a handler that never answers cannot hold a key.
const MAX_HOLD_SECONDS = 600;
// Expired rows are also deleted on every conflict; the sweep catches keys that are never retried. Up to
// 10,000 rows a minute per replica, far above the rate these routes create keys (accounts and API keys),
// in short batches so no sweep holds locks or runs unbounded.
const PURGE_INTERVAL_MS = 60_000;
const PURGE_BATCH = 500;
const PURGE_MAX_BATCHES = 20;

interface Claim {
  scope: string;
  keyHash: string;
  lockId: string;
  encryptionKey: Buffer;
  renewal: NodeJS.Timeout;
}

/** The key named by the header value: bare, or the draft's quoted sf-string. */
function parseKey(raw: unknown): string {
  const invalid = (reason: string) =>
    new InvalidParametersError([{ name: 'Idempotency-Key', in: 'header', reason }]);
  if (typeof raw !== 'string' || !KEY_REGEX.test(raw)) {
    throw invalid('must be 1 to 255 printable ASCII characters');
  }
  const quoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"');
  const key = quoted ? raw.slice(1, -1).replace(/\\(["\\])/g, '$1') : raw;
  if (key.length === 0) throw invalid('must not be empty');
  return key;
}

/** Whose key it is: the authenticated user or API key, else the client address. */
function scopeOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (principal === null) return `ip:${request.ip}`;
  return principal.kind === 'api_key' ? `api-key:${principal.apiKeyId}` : `user:${principal.userId}`;
}

// PostgreSQL, not Redis: a replay must survive restarts and failovers as long as the data it protects,
// which lives in the same database; and the database is always present (Redis is optional here).
export default fp(
  async (app, opts: { ttlSeconds: number; leaseSeconds: number }) => {
    const db = app.database.db;
    const claims = new WeakMap<FastifyRequest, Claim>();
    const held = new Set<NodeJS.Timeout>();
    const outcomes = new Counter({
      name: 'idempotency_requests_total',
      help: 'Requests carrying an Idempotency-Key, by outcome (stored, replayed, released, mismatch, in_progress, store_error).',
      labelNames: ['outcome'],
      registers: [app.metrics.registry],
    });
    const count = (outcome: string) => outcomes.labels({ outcome }).inc();

    async function claim(scope: string, keyHash: string, fingerprint: string) {
      // Three tries: the row we collided with can expire or be released between our statements.
      for (let attempt = 0; attempt < 3; attempt++) {
        const lockId = randomUUID();
        const inserted = await db
          .insertInto('idempotency_keys')
          .values({
            scope,
            key_hash: keyHash,
            fingerprint,
            lock_id: lockId,
            expires_at: sql<Date>`now() + make_interval(secs => ${opts.leaseSeconds})`,
          })
          .onConflict((oc) => oc.columns(['scope', 'key_hash']).doNothing())
          .returning('lock_id')
          .executeTakeFirst();
        if (inserted !== undefined) return { kind: 'claimed', lockId } as const;
        const row = await db
          .selectFrom('idempotency_keys')
          .select(['fingerprint', 'status', 'headers', 'body'])
          .select(sql<boolean>`expires_at <= now()`.as('expired'))
          .where('scope', '=', scope)
          .where('key_hash', '=', keyHash)
          .executeTakeFirst();
        if (row === undefined) continue;
        if (!row.expired) return { kind: 'existing', row } as const;
        await db
          .deleteFrom('idempotency_keys')
          .where('scope', '=', scope)
          .where('key_hash', '=', keyHash)
          .where('expires_at', '<=', sql<Date>`now()`)
          .execute();
      }
      throw idempotencyKeyInUse();
    }

    async function preHandler(request: FastifyRequest, reply: FastifyReply) {
      const raw = request.headers[HEADER];
      if (raw === undefined) return;
      const key = parseKey(raw);
      const scope = scopeOf(request);
      const keyHash = createHash('sha256').update(key).digest('hex');
      const { macKey, encryptionKey } = keysFor(scope, key);
      const fingerprint = createHmac('sha256', macKey)
        .update(
          canonicalJson({
            method: request.method,
            route: request.routeOptions.url,
            params: request.params,
            query: request.query,
            body: request.body,
          }) ?? '',
        )
        .digest('hex');
      const outcome = await claim(scope, keyHash, fingerprint);
      if (outcome.kind === 'claimed') {
        const { lockId } = outcome;
        const renewal = renewWhileRunning(request, scope, keyHash, lockId);
        claims.set(request, { scope, keyHash, lockId, encryptionKey, renewal });
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

    function renewWhileRunning(request: FastifyRequest, scope: string, keyHash: string, lockId: string) {
      const started = Date.now();
      const renewal = setInterval(
        () => {
          if (Date.now() - started > MAX_HOLD_SECONDS * 1000) {
            stopRenewing(renewal);
            return;
          }
          db.updateTable('idempotency_keys')
            .set({ expires_at: sql<Date>`now() + make_interval(secs => ${opts.leaseSeconds})` })
            .where('scope', '=', scope)
            .where('key_hash', '=', keyHash)
            .where('lock_id', '=', lockId)
            .execute()
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

    async function release(c: Claim) {
      await db
        .deleteFrom('idempotency_keys')
        .where('scope', '=', c.scope)
        .where('key_hash', '=', c.keyHash)
        .where('lock_id', '=', c.lockId)
        .execute();
      count('released');
    }

    async function store(reply: FastifyReply, c: Claim, body: Buffer) {
      const headers: Record<string, string> = {};
      for (const name of REPLAYED_HEADERS) {
        const value = reply.getHeader(name);
        if (value !== undefined) headers[name] = String(value);
      }
      const updated = await db
        .updateTable('idempotency_keys')
        .set({
          status: reply.statusCode,
          headers: JSON.stringify(headers),
          body: seal(c.encryptionKey, body),
          lock_id: null,
          expires_at: sql<Date>`now() + make_interval(secs => ${opts.ttlSeconds})`,
        })
        .where('scope', '=', c.scope)
        .where('key_hash', '=', c.keyHash)
        .where('lock_id', '=', c.lockId)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) {
        reply.log.warn({ scope: c.scope }, 'idempotency lease expired before the answer; not stored');
        count('store_error');
      } else {
        count('stored');
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
        if (reply.statusCode >= 500 || !storable) await release(c);
        else await store(reply, c, Buffer.from(body));
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
          ? Type.Object({ [HEADER]: Type.Optional(KeyHeader) })
          : { ...existing, properties: { ...existing.properties, [HEADER]: KeyHeader } };
      route.schema = { ...route.schema, headers };
      // Last of the route's preHandlers: input is validated and the caller known before a key is claimed.
      route.preHandler = [...[route.preHandler ?? []].flat(), preHandler] as typeof route.preHandler;
      route.onSend = [...[route.onSend ?? []].flat(), onSend] as typeof route.onSend;
    });

    async function purgeExpired(): Promise<number> {
      let total = 0;
      for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
        // skip locked: replicas sweeping at the same moment take different rows instead of waiting.
        const result = await sql`
          delete from idempotency_keys where (scope, key_hash) in (
            select scope, key_hash from idempotency_keys where expires_at <= now()
            order by expires_at limit ${PURGE_BATCH} for update skip locked)`.execute(db);
        const removed = Number(result.numAffectedRows ?? 0n);
        total += removed;
        if (removed < PURGE_BATCH) break;
      }
      return total;
    }
    app.decorate('idempotency', { purgeExpired });

    let sweeper: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      sweeper = setInterval(() => {
        purgeExpired().then(
          (removed) => {
            if (removed > 0) app.log.info({ removed }, 'purged expired idempotency keys');
          },
          (error: unknown) => app.log.warn({ err: error }, 'idempotency key purge failed'),
        );
      }, PURGE_INTERVAL_MS);
      sweeper.unref();
    });
    app.addHook('onClose', async () => {
      clearInterval(sweeper);
      for (const renewal of held) stopRenewing(renewal);
    });
  },
  { name: 'idempotency', dependencies: ['database', 'metrics', 'authentication'] },
);
