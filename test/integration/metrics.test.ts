// The service's own metrics through the real app: requests in flight (including clients that leave
// mid-request, on a real socket), authentication events, random values generated; and the whole /metrics
// exposition, after traffic that creates as many series as possible, linted by `promtool check metrics`.
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { App } from '../../src/app.js';
import { AUTH_EVENTS, type AuthEvent } from '../../src/observability/auth-metrics.js';
import { buildTestApp, useTestApp, type TestApp } from '../helpers/app.js';
import { PASSWORD, bearer, createUser, login, uniqueName } from '../helpers/identity.js';
import { PROMTOOL, lintMetrics, requireTools } from '../helpers/promtool.js';
import { TEST_REDIS_URL, createTestDatabase, type TestDatabase } from '../helpers/services.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (format 0.0.4). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[name!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(app: App): Promise<Sample[]> {
  const response = await app.inject({ url: '/metrics' });
  expect(response.statusCode).toBe(200);
  return parseExposition(response.body);
}

/** Values of one metric by the value of one of its labels. */
function byLabel(samples: Sample[], name: string, label: string): Record<string, number> {
  return Object.fromEntries(
    samples.filter((s) => s.name === name).map((s) => [s.labels[label] ?? '', s.value] as const),
  );
}

/** The gauge straight from the registry: a scrape over HTTP would count itself. */
async function inFlight(app: App): Promise<number> {
  const metric = await app.metrics.registry.getSingleMetric('http_requests_in_flight')!.get();
  return metric.values[0]?.value ?? Number.NaN;
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(10);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

describe('http_requests_in_flight', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await buildTestApp({ FAULT_INJECTION_ENABLED: 'true' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await t.app.close();
  });

  it('when requests of every outcome have been answered, then it is back to 0, and a scrape sees only itself', async () => {
    const statuses = await Promise.all(
      ['/v1/random', '/v1/random?min=9&max=1', '/nope', '/health/ready', '/v1/auth/me'].map(
        async (path) => (await fetch(`http://127.0.0.1:${port}${path}`)).status,
      ),
    );
    expect(statuses).toEqual([200, 400, 404, 200, 401]);
    expect(await inFlight(t.app)).toBe(0);
    const samples = await scrape(t.app);
    expect(samples.filter((s) => s.name === 'http_requests_in_flight')).toEqual([
      { name: 'http_requests_in_flight', labels: {}, value: 1 },
    ]);
    expect(await inFlight(t.app)).toBe(0);
  });

  it.each([
    ['a GET', 'GET /v1/random HTTP/1.1\r\nHost: test\r\nX-Fault-Delay-Ms: 300\r\n\r\n'],
    [
      'a POST whose body was already read',
      'POST /v1/auth/login HTTP/1.1\r\nHost: test\r\nX-Fault-Delay-Ms: 300\r\n' +
        'Content-Type: application/json\r\nContent-Length: 37\r\n\r\n{"username":"nobody","password":"x1"}',
    ],
  ])(
    'when the client of %s disconnects mid-request, then it counts while served and returns to 0 for good',
    async (_label, request) => {
      expect(await inFlight(t.app)).toBe(0);
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(request);
      // The fault delay holds the request in its preHandler, after the body was parsed.
      await until('the request to be in flight', async () => (await inFlight(t.app)) === 1);
      socket.destroy();
      await until('the abandoned request to leave the gauge', async () => (await inFlight(t.app)) === 0);
      // Past the delay the handler finishes and answers into the closed socket: still 0, never -1.
      await sleep(500);
      expect(await inFlight(t.app)).toBe(0);
    },
  );
});

