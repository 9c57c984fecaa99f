// Rate limiting through the real app: policies per tier with IETF headers, a global limit shared through
// the real Redis by two instances, and Redis failing (stopped, paused) without stalling any request.
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { buildTestApp, useTestApp, type TestApp } from '../helpers/app.js';
import { bearer, createUser, login } from '../helpers/identity.js';
import { closedPort, TEST_REDIS_URL } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const policy = (limit: number, burst: number) => ({ limit, window_seconds: 60, burst });
const LIMITS = JSON.stringify({
  api: { anonymous: policy(60, 3), user: policy(600, 5), api_key: policy(1200, 5), admin: policy(6000, 50) },
  auth: { anonymous: policy(1000, 1000) },
});

async function burst(t: TestApp, n: number, headers: Record<string, string> = {}, ip = '198.51.100.1') {
  const codes: number[] = [];
  for (let i = 0; i < n; i++)
    codes.push((await t.app.inject({ url: '/v1/random', headers, remoteAddress: ip })).statusCode);
  return codes;
}

describe('on the memory store', () => {
  const t = useTestApp({ RATE_LIMITS: LIMITS });

  it('when an anonymous client exceeds its burst, then 429 problem+json with Retry-After and RateLimit headers', async () => {
    const first = await t.app.inject({ url: '/v1/random', remoteAddress: '198.51.100.2' });
    expect(first.headers['ratelimit-policy']).toBe('"api-anonymous";q=60;w=60');
    expect(first.headers.ratelimit).toMatch(/^"api-anonymous";r=2;t=\d+$/);
    expect(await burst(t, 3, {}, '198.51.100.2')).toEqual([200, 200, 429]);
    const limited = await t.app.inject({ url: '/v1/random', remoteAddress: '198.51.100.2' });
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toBe(PROBLEM);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.json().type).toBe('urn:reliability-api:problem:too-many-requests');
  });

  it('counts each client IP apart', async () => {
    expect(await burst(t, 4, {}, '198.51.100.3')).toEqual([200, 200, 200, 429]);
    expect(await burst(t, 1, {}, '198.51.100.4')).toEqual([200]);
  });

  it('gives a signed-in user their own, larger budget, whatever their IP', async () => {
    const user = await createUser(t.app);
    const headers = bearer((await login(t.app, user.username)).access_token);
    const codes = [
      ...(await burst(t, 3, headers, '198.51.100.5')),
      ...(await burst(t, 3, headers, '198.51.100.6')),
    ];
    expect(codes).toEqual([200, 200, 200, 200, 200, 429]);
    const response = await t.app.inject({ url: '/v1/random', headers, remoteAddress: '198.51.100.7' });
    expect(response.headers['ratelimit-policy']).toBe('"api-user";q=600;w=60');
  });

  it('never limits probes, metrics or docs', async () => {
    await burst(t, 5, {}, '198.51.100.8');
    for (const url of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      const response = await t.app.inject({ url, remoteAddress: '198.51.100.8' });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['ratelimit'], url).toBeUndefined();
    }
  });

  it('counts decisions in rate_limit_decisions_total', async () => {
    const text = (await t.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/rate_limit_decisions_total\{policy="api-anonymous",outcome="allowed"\} [1-9]/);
    expect(text).toMatch(/rate_limit_decisions_total\{policy="api-anonymous",outcome="limited"\} [1-9]/);
  });

  it('applies a per-key override to that API key only', async () => {
    const user = await createUser(t.app);
    const headers = bearer((await login(t.app, user.username)).access_token);
    const key = (
      await t.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers,
        payload: { name: 'k', scopes: ['random:read'] },
      })
    ).json();
    const special = await buildTestApp({
      RATE_LIMITS: JSON.stringify({ ...JSON.parse(LIMITS), api_keys: { [key.id]: policy(60, 1) } }),
    });
    try {
      // Same shared database in this file, so the key exists for the second app too.
      expect(await burst(special, 2, { 'x-api-key': key.key })).toEqual([200, 429]);
    } finally {
      await special.app.close();
    }
  });
});

