// The beacon relay through the real app against a stub drand beacon on loopback: cache hits and misses,
// stale answers while the beacon fails or its breaker is open, recovery, the shared Redis cache and a
// cache that is down.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { manualClock, type ManualClock } from '../helpers/clock.js';
import { startBeaconStub, type BeaconStub } from '../helpers/beacon-stub.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/**
 * A stub beacon and an app relaying it, with fast breaker settings; both closed after the test. The app's
 * clock is the test's: `clock.advance()` expires the in-process cache without waiting for it.
 */
async function relay(stubOptions: { period?: number } = {}, env: Record<string, string> = {}) {
  const stub = await startBeaconStub(stubOptions);
  cleanup.push(() => stub.close());
  const clock = manualClock();
  const t = await app(stub, env, clock);
  return { stub, t, clock };
}

async function app(
  stub: BeaconStub,
  env: Record<string, string> = {},
  clock?: ManualClock,
): Promise<TestApp> {
  const t = await buildTestApp(
    {
      BEACON_URL: stub.url,
      BREAKER_CONSECUTIVE_FAILURES: '2',
      BREAKER_COOLDOWN_SECONDS: '1',
      OUTBOUND_TIMEOUT_MS: '300',
      OUTBOUND_MAX_RETRIES: '0',
      ...env,
    },
    { clock },
  );
  cleanup.push(() => t.app.close());
  return t;
}

const latest = (t: TestApp) => t.app.inject({ url: '/v1/beacon/latest' });
const round = (t: TestApp, n: number | string) => t.app.inject({ url: `/v1/beacon/rounds/${n}` });

