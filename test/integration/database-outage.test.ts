// What a request that needs PostgreSQL gets when PostgreSQL is not there: a 503 problem+json with
// Retry-After within 2 s (never a 500, never the pool's long wait), whether the server was stopped
// (connections terminated, then refused) or the network went silent (nothing answers at all); routes
// that do not need it keep answering, and everything recovers without a restart.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PrivatePostgres } from '../cluster/rig/postgres.js';
import { cleanup } from '../cluster/rig/processes.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { closedPort, createTestDatabase, type TestDatabase } from '../helpers/services.js';
import { SilencingProxy } from '../helpers/silencing-proxy.js';
import { PROBLEM } from '../helpers/problem.js';

// A database-bound answer: an unknown user's login reads the users table (401 when the database works).
const login = (app: TestApp['app']) =>
  app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username: 'nobody-here', password: 'not-the-password-1' },
  });

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

function expectUnavailable(response: Awaited<ReturnType<typeof login>>) {
  expect(response.statusCode, response.body).toBe(503);
  expect(response.headers['content-type']).toBe(PROBLEM);
  expect(response.headers['retry-after']).toBe('2');
  expect(response.json()).toMatchObject({
    status: 503,
    type: 'urn:reliability-api:problem:service-unavailable',
    detail: 'the database is unavailable; retry shortly',
  });
}

async function untilStatus(fn: () => Promise<{ statusCode: number }>, status: number, timeoutMs: number) {
  const started = performance.now();
  for (;;) {
    if ((await fn()).statusCode === status) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`no ${status} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

const canRunPostgres = process.getuid?.() === 0 || process.env.CI === 'true';

describe.skipIf(!canRunPostgres)('when PostgreSQL is stopped and started again', { timeout: 60_000 }, () => {
  let postgres: PrivatePostgres;
  let test: TestApp;

  beforeAll(async () => {
    postgres = await PrivatePostgres.create(await closedPort(), ['127.0.0.1']);
    await postgres.createDatabase('outage');
    test = await buildTestApp({ DATABASE_URL: postgres.url('outage') });
  });

  afterAll(async () => {
    await test?.app.close();
    await cleanup();
  });

  it('then database-bound requests answer 503 with Retry-After within 2 s, the rest 200, and all recovers by itself', async () => {
    const { app, logs } = test;
    expect((await login(app)).statusCode).toBe(401);
    await postgres.stop('fast');

    // First the pool's connections are terminated by the server, then new ones are refused.
    for (let i = 0; i < 5; i++) {
      const { value, ms } = await timed(() => login(app));
      expectUnavailable(value);
      expect(ms).toBeLessThan(2_000);
    }
    expect((await app.inject({ url: '/v1/random' })).statusCode).toBe(200);
    expect(await untilStatus(() => app.inject({ url: '/health/ready' }), 503, 3_000)).toBeLessThan(3_000);
    const warned = logs.filter((l) => l.msg === 'database unavailable: requests that need it answer 503');
    expect(warned).toHaveLength(1);
    expect(logs.filter((l) => l.level === 50 || l.level === 'error')).toEqual([]);

    await postgres.start();
    const recovered = await untilStatus(() => login(app), 401, 5_000);
    expect(recovered).toBeLessThan(5_000);
    await untilStatus(() => app.inject({ url: '/health/ready' }), 200, 5_000);
    expect(logs.some((l) => l.msg === 'database available again')).toBe(true);
  });
});

describe.skipIf(!inject('postgresAvailable'))(
  'when the network to PostgreSQL goes silent',
  { timeout: 60_000 },
  () => {
    let db: TestDatabase;
    let proxy: SilencingProxy;
    let test: TestApp;

    beforeAll(async () => {
      db = await createTestDatabase('silent');
      const url = new URL(db.url);
      proxy = await SilencingProxy.start(Number(url.port || 5432), url.hostname);
      url.port = String(proxy.port);
      test = await buildTestApp({ DATABASE_URL: url.toString() });
    });

    afterAll(async () => {
      await test?.app.close();
      await proxy?.close();
      await db?.drop();
    });

    it('then a query on an open connection and a new connection each give up within 2 s with a 503, and the pool heals', async () => {
      const { app } = test;
      // Warm: the pool holds an open connection.
      expect((await login(app)).statusCode).toBe(401);
      proxy.silence();

      // The open connection: its query has no answer; the client gives up after the statement timeout
      // plus 500 ms and discards the connection.
      const onOpen = await timed(() => login(app));
      expectUnavailable(onOpen.value);
      expect(onOpen.ms).toBeGreaterThan(1_000);
      expect(onOpen.ms).toBeLessThan(2_000);
      // Now a new connection is needed: its handshake has no answer within the connect timeout.
      const onNew = await timed(() => login(app));
      expectUnavailable(onNew.value);
      expect(onNew.ms).toBeLessThan(2_000);
      // Concurrent requests queue for the pool within the same deadline.
      const burst = await timed(() => Promise.all(Array.from({ length: 30 }, () => login(app))));
      for (const response of burst.value) expectUnavailable(response);
      expect(burst.ms).toBeLessThan(2_000);
      expect((await app.inject({ url: '/v1/random' })).statusCode).toBe(200);

      proxy.restore();
      expect(await untilStatus(() => login(app), 401, 5_000)).toBeLessThan(5_000);
    });
  },
);