describe('auth_events_total', () => {
  const t = useTestApp({ LOGIN_MAX_FAILURES: '2' });

  async function events(): Promise<Record<string, number>> {
    return byLabel(await scrape(t.app), 'auth_events_total', 'event');
  }

  it('when the app starts, then every event has its series at 0', async () => {
    const fresh = await buildTestApp();
    try {
      const values = byLabel(await scrape(fresh.app), 'auth_events_total', 'event');
      expect(values).toEqual(Object.fromEntries(AUTH_EVENTS.map((e) => [e, 0])));
    } finally {
      await fresh.app.close();
    }
  });

  it('when users sign in, refresh, replay, change passwords, manage keys and present bad credentials, then each event is counted once', async () => {
    const before = await events();
    const user = await createUser(t.app);
    const ip = '10.9.8.7'; // the lockout below is per client IP, kept apart from the other tests
    const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
      t.app.inject({ method: 'POST', url, payload, headers, remoteAddress: ip });

    const tokens = await login(t.app, user.username, PASSWORD, ip); // login_succeeded
    const refreshed = await post('/v1/auth/refresh', { refresh_token: tokens.refresh_token }); // token_refreshed
    expect(refreshed.statusCode).toBe(200);
    // refresh_reuse_detected (the rotated token again), refresh_rejected (an unknown one)
    expect((await post('/v1/auth/refresh', { refresh_token: tokens.refresh_token })).statusCode).toBe(401);
    expect((await post('/v1/auth/refresh', { refresh_token: 'not-a-token-we-issued' })).statusCode).toBe(401);

    const session = await login(t.app, user.username, PASSWORD, ip); // login_succeeded
    const auth = bearer(session.access_token);
    const newPassword = `${PASSWORD} and more`;
    const changed = await t.app.inject({
      method: 'PUT',
      url: '/v1/auth/password',
      headers: auth,
      payload: { current_password: PASSWORD, new_password: newPassword },
    }); // password_changed
    expect(changed.statusCode).toBe(204);
    const created = await post('/v1/api-keys', { name: 'ci', scopes: ['random:read'] }, auth); // api_key_created
    expect(created.statusCode).toBe(201);
    const { id, key } = created.json<{ id: string; key: string }>();
    const revoked = await t.app.inject({ method: 'DELETE', url: `/v1/api-keys/${id}`, headers: auth }); // api_key_revoked
    expect(revoked.statusCode).toBe(204);
    // api_key_auth_failed: the revoked key, and a key that never existed
    for (const presented of [key, `rak_00000000_${uniqueName('x')}`]) {
      const response = await t.app.inject({ url: '/v1/auth/me', headers: { 'x-api-key': presented } });
      expect(response.statusCode).toBe(401);
    }
    // token_rejected: a forged token, and an Authorization header that is not Bearer
    for (const authorization of ['Bearer not.a.jwt', 'Basic dXNlcjpwYXNz']) {
      const response = await t.app.inject({ url: '/v1/auth/me', headers: { authorization } });
      expect(response.statusCode).toBe(401);
    }
    const loggedOut = await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: auth }); // logout
    expect(loggedOut.statusCode).toBe(204);
    // login_failed twice (LOGIN_MAX_FAILURES=2), then login_locked
    const attempts = [];
    for (let i = 0; i < 3; i++)
      attempts.push(
        (await post('/v1/auth/login', { username: user.username, password: 'wrong' })).statusCode,
      );
    expect(attempts).toEqual([401, 401, 429]);

    const after = await events();
    const delta = Object.fromEntries(AUTH_EVENTS.map((e) => [e, after[e]! - before[e]!]));
    const expected: Record<AuthEvent, number> = {
      login_succeeded: 2,
      login_failed: 2,
      login_locked: 1,
      token_refreshed: 1,
      refresh_rejected: 1,
      refresh_reuse_detected: 1,
      logout: 1,
      password_changed: 1,
      api_key_created: 1,
      api_key_revoked: 1,
      api_key_auth_failed: 2,
      token_rejected: 2,
    };
    expect(delta).toEqual(expected);
  });

  it('when a request carries a valid credential or none, then nothing is counted', async () => {
    const user = await createUser(t.app);
    const tokens = await login(t.app, user.username);
    const before = await events();
    expect(
      (await t.app.inject({ url: '/v1/auth/me', headers: bearer(tokens.access_token) })).statusCode,
    ).toBe(200);
    expect((await t.app.inject({ url: '/v1/random' })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/v1/auth/me' })).statusCode).toBe(401);
    expect(await events()).toEqual(before);
  });
});

