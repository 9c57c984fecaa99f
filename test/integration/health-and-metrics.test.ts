// Probes, build info, metrics and fault injection through the real app; Redis is the real local server
// (and a closed port to play a Redis outage).
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import { startApp } from '../../src/app.js';
import { buildTestApp, useTestApp } from '../helpers/app.js';
import { closedPort, TEST_REDIS_URL } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const t = useTestApp();

describe('liveness', () => {
  it('answers 200 ok at /health/live and its alias /health', async () => {
    for (const url of ['/health/live', '/health']) {
      const response = await t.app.inject({ url });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok' });
    }
  });
});

describe('startup and readiness', () => {
  it('when initialization has not finished, then startup and readiness answer 503, liveness 200', async () => {
    const fresh = await buildTestApp({}, { start: false });
    try {
      await fresh.app.ready();
      expect((await fresh.app.inject({ url: '/health/startup' })).statusCode).toBe(503);
      const ready = await fresh.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not_ready', reason: 'starting' });
      expect((await fresh.app.inject({ url: '/health/live' })).statusCode).toBe(200);

      await startApp(fresh.app, fresh.config);
      expect((await fresh.app.inject({ url: '/health/startup' })).json()).toEqual({ status: 'started' });
      expect((await fresh.app.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      await fresh.app.close();
    }
  });

  it('when the database answers, then ready reports it up with its latency', async () => {
    const response = await t.app.inject({ url: '/health/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'ready',
      checks: { database: { status: 'up', latency_ms: expect.any(Number) } },
    });
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('when shutdown has begun, then readiness answers 503 while liveness stays 200', async () => {
    const draining = await buildTestApp();
    try {
      draining.app.lifecycle.beginDrain();
      const ready = await draining.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not_ready', reason: 'shutting down' });
      expect((await draining.app.inject({ url: '/health/live' })).statusCode).toBe(200);
      expect((await draining.app.inject({ url: '/v1/random' })).statusCode).toBe(200);
    } finally {
      await draining.app.close();
    }
  });

  it('when the database becomes unreachable, then readiness turns 503 once the cached answer expires', async () => {
    const own = await buildTestApp({}, { ownDatabase: true });
    try {
      expect((await own.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      await own.app.database.close();
      // Within the cache window probes still get the last answer: the database is not asked again.
      expect((await own.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      await sleep(1_100);
      const response = await own.app.inject({ url: '/health/ready' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({
        status: 'not_ready',
        checks: { database: { status: 'down' } },
      });
    } finally {
      await own.app.close();
    }
  });

  describe.skipIf(!inject('redisAvailable'))('with Redis', () => {
    it('when Redis answers, then readiness reports it up', async () => {
      const withRedis = await buildTestApp({ REDIS_URL: TEST_REDIS_URL });
      try {
        // The client connects in the background; give it a moment, bounded.
        for (let i = 0; i < 50 && withRedis.app.redis?.status !== 'ready'; i++) await sleep(20);
        const response = await withRedis.app.inject({ url: '/health/ready' });
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({
          status: 'ready',
          checks: { redis: { status: 'up' }, database: { status: 'up' } },
        });
      } finally {
        await withRedis.app.close();
      }
    });
  });

  it('when Redis is down, then readiness stays 200 and reports it degraded, fast', async () => {
    const port = await closedPort();
    const noRedis = await buildTestApp({ REDIS_URL: `redis://127.0.0.1:${port}` });
    try {
      const started = performance.now();
      const response = await noRedis.app.inject({ url: '/health/ready' });
      expect(performance.now() - started).toBeLessThan(2_000); // bounded by the check deadline, not a hang
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        status: 'degraded',
        checks: { redis: { status: 'degraded' }, database: { status: 'up' } },
      });
      expect((await noRedis.app.inject({ url: '/v1/random' })).statusCode).toBe(200);
    } finally {
      await noRedis.app.close();
    }
  });
});

describe('GET /version', () => {
  it('reports version, commit, node and start time', async () => {
    const body = (await t.app.inject({ url: '/version' })).json();
    expect(body).toEqual({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      commit: 'unknown',
      node: process.version,
      started_at: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(body.started_at))).toBe(false);
  });
});

describe('metrics', () => {
  it('counts requests by method, route template and status code, never by raw URL', async () => {
    await t.app.inject({ url: '/v1/random/integers?count=3' });
    await t.app.inject({ url: '/v1/random/integers?count=0' });
    await t.app.inject({ url: '/no/such/path/123' });
    const response = await t.app.inject({ url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    const text = response.body;
    expect(text).toMatch(
      /http_requests_total\{method="GET",route="\/v1\/random\/integers",status_code="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /http_requests_total\{method="GET",route="\/v1\/random\/integers",status_code="400"\} [1-9]/,
    );
    expect(text).toMatch(/http_requests_total\{method="GET",route="unmatched",status_code="404"\} [1-9]/);
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/v1\/random\/integers",status_code="200"\}/,
    );
    expect(text).not.toContain('count=3');
    expect(text).not.toContain('/no/such/path');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toMatch(/app_info\{version="[^"]+",commit="unknown",node="v\d+/);
  });

  it('when METRICS_PORT is set, then /metrics moves to that port and leaves the API port', async () => {
    const separate = await buildTestApp({ METRICS_PORT: '0', PORT: '0', HOST: '127.0.0.1' });
    try {
      await separate.app.listen({ port: 0, host: '127.0.0.1' });
      expect((await separate.app.inject({ url: '/metrics' })).statusCode).toBe(404);
      const address = separate.app.metrics.address();
      expect(address?.port).toBeGreaterThan(0);
      const response = await fetch(`http://127.0.0.1:${address?.port}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('http_request_duration_seconds');
    } finally {
      await separate.app.close();
    }
    expect(separate.app.metrics.address()).toBeUndefined();
  });
});

describe('fault injection', () => {
  it('when disabled (the default), then fault headers are ignored', async () => {
    const response = await t.app.inject({ url: '/v1/random', headers: { 'x-fault-status': '503' } });
    expect(response.statusCode).toBe(200);
  });

  it('when enabled, then API routes honour the headers and probes never do', async () => {
    const faulty = await buildTestApp({ FAULT_INJECTION_ENABLED: 'true' });
    try {
      const failed = await faulty.app.inject({ url: '/v1/random', headers: { 'x-fault-status': '503' } });
      expect(failed.statusCode).toBe(503);
      expect(failed.headers['content-type']).toBe(PROBLEM);
      const started = performance.now();
      const delayed = await faulty.app.inject({ url: '/v1/random', headers: { 'x-fault-delay-ms': '200' } });
      expect(delayed.statusCode).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      for (const url of ['/health/ready', '/health/live', '/metrics', '/openapi.json']) {
        const probe = await faulty.app.inject({ url, headers: { 'x-fault-status': '500' } });
        expect(probe.statusCode, url).toBe(200);
      }
    } finally {
      await faulty.app.close();
    }
  });
});
