// Idempotency-Key through the real app: replay without running the handler again, body mismatch, a
// duplicate while the first still runs, scopes per caller, released 5xx, expiry and the purge; the core
// replay and a concurrent duplicate again on the real PostgreSQL.
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { PASSWORD, bearer, createUser, login, uniqueName } from '../helpers/identity.js';
import { createTestDatabase, type TestDatabase } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const problemType = (slug: string) => `urn:reliability-api:problem:${slug}`;
let ipCounter = 0;
const uniqueIp = () => `203.0.113.${++ipCounter}`;

async function adminHeaders(app: App) {
  const admin = await createUser(app, 'admin');
  return bearer((await login(app, admin.username)).access_token);
}

/** POST /v1/users as `auth`, with an Idempotency-Key. */
const createUserWith = (app: App, auth: Record<string, string>, key: string, username: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/users',
    headers: { ...auth, 'idempotency-key': key },
    payload: { username, password: PASSWORD },
  });

const countUsers = async (app: App, username: string) =>
  (await app.database.db.selectFrom('users').select('id').where('username', '=', username).execute()).length;

describe('idempotency keys on the embedded database', () => {
  let t: TestApp;
  let admin: Record<string, string>;
  // A test route whose handler counts its runs per tag and can be held open or made to crash.
  const runs = new Map<string, number>();
  const failing = new Set<string>();
  let hold: Promise<void> = Promise.resolve();
  const post = (tag: string, ip: string, key?: string, extra: Record<string, unknown> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/test/orders',
      remoteAddress: ip,
      headers: key === undefined ? {} : { 'idempotency-key': key },
      payload: { tag, ...extra },
    });

  beforeAll(async () => {
    t = await buildTestApp({ CORS_ALLOW_ORIGINS: 'https://app.example' }, { start: false });
    t.app.post(
      '/test/orders',
      {
        config: { idempotency: true },
        schema: { body: Type.Object({ tag: Type.String(), qty: Type.Optional(Type.Integer()) }) },
      },
      async (request, reply) => {
        const { tag } = request.body as { tag: string };
        runs.set(tag, (runs.get(tag) ?? 0) + 1);
        await hold;
        if (failing.delete(tag)) throw new Error('the order service crashed');
        return reply
          .code(201)
          .header('location', `/test/orders/${tag}`)
          .send({ tag, run: runs.get(tag) });
      },
    );
    await t.app.ready();
    await startApp(t.app, t.config);
    admin = await adminHeaders(t.app);
  });
  afterAll(async () => {
    await t.app.close();
  });

  it('when a user creation is retried with the same key and body, then the first answer is replayed and no second user exists', async () => {
    const username = uniqueName('replay');
    const key = randomUUID();
    const first = await createUserWith(t.app, admin, key, username);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const retry = await createUserWith(t.app, admin, key, username);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['content-type']).toBe(first.headers['content-type']);
    expect(retry.json()).toEqual(first.json());
    expect(await countUsers(t.app, username)).toBe(1);
    const created = await t.app.database.db
      .selectFrom('audit_events')
      .select('id')
      .where('event', '=', 'user_created')
      .where('subject_id', '=', first.json<{ id: string }>().id)
      .execute();
    expect(created).toHaveLength(1);
  });

  it('when an API key creation is retried, then the same key comes back, no second key is made, and the table holds neither key in the clear', async () => {
    const user = await createUser(t.app);
    const headers = {
      ...bearer((await login(t.app, user.username)).access_token),
      'idempotency-key': 'ik-1',
    };
    const request = { method: 'POST' as const, url: '/v1/api-keys', headers };
    const payload = { name: 'ci', scopes: ['random:read'] };
    const first = await t.app.inject({ ...request, payload });
    // Same body with its keys in another order: the fingerprint is of the meaning, not the bytes.
    const retry = await t.app.inject({ ...request, payload: { scopes: ['random:read'], name: 'ci' } });
    expect(first.statusCode).toBe(201);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['cache-control']).toBe('no-store');
    expect(retry.json()).toEqual(first.json());
    const keys = await t.app.database.db
      .selectFrom('api_keys')
      .select('id')
      .where('user_id', '=', user.id)
      .execute();
    expect(keys).toHaveLength(1);
    const row = await t.app.database.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('scope', '=', `user:${user.id}`)
      .executeTakeFirstOrThrow();
    expect(row.key_hash).not.toContain('ik-1');
    expect(Buffer.from(row.body!).toString('latin1')).not.toContain(first.json<{ key: string }>().key);
  });

  it('when the same key comes with a different body, then 422 problem+json and the handler does not run', async () => {
    const key = randomUUID();
    const username = uniqueName('mismatch');
    const send = (name: string) => createUserWith(t.app, admin, key, name);
    expect((await send(username)).statusCode).toBe(201);
    const other = `${username}-x`;
    const response = await send(other);
    expect(response.statusCode).toBe(422);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().type).toBe(problemType('idempotency-key-reused'));
    expect(await countUsers(t.app, other)).toBe(0);
  });

  it('when a duplicate arrives while the first still runs, then 409 with Retry-After, and afterwards the retry is replayed', async () => {
    const ip = uniqueIp();
    let open!: () => void;
    hold = new Promise((resolve) => (open = resolve));
    const first = post('held', ip, 'k-held');
    while (runs.get('held') !== 1) await sleep(5);
    const duplicate = await post('held', ip, 'k-held');
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.headers['retry-after']).toBe('1');
    expect(duplicate.json().type).toBe(problemType('idempotency-key-in-use'));
    open();
    hold = Promise.resolve();
    expect((await first).statusCode).toBe(201);
    const retry = await post('held', ip, 'k-held');
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers.location).toBe('/test/orders/held');
    expect(runs.get('held')).toBe(1);
  });

  it('when different callers use the same key, then each gets its own answer', async () => {
    const key = 'shared-key';
    const a = await post('by-ip', uniqueIp(), key);
    const b = await post('by-ip', uniqueIp(), key);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(runs.get('by-ip')).toBe(2);

    const otherAdmin = await adminHeaders(t.app);
    const created = await Promise.all(
      [admin, otherAdmin].map((auth) => createUserWith(t.app, auth, key, uniqueName('scoped'))),
    );
    expect(created.map((r) => r.statusCode)).toEqual([201, 201]);
    expect(created[0]!.json().id).not.toBe(created[1]!.json().id);
  });

  it('when the first answer is a 4xx, then the retry replays it, the same problem with the same request id', async () => {
    const taken = await createUser(t.app);
    const key = randomUUID();
    const first = await createUserWith(t.app, admin, key, taken.username);
    expect(first.statusCode).toBe(409);
    const retry = await createUserWith(t.app, admin, key, taken.username);
    expect(retry.statusCode).toBe(409);
    expect(retry.headers['content-type']).toBe(PROBLEM);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(retry.json().request_id).toBe(first.json().request_id);
  });

  it('when the handler crashes (5xx), then the key is released and a retry runs the request again', async () => {
    const ip = uniqueIp();
    failing.add('crash');
    const first = await post('crash', ip, 'k-crash');
    expect(first.statusCode).toBe(500);
    const retry = await post('crash', ip, 'k-crash');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(runs.get('crash')).toBe(2);
  });

  it.each([
    ['longer than 255 characters', 'k'.repeat(256)],
    ['not ASCII', 'clé'],
    ['an empty quoted string', '""'],
  ])('when the key is %s, then 400 problem+json names the header and nothing runs', async (_label, key) => {
    const response = await post('bad-key', uniqueIp(), key);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().errors).toEqual([
      expect.objectContaining({ name: expect.stringMatching(/^idempotency-key$/i), in: 'header' }),
    ]);
    expect(runs.get('bad-key')).toBeUndefined();
  });

  it('when the key is sent as a quoted structured-field string, then it names the same key as the bare form', async () => {
    const ip = uniqueIp();
    expect((await post('quoted', ip, '"k-q"')).statusCode).toBe(201);
    expect((await post('quoted', ip, 'k-q')).headers['idempotent-replayed']).toBe('true');
  });

  it('when no key is sent, then every request runs as usual', async () => {
    const ip = uniqueIp();
    const answers = [await post('plain', ip), await post('plain', ip)];
    expect(answers.map((r) => r.statusCode)).toEqual([201, 201]);
    expect(answers.every((r) => r.headers['idempotent-replayed'] === undefined)).toBe(true);
    expect(runs.get('plain')).toBe(2);
  });

  it('when the stored answer has expired, then the key counts as new and the purge deletes expired rows only', async () => {
    const ip = uniqueIp();
    const db = t.app.database.db;
    expect((await post('expiry', ip, 'k-old')).statusCode).toBe(201);
    expect((await post('expiry', ip, 'k-kept')).statusCode).toBe(201);
    const expire = () =>
      db
        .updateTable('idempotency_keys')
        .set({ expires_at: new Date(Date.now() - 1_000) })
        .where('scope', '=', `ip:${ip}`)
        .where('status', 'is not', null)
        .execute();
    await expire();
    const again = await post('expiry', ip, 'k-old');
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(runs.get('expiry')).toBe(3);

    await expire();
    const kept = createHash('sha256').update('k-kept').digest('hex');
    await db
      .updateTable('idempotency_keys')
      .set({ expires_at: new Date(Date.now() + 60_000) })
      .where('scope', '=', `ip:${ip}`)
      .where('key_hash', '=', kept)
      .execute();
    expect(await t.app.idempotency.purgeExpired()).toBeGreaterThanOrEqual(1);
    const left = await db
      .selectFrom('idempotency_keys')
      .select('key_hash')
      .where('scope', '=', `ip:${ip}`)
      .execute();
    expect(left).toEqual([{ key_hash: kept }]);
  });

  it('when a browser preflights a request with the header, then CORS allows it', async () => {
    const response = await t.app.inject({
      method: 'OPTIONS',
      url: '/v1/users',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, idempotency-key',
      },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-headers']).toMatch(/idempotency-key/i);
    // ...and the answer lets the script read whether it was a replay.
    const answer = await t.app.inject({ url: '/v1/users', headers: { origin: 'https://app.example' } });
    expect(answer.headers['access-control-expose-headers']).toMatch(/idempotent-replayed/i);
  });

  it('when the OpenAPI document is read, then opted-in routes document the header and others do not', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json();
    const header = (op: { parameters?: { in: string; name: string }[] }) =>
      op.parameters?.find((p) => p.in === 'header' && p.name === 'idempotency-key');
    expect(header(doc.paths['/v1/users'].post)).toBeDefined();
    expect(header(doc.paths['/v1/api-keys'].post)).toBeDefined();
    expect(header(doc.paths['/v1/users'].get)).toBeUndefined();
  });
});