describe.skipIf(!inject('redisAvailable'))('on Redis', () => {
  const prefix = `rl-test-${Date.now()}-`;
  const env = (extra: Record<string, string> = {}) => ({
    RATE_LIMITS: LIMITS,
    RATE_LIMIT_STORAGE_URI: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    ...extra,
  });

  async function ready(t: TestApp) {
    for (let i = 0; i < 100 && t.app.rateLimit.storeStatus() !== 'up'; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(t.app.rateLimit.storeStatus()).toBe('up');
  }

  it('when two instances share Redis, then they enforce one global limit', async () => {
    const a = await buildTestApp(env());
    const b = await buildTestApp(env());
    try {
      await Promise.all([ready(a), ready(b)]);
      const codes = [
        ...(await burst(a, 2, {}, '192.0.2.10')),
        ...(await burst(b, 1, {}, '192.0.2.10')),
        ...(await burst(a, 1, {}, '192.0.2.10')),
        ...(await burst(b, 1, {}, '192.0.2.10')),
      ];
      expect(codes).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('when Redis is paused, then every request still answers within the deadline plus a little, and readiness degrades', async () => {
    const t = await buildTestApp(env({ RATE_LIMIT_REDIS_TIMEOUT_MS: '50' }));
    const admin = new Redis(TEST_REDIS_URL);
    try {
      await ready(t);
      await admin.call('CLIENT', 'PAUSE', '800', 'WRITE');
      const slowest = { ms: 0 };
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        codes.push(
          (await t.app.inject({ url: '/v1/random', remoteAddress: `192.0.2.${20 + i}` })).statusCode,
        );
        slowest.ms = Math.max(slowest.ms, performance.now() - started);
      }
      expect(codes).toEqual([200, 200, 200, 200, 200]);
      // The deadline is 50 ms; anything near a second would mean a request waited for Redis.
      expect(slowest.ms).toBeLessThan(400);
      const readiness = await t.app.inject({ url: '/health/ready' });
      expect(readiness.statusCode).toBe(200);
      expect(readiness.json().checks.rate_limit.status).toBe('degraded');
      expect((await t.app.inject({ url: '/metrics' })).body).toMatch(/rate_limit_store_errors_total [1-9]/);
      expect(t.logs.some((l) => l.msg === 'rate-limit store unavailable; deciding locally')).toBe(true);

      // Redis comes back: it is used again without a restart.
      await admin.call('CLIENT', 'UNPAUSE');
      await new Promise((r) => setTimeout(r, 1_100));
      await t.app.inject({ url: '/v1/random', remoteAddress: '192.0.2.30' });
      expect(t.app.rateLimit.storeStatus()).toBe('up');
      expect(await admin.exists(`${prefix}rl:api-anonymous:192.0.2.30`)).toBe(1);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
      await t.app.close();
    }
  });

  it('when Redis is down, then the local limiter decides (open) or the answer is 503 (closed)', async () => {
    const down = `redis://127.0.0.1:${await closedPort()}`;
    const open = await buildTestApp(env({ RATE_LIMIT_STORAGE_URI: down }));
    const closed = await buildTestApp(
      env({ RATE_LIMIT_STORAGE_URI: down, RATE_LIMIT_FAILURE_MODE: 'closed' }),
    );
    try {
      expect(await burst(open, 4, {}, '192.0.2.40')).toEqual([200, 200, 200, 429]); // still limited, locally
      const refused = await closed.app.inject({ url: '/v1/random' });
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect((await closed.app.inject({ url: '/health/live' })).statusCode).toBe(200);
    } finally {
      await open.app.close();
      await closed.app.close();
    }
  });
});

describe('load shedding', () => {
  it('when the heap is over its threshold, then API requests get 503 with Retry-After and probes still answer', async () => {
    const t = await buildTestApp({
      LOAD_SHED_MAX_HEAP_USED_RATIO: '0.0001',
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    });
    try {
      await new Promise((r) => setTimeout(r, 700)); // one sample
      const shed = await t.app.inject({ url: '/v1/random' });
      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBe('2');
      expect(shed.headers['content-type']).toBe(PROBLEM);
      expect((await t.app.inject({ url: '/health/live' })).statusCode).toBe(200);
      expect((await t.app.inject({ url: '/metrics' })).body).toMatch(
        /load_shed_total\{reason="heapUsedBytes"\} [1-9]/,
      );
    } finally {
      await t.app.close();
    }
  });
});