describe('random_values_generated_total', () => {
  const t = useTestApp();

  it('when values of each kind are drawn, then each kind grows by the number of values answered, and refused requests add nothing', async () => {
    const before = byLabel(await scrape(t.app), 'random_values_generated_total', 'kind');
    expect(Object.keys(before).sort()).toEqual(
      ['byte', 'decimal', 'gaussian', 'integer', 'sequence', 'string', 'uuid'].sort(),
    );
    const urls = [
      '/v1/random?min=1&max=6',
      '/v1/random/integers?count=3&base=16',
      '/v1/random/sequences?min=1&max=5',
      '/v1/random/decimals?count=2',
      '/v1/random/gaussians?count=4',
      '/v1/random/strings?count=6&length=3',
      '/v1/random/uuids?count=7',
      '/v1/random/bytes?size=16',
    ];
    for (const url of urls) expect((await t.app.inject({ url })).statusCode, url).toBe(200);
    for (const url of ['/v1/random/integers?count=0', '/v1/random?min=9&max=1', '/v1/random/bytes?size=-1'])
      expect((await t.app.inject({ url })).statusCode, url).toBe(400);

    const after = byLabel(await scrape(t.app), 'random_values_generated_total', 'kind');
    const delta = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - before[k]!]));
    expect(delta).toEqual({ integer: 4, sequence: 5, decimal: 2, gaussian: 4, string: 6, uuid: 7, byte: 16 });
  });
});

const realServices = inject('postgresAvailable') && inject('redisAvailable');

describe.skipIf(!requireTools(PROMTOOL))('promtool check metrics', () => {
  let t: TestApp;
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    // On the real PostgreSQL and Redis when they answer, so their adapters' series are in the scrape too;
    // load shedding on, so its counter is registered.
    database = realServices ? await createTestDatabase('metrics') : undefined;
    t = await buildTestApp({
      ...(database === undefined ? {} : { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL }),
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '5000',
      FAULT_INJECTION_ENABLED: 'true',
    });
  });
  afterAll(async () => {
    await t?.app.close();
    await database?.drop();
  });

  it('when the app has served logins, API keys, draws, errors and probes, then promtool finds nothing in its /metrics', async () => {
    const user = await createUser(t.app);
    const tokens = await login(t.app, user.username);
    const auth = bearer(tokens.access_token);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: auth,
      payload: { name: 'lint', scopes: ['random:read'] },
    });
    expect(created.statusCode).toBe(201);
    const key = { 'x-api-key': created.json<{ key: string }>().key };
    for (const url of [
      '/v1/random',
      '/v1/random/integers?count=2',
      '/v1/random/sequences?min=1&max=3',
      '/v1/random/decimals',
      '/v1/random/gaussians',
      '/v1/random/strings',
      '/v1/random/uuids',
      '/v1/random/bytes',
      '/v1/random?min=5&max=1',
      '/health/ready',
      '/nope',
    ])
      await t.app.inject({ url, headers: key });
    await t.app.inject({ url: '/v1/random', headers: { 'x-fault-status': '503' } });
    await t.app.inject({ url: '/v1/auth/me', headers: bearer('forged') });

    const response = await t.app.inject({ url: '/metrics' });
    const names = new Set(parseExposition(response.body).map((s) => s.name));
    for (const name of ['http_requests_in_flight', 'auth_events_total', 'random_values_generated_total'])
      expect(names, name).toContain(name);

    // prom-client's per-type gauges stand in for the removed *_total ones.
    expect(names).toContain('nodejs_active_handles');
    expect(lintMetrics(response.body)).toEqual([]);
  });

  it('when an exposition breaks the conventions, then the lint reports it', () => {
    const broken = '# HELP jobs_done Jobs.\n# TYPE jobs_done counter\njobs_done 3\n';
    expect(lintMetrics(broken)).toEqual(['jobs_done counter metrics should have "_total" suffix']);
    expect(lintMetrics('jobs_done{ 3\n')).toEqual([expect.stringMatching(/exited with 1/)]);
  });
});