describe('a GET route that opts in', () => {
  it('when it is declared, then the app refuses it at start-up', async () => {
    const t = await buildTestApp({}, { start: false });
    try {
      expect(() => t.app.get('/test/read', { config: { idempotency: true } }, async () => ({}))).toThrow(
        /POST and PATCH/,
      );
    } finally {
      await t.app.close();
    }
  });
});

describe.skipIf(!inject('postgresAvailable'))('idempotency keys on PostgreSQL', () => {
  let database: TestDatabase;
  let t: TestApp;
  let admin: Record<string, string>;
  beforeAll(async () => {
    database = await createTestDatabase('idempotency');
    t = await buildTestApp({ DATABASE_URL: database.url, DB_POOL_SIZE: '4' });
    admin = await adminHeaders(t.app);
  });
  afterAll(async () => {
    await t?.app.close();
    await database?.drop();
  });

  const createWith = (key: string, username: string) => createUserWith(t.app, admin, key, username);

  it('when a user creation is retried with the same key, then it is replayed and one user exists', async () => {
    const key = randomUUID();
    const username = uniqueName('pg');
    const first = await createWith(key, username);
    const retry = await createWith(key, username);
    expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    expect(await countUsers(t.app, username)).toBe(1);
  });

  it('when two identical requests race on separate connections, then exactly one runs', async () => {
    const key = randomUUID();
    const username = uniqueName('race');
    const answers = await Promise.all([createWith(key, username), createWith(key, username)]);
    const fresh = answers.filter(
      (r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined,
    );
    expect(fresh).toHaveLength(1);
    for (const other of answers.filter((r) => r !== fresh[0])) {
      expect(other.statusCode === 409 || other.headers['idempotent-replayed'] === 'true').toBe(true);
    }
    expect(await countUsers(t.app, username)).toBe(1);
  });
});

describe('the lease of a key whose request is still running', () => {
  // The shortest lease the setting allows: renewed every second while the request runs.
  const LEASE_SECONDS = 3;
  let t: TestApp;
  let open!: () => void;
  const held = new Promise<void>((resolve) => (open = resolve));
  let runs = 0;
  const post = () =>
    t.app.inject({
      method: 'POST',
      url: '/test/slow',
      remoteAddress: '198.51.100.7',
      headers: { 'idempotency-key': 'k-slow' },
      payload: { n: 1 },
    });
  const expiresAt = async () =>
    (
      await t.app.database.db
        .selectFrom('idempotency_keys')
        .select('expires_at')
        .where('scope', '=', 'ip:198.51.100.7')
        .executeTakeFirstOrThrow()
    ).expires_at;

  beforeAll(async () => {
    t = await buildTestApp({ IDEMPOTENCY_LEASE_SECONDS: String(LEASE_SECONDS) }, { start: false });
    t.app.post(
      '/test/slow',
      { config: { idempotency: true }, schema: { body: Type.Object({ n: Type.Integer() }) } },
      async (_request, reply) => {
        runs++;
        await held;
        return reply.code(201).send({ runs });
      },
    );
    await t.app.ready();
    await startApp(t.app, t.config);
  });
  afterAll(async () => {
    open();
    await t.app.close();
  });

  it('when the request outlasts two leases, then its replica keeps renewing it: retries get 409 throughout and the answer is stored', async () => {
    const first = post();
    while (runs !== 1) await sleep(5);
    const claimed = new Date(await expiresAt()).getTime();
    await sleep(LEASE_SECONDS * 2_000 + 500);
    // Renewed: the lease now ends well after the one first claimed, and the key is still held.
    expect(new Date(await expiresAt()).getTime()).toBeGreaterThan(claimed + LEASE_SECONDS * 1_000);
    const duplicate = await post();
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().type).toBe(problemType('idempotency-key-in-use'));
    open();
    expect((await first).statusCode).toBe(201);
    const retry = await post();
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(runs).toBe(1);
    // Stored: the row now lives for the TTL (a day), not the lease.
    expect(new Date(await expiresAt()).getTime()).toBeGreaterThan(Date.now() + 3_600_000);
  });
});
