// GET /v1/slo from this process's own metrics, and its fallback when the configured Prometheus cannot
// answer (a closed port; a loopback server answering what Prometheus never would). The Prometheus source
// against a real Prometheus is in test/deploy/monitoring-prometheus.test.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { closedPort } from '../helpers/services.js';

const apps: TestApp[] = [];
async function app(env: Record<string, string> = {}): Promise<TestApp> {
  const t = await buildTestApp({ FAULT_INJECTION_ENABLED: 'true', ...env });
  apps.push(t);
  return t;
}
afterAll(async () => {
  await Promise.all(apps.map((t) => t.app.close()));
});

async function traffic(t: TestApp, ok: number, failed: number): Promise<void> {
  for (let i = 0; i < ok; i += 1) await t.app.inject({ url: '/v1/random?min=1&max=6' });
  for (let i = 0; i < failed; i += 1)
    await t.app.inject({ url: '/v1/random', headers: { 'x-fault-status': '503' } });
}

describe('the SLO report from the process', () => {
  it('when nothing but probes was answered, then there is no indicator yet and the whole budget is left', async () => {
    const t = await app();
    await t.app.inject({ url: '/health/live' });
    await t.app.inject({ url: '/health/ready' });
    const response = await t.app.inject({ url: '/v1/slo' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      source: 'process',
      objectives: { success_ratio: 0.999, p99_latency_seconds: 0.25 },
      indicators: { requests: 0, errors: 0, success_ratio: null, p99_latency_seconds: null },
      error_budget: { allowed_error_ratio: 0.001, consumed_ratio: 0, remaining_ratio: 1 },
      meeting: { success_ratio: true, p99_latency: true },
    });
    expect(response.json()).not.toHaveProperty('burn_rates');
  });

  it('when some answers were 5xx, then the ratio, the budget and the verdict follow the configured objectives', async () => {
    const t = await app({ SLO_TARGET_SUCCESS_RATIO: '0.5', SLO_TARGET_P99_LATENCY_SECONDS: '2' });
    await traffic(t, 8, 2);
    await t.app.inject({ url: '/metrics' }); // scrapes do not count
    const report = (await t.app.inject({ url: '/v1/slo' })).json();
    expect(report.indicators).toMatchObject({ requests: 10, errors: 2, success_ratio: 0.8 });
    expect(report.indicators.p99_latency_seconds).toBeGreaterThan(0);
    expect(report.indicators.p99_latency_seconds).toBeLessThan(2);
    // 20% failed of the 50% allowed: 40% of the budget is spent.
    expect(report.error_budget).toEqual({
      allowed_error_ratio: 0.5,
      consumed_ratio: 0.4,
      remaining_ratio: 0.6,
    });
    expect(report.meeting).toEqual({ success_ratio: true, p99_latency: true });

    // The first report was itself an answer, a success: 11 requests now.
    await traffic(t, 0, 8);
    const worse = (await t.app.inject({ url: '/slo/report' })).json();
    expect(worse.indicators).toMatchObject({ requests: 19, errors: 10 });
    expect(worse.error_budget.remaining_ratio).toBeLessThan(0);
    expect(worse.meeting.success_ratio).toBe(false);
  });

  it('when answers are slower than the latency objective, then the p99 misses it', async () => {
    const t = await app({ SLO_TARGET_P99_LATENCY_SECONDS: '0.05' });
    await t.app.inject({ url: '/v1/random', headers: { 'x-fault-delay-ms': '120' } });
    const report = (await t.app.inject({ url: '/v1/slo' })).json();
    expect(report.indicators.p99_latency_seconds).toBeGreaterThan(0.05);
    expect(report.meeting.p99_latency).toBe(false);
  });

  it('when anonymous access is off, then the report needs credentials', async () => {
    const t = await app({ ANONYMOUS_ACCESS: 'false' });
    const response = await t.app.inject({ url: '/v1/slo' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toContain('application/problem+json');
  });
});

describe('the SLO report when Prometheus cannot answer', () => {
  let fake: Server;
  let answer: { status: number; body: string } = { status: 200, body: '{}' };
  let queries: string[] = [];
  beforeAll(async () => {
    fake = createServer((req, res) => {
      queries.push(new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '');
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  });
  afterEach(() => {
    queries = [];
  });
  afterAll(async () => {
    await new Promise((resolve) => fake.close(resolve));
  });
  const fakeUrl = () => `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;

  it('when Prometheus is unreachable, then the process answers and the report says why', async () => {
    const t = await app({
      PROMETHEUS_BASE_URL: `http://127.0.0.1:${await closedPort()}`,
      OUTBOUND_MAX_RETRIES: '0',
    });
    await traffic(t, 3, 0);
    const response = await t.app.inject({ url: '/v1/slo' });
    expect(response.statusCode).toBe(200);
    const report = response.json();
    expect(report).toMatchObject({ source: 'process', indicators: { requests: 3, errors: 0 } });
    expect(report.prometheus_error).toEqual(expect.any(String));
  });

  it('when Prometheus answers an error, then the process answers', async () => {
    answer = { status: 400, body: JSON.stringify({ status: 'error', error: 'bad_data: parse error' }) };
    const t = await app({ PROMETHEUS_BASE_URL: fakeUrl() });
    const report = (await t.app.inject({ url: '/v1/slo' })).json();
    expect(report.source).toBe('process');
    expect(report.prometheus_error).toContain('bad_data');
    expect(queries.length).toBeGreaterThan(0);
  });

  it('when Prometheus answers the rules, then the report reads them against the configured objective', async () => {
    const values: Record<string, string> = {
      'max(slo:request_error:ratio_rate30d)': '0.0005',
      'sum(slo:requests:increase30d)': '200000',
      'max(slo:request_latency_p99:seconds_5m)': '0.12',
      'max(slo:request_error:ratio_rate5m)': '0.0144',
      'max(slo:request_error:ratio_rate30m)': '0.006',
      'max(slo:request_error:ratio_rate1h)': '0.002',
    };
    fake.removeAllListeners('request');
    fake.on('request', (req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
      queries.push(query);
      const value = values[query];
      const result = value === undefined ? [] : [{ metric: {}, value: [1_700_000_000, value] }];
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
    });
    const t = await app({ PROMETHEUS_BASE_URL: fakeUrl() });
    const report = (await t.app.inject({ url: '/v1/slo' })).json();
    expect(report).toMatchObject({
      source: 'prometheus',
      window: '30d',
      indicators: { requests: 200000, errors: 100, success_ratio: 0.9995, p99_latency_seconds: 0.12 },
      error_budget: { allowed_error_ratio: 0.001, consumed_ratio: 0.5, remaining_ratio: 0.5 },
      burn_rates: { '5m': 14.4, '30m': 6, '1h': 2, '6h': null },
      meeting: { success_ratio: true, p99_latency: true },
    });
    expect(report).not.toHaveProperty('prometheus_error');
  });
});