describe('beacon relay', () => {
  it('when latest is asked twice within the period, then a miss then a hit, and the beacon is called once', async () => {
    const { stub, t } = await relay({ period: 30 });
    const first = await latest(t);
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    const { fetched_at, ...rest } = first.json();
    expect(rest).toEqual({ ...stub.payload(100), stale: false });
    expect(Date.parse(fetched_at)).not.toBeNaN();
    const second = await latest(t);
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.json()).toEqual(first.json());
    expect(stub.count('/public/latest')).toBe(1);
    expect(stub.count('/info')).toBe(1);
  });

  it('when the period has passed, then latest is fetched again and shows the new round', async () => {
    const { stub, t, clock } = await relay({ period: 1 });
    expect((await latest(t)).json().round).toBe(100);
    stub.latestRound = 101;
    clock.advance(1_100); // past the period: the cached latest round expires
    const next = await latest(t);
    expect(next.headers['x-cache']).toBe('miss');
    expect(next.json().round).toBe(101);
    expect(stub.count('/info')).toBe(1);
  });

  it('when a round is asked twice, then it is fetched once and then served from the cache', async () => {
    const { stub, t } = await relay();
    const first = await round(t, 42);
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('miss');
    expect(first.json()).toMatchObject({ ...stub.payload(42), stale: false });
    const second = await round(t, 42);
    expect(second.headers['x-cache']).toBe('hit');
    expect(second.json()).toEqual(first.json());
    expect(stub.count('/public/42')).toBe(1);
  });

  it('when the round does not exist upstream, then 404 problem+json', async () => {
    const { t } = await relay();
    const response = await round(t, 1_000);
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().type).toBe('urn:reliability-api:problem:not-found');
  });

  it('when the round is not a positive integer or a parameter is unknown, then 400 problem+json and the beacon is not called', async () => {
    const { stub, t } = await relay();
    for (const bad of ['abc', '0', '-3', '1.5', '1e400', '99999999999999999999']) {
      const response = await round(t, bad);
      expect(response.statusCode, bad).toBe(400);
      expect(response.json().errors[0].name, bad).toBe('round');
    }
    const unknown = await t.app.inject({ url: '/v1/beacon/latest?round=5' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().errors[0]).toMatchObject({ name: 'round', in: 'query' });
    expect(stub.requests).toEqual([]);
  });

  it('when the beacon fails after latest was cached, then the last round is answered stale with X-Cache: stale', async () => {
    const { stub, t, clock } = await relay({ period: 1 });
    const fresh = (await latest(t)).json();
    stub.mode = 'fail';
    clock.advance(1_100); // past the period: the cached latest round expires
    const response = await latest(t);
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-cache']).toBe('stale');
    expect(response.json()).toEqual({ ...fresh, stale: true });
  });

  it('when the beacon hangs after latest was cached, then the deadline cuts it off and the answer is stale', async () => {
    const { stub, t, clock } = await relay({ period: 1 });
    await latest(t);
    stub.mode = 'hang';
    clock.advance(1_100); // past the period: the cached latest round expires
    const response = await latest(t);
    expect(response.headers['x-cache']).toBe('stale');
    expect(response.json().stale).toBe(true);
  });

  it('when the beacon is down and nothing is cached, then 503 problem+json with Retry-After', async () => {
    const { stub, t } = await relay({}, { BREAKER_CONSECUTIVE_FAILURES: '10' });
    stub.mode = 'fail';
    stub.failStatus = 503;
    for (const response of [await latest(t), await round(t, 7)]) {
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(response.json().type).toBe('urn:reliability-api:problem:service-unavailable');
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });

  it('when the beacon sends garbage, then 502 problem+json with nothing cached and a stale answer once something is', async () => {
    const { stub, t, clock } = await relay({ period: 1 });
    stub.mode = 'garbage';
    const bad = await latest(t);
    expect(bad.statusCode).toBe(502);
    expect(bad.json().type).toBe('urn:reliability-api:problem:bad-gateway');
    expect((await round(t, 5)).statusCode).toBe(502);
    stub.mode = 'ok';
    await latest(t);
    stub.mode = 'garbage';
    clock.advance(1_100); // past the period: the cached latest round expires
    const stale = await latest(t);
    expect(stale.statusCode).toBe(200);
    expect(stale.headers['x-cache']).toBe('stale');
  });

  it('when failures reach the threshold, then the breaker opens and stale answers come without calling the beacon, until it recovers', async () => {
    const { stub, t, clock } = await relay({ period: 1 });
    await latest(t);
    stub.mode = 'fail';
    clock.advance(1_100); // past the period: the cached latest round expires
    for (let i = 0; i < 2; i++) expect((await latest(t)).headers['x-cache']).toBe('stale');
    const calls = stub.requests.length;
    expect(t.app.outbound.snapshots().find((b) => b.name === 'beacon')?.state).toBe('open');
    for (let i = 0; i < 5; i++) {
      const response = await latest(t);
      expect(response.headers['x-cache']).toBe('stale');
      expect(response.json()).toMatchObject({ round: 100, stale: true });
    }
    expect(stub.requests.length).toBe(calls);

    stub.mode = 'ok';
    stub.latestRound = 101;
    clock.advance(1_100); // the cached latest round expires
    await sleep(1_100); // the breaker's cooldown runs on cockatiel's own timer: real time
    const recovered = await latest(t);
    expect(recovered.headers['x-cache']).toBe('miss');
    expect(recovered.json()).toMatchObject({ round: 101, stale: false });
    expect(t.app.outbound.snapshots().find((b) => b.name === 'beacon')?.state).toBe('closed');
  });

  it('when the breaker is open and nothing is cached, then 503 with Retry-After within the cooldown', async () => {
    const { stub, t } = await relay({}, { BREAKER_COOLDOWN_SECONDS: '20' });
    stub.mode = 'fail';
    await latest(t);
    await latest(t);
    const response = await latest(t);
    expect(response.statusCode).toBe(503);
    const retryAfter = Number(response.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(stub.count('/public/latest')).toBe(2);
  });

  it('when the cache Redis is unreachable, then requests still answer, uncached, and the outage is logged once', async () => {
    const { stub, t } = await relay({}, { CIRCUIT_BREAKER_CACHE_URL: 'redis://127.0.0.1:1' });
    for (let i = 0; i < 3; i++) {
      const response = await round(t, 9);
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-cache']).toBe('miss');
    }
    expect(stub.count('/public/9')).toBe(3);
    expect(t.logs.filter((l) => l.msg === 'fallback cache unavailable; serving without it')).toHaveLength(1);
  });
});

describe.skipIf(!inject('redisAvailable'))('beacon relay with the shared Redis cache', () => {
  /** The cache connects in the background: wait until a stored round reads back as a hit. */
  async function cacheReady(t: TestApp) {
    for (let i = 0; i < 100; i++) {
      if ((await round(t, 1)).headers['x-cache'] === 'hit') return;
      await sleep(20);
    }
    throw new Error('the fallback cache never became ready');
  }

  it('when two instances share the cache, then the second serves what the first fetched without calling the beacon', async () => {
    const stub = await startBeaconStub({ period: 30 });
    cleanup.push(() => stub.close());
    const env = {
      CIRCUIT_BREAKER_CACHE_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `beacon-test-${randomBytes(4).toString('hex')}:`,
    };
    const a = await app(stub, env);
    const b = await app(stub, env);
    await cacheReady(a);
    await cacheReady(b);

    expect((await round(a, 77)).headers['x-cache']).toBe('miss');
    const shared = await round(b, 77);
    expect(shared.headers['x-cache']).toBe('hit');
    expect(shared.json().round).toBe(77);
    expect(stub.count('/public/77')).toBe(1);

    expect((await latest(a)).headers['x-cache']).toBe('miss');
    expect((await latest(b)).headers['x-cache']).toBe('hit');
    expect(stub.count('/public/latest')).toBe(1);
  });

  it('when the beacon fails, then an instance that never saw a round answers the shared last round, stale', async () => {
    const stub = await startBeaconStub({ period: 1 });
    cleanup.push(() => stub.close());
    const env = {
      CIRCUIT_BREAKER_CACHE_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `beacon-test-${randomBytes(4).toString('hex')}:`,
    };
    const a = await app(stub, env);
    await cacheReady(a);
    const fresh = (await latest(a)).json();
    stub.mode = 'fail';
    await sleep(1_100); // the shared cache is Redis, whose expiry is Redis's own clock
    const b = await app(stub, env);
    await cacheReady(b);
    const response = await latest(b);
    expect(response.headers['x-cache']).toBe('stale');
    expect(response.json()).toEqual({ ...fresh, stale: true });
  });
});
