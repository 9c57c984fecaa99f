// The monitoring kit against the real thing: a real `prometheus` scrapes the real app (buildTestApp,
// listening on a free loopback port) with the scrape job of deploy/monitoring/prometheus/prometheus.yml
// and evaluates the shipped rules; then every rule expression and every dashboard expression is run
// through the HTTP API. promtool proves they parse; this proves they run on the metrics the app really
// exports, with the labels the scrape job really gives them.
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { startBeaconStub, type BeaconStub } from '../helpers/beacon-stub.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import {
  PROMETHEUS,
  PROMETHEUS_CONFIG,
  allRules,
  dashboardQueries,
  instantQuery,
  loadDashboards,
  loadRuleFiles,
  readText,
  requireTools,
  sleep,
  startPrometheus,
  substituteVariables,
  tempDir,
  type PrometheusServer,
  type QueryResult,
} from '../helpers/promtool.js';

const SERVICE = 'reliability-api';
/** Scrape and evaluate every second, so the test waits seconds, not minutes. */
const INTERVAL = '1s';
/** What `$__rate_interval` becomes: many 1 s scrapes, and longer than the test's traffic. */
const RATE_INTERVAL = '1m';
const WAIT_MS = 30_000;
/**
 * Metrics a dashboard may select although the app under test has no sample of them, each with the reason.
 * Any other name a dashboard selects must be scraped, so a misspelt metric fails this suite.
 */
const MAY_BE_ABSENT = [
  // Only once a garbage collection ran, which a short test may not see.
  'nodejs_gc_duration_seconds_sum',
  // Prometheus's own, while no alert fires.
  'ALERTS',
];

const available = requireTools(PROMETHEUS);

/** A spread of answers: successes, client errors, server errors (injected), rate limiting, slow ones. */
async function sendTraffic(base: string): Promise<void> {
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5_000) }).then((r) => r.arrayBuffer());
  await Promise.all([
    ...Array.from({ length: 40 }, () => get('/v1/random?min=1&max=6')),
    ...Array.from({ length: 5 }, () => get('/v1/random?min=10&max=1')),
    ...Array.from({ length: 3 }, () => get('/nope')),
    ...Array.from({ length: 3 }, () => get('/v1/random', { 'x-fault-status': '500' })),
    ...Array.from({ length: 2 }, () => get('/v1/random', { 'x-fault-status': '503' })),
    ...Array.from({ length: 2 }, () => get('/v1/random', { 'x-fault-status': '429' })),
    ...Array.from({ length: 3 }, () => get('/v1/random', { 'x-fault-delay-ms': '300' })),
    // Outbound calls (and a breaker) through the beacon relay.
    ...Array.from({ length: 2 }, () => get('/v1/beacon/rounds/7')),
    get('/health/ready'),
  ]);
}

async function waitFor(what: string, condition: () => Promise<boolean>, server: PrometheusServer) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(250);
  }
  throw new Error(`prometheus: ${what} did not happen within ${WAIT_MS} ms\n${server.log()}`);
}

const nonEmpty = (result: QueryResult) =>
  result.status === 'success' && (result.data?.result.length ?? 0) > 0;

/**
 * Whether Prometheus has scraped at least two samples of a metric of the app (enough for rate()), or, for
 * a recording rule (a name with a colon), recorded it. Metrics the app does not export are never scraped.
 */
async function scraped(server: PrometheusServer, name: string): Promise<boolean> {
  if (name.includes(':')) return nonEmpty(await instantQuery(server.url, `{__name__="${name}"}`));
  const selector = `{__name__="${name}", job="${SERVICE}"}`;
  return nonEmpty(await instantQuery(server.url, `max(count_over_time(${selector}[${RATE_INTERVAL}])) > 1`));
}

/** The metric names an expression selects (every selector of the kit names its metric before `{`). */
const selectedNames = (expr: string) =>
  [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((m) => m[1]!);

describe.skipIf(!available)('monitoring kit: a real Prometheus scraping the real app', () => {
  let work: ReturnType<typeof tempDir>;
  let testApp: TestApp;
  let server: PrometheusServer;
  let beacon: BeaconStub;

  beforeAll(async () => {
    work = tempDir('prometheus-system');
    beacon = await startBeaconStub();
    // Redis for the limiter and the beacon cache, so their command metrics are scraped too.
    testApp = await buildTestApp({
      FAULT_INJECTION_ENABLED: 'true',
      // Load shedding on, at a delay this test never reaches, so its counter is exported (at 0).
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '5000',
      // The beacon breaker opens after two failed calls, which the first round makes (see below).
      BREAKER_CONSECUTIVE_FAILURES: '2',
      BREAKER_COOLDOWN_SECONDS: '1',
      OUTBOUND_MAX_RETRIES: '0',
      REDIS_URL: TEST_REDIS_URL,
      RATE_LIMIT_STORAGE_URI: TEST_REDIS_URL,
      CIRCUIT_BREAKER_CACHE_URL: TEST_REDIS_URL,
      BEACON_URL: beacon.url,
    });
    await testApp.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = testApp.app.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;

    // The shipped rules, each group evaluated every second (the 30-day budget group's 5 m interval aside).
    const rulesDir = join(work.dir, 'rules');
    mkdirSync(rulesDir);
    for (const { file, groups } of loadRuleFiles()) {
      const fast = groups.map((group) => {
        const copy = { ...group };
        delete copy.interval;
        return copy;
      });
      writeFileSync(join(rulesDir, file.split('/').at(-1)!), stringify({ groups: fast }));
    }
    // The Compose configuration with its reliability-api job pointed at the test app.
    const config = parse(readText(PROMETHEUS_CONFIG)) as {
      global: Record<string, string>;
      rule_files: string[];
      alerting?: unknown;
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    config.global = { scrape_interval: INTERVAL, scrape_timeout: INTERVAL, evaluation_interval: INTERVAL };
    config.rule_files = [join(rulesDir, '*.yml')];
    delete config.alerting;
    const job = config.scrape_configs.find((s) => s.job_name === SERVICE)!;
    job.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
    config.scrape_configs = [job];
    server = await startPrometheus(stringify(config), work.dir);

    // The beacon fails twice: its breaker opens (two 503s), then after the cooldown the first round's
    // beacon calls close it again, so every breaker transition has a series.
    beacon.mode = 'fail';
    beacon.failStatus = 503;
    for (const round of [1, 2]) await fetch(`${base}/v1/beacon/rounds/${round}`).then((r) => r.arrayBuffer());
    beacon.mode = 'ok';
    await sleep(1_100);
    // A first round creates every series; Prometheus must see them before the second round, or rate()
    // has nothing to compare the second round's counts with.
    await sendTraffic(base);
    await waitFor(
      'a scrape of the first round',
      async () =>
        nonEmpty(await instantQuery(server.url, `http_requests_total{job="${SERVICE}", status_code="500"}`)),
      server,
    );
    await sendTraffic(base);
    // Every recording rule has data (its group evaluated after the second round was scraped), and rates
    // see the second round.
    const records = new Set(
      allRules(loadRuleFiles()).flatMap((r) => (r.record === undefined ? [] : [r.record])),
    );
    await waitFor(
      'the recording rules over the second round',
      async () => {
        const recorded = await instantQuery(server.url, 'count by (__name__) ({__name__=~"slo:.+"})');
        return (
          recorded.data?.result.length === records.size &&
          nonEmpty(await instantQuery(server.url, `slo:request_errors:rate5m{service="${SERVICE}"} > 0`)) &&
          nonEmpty(
            await instantQuery(server.url, `slo:request_latency_p99:seconds_5m{service="${SERVICE}"} > 0`),
          ) &&
          nonEmpty(
            await instantQuery(
              server.url,
              `rate(process_cpu_seconds_total{job="${SERVICE}"}[${RATE_INTERVAL}])`,
            ),
          )
        );
      },
      server,
    );
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await testApp?.app.close();
    await beacon?.close();
    work?.remove();
  });

  it('when the app is scraped with the Compose job, then its series carry service="reliability-api"', async () => {
    const result = await instantQuery(server.url, `up{job="${SERVICE}"}`);
    expect(result.data?.result.map((r) => [r.metric.service, r.value[1]])).toEqual([[SERVICE, '1']]);
  });

  it('when the contract recording rules are read as the Argo Rollouts analysis reads them, then they hold what the traffic was', async () => {
    const success = await instantQuery(
      server.url,
      `min(slo:request_success:ratio_rate5m{service="${SERVICE}"})`,
    );
    const p99 = await instantQuery(
      server.url,
      `max(slo:request_latency_p99:seconds_5m{service="${SERVICE}"})`,
    );
    // 5 of the 60 API answers of each round were 5xx (and 2 beacon calls before them); 3 took 300 ms, more than 1%.
    const ratio = Number(success.data?.result[0]?.value[1]);
    expect(ratio).toBeGreaterThan(0.8);
    expect(ratio).toBeLessThan(1);
    expect(Number(p99.data?.result[0]?.value[1])).toBeGreaterThan(0.25);
    const labels = await instantQuery(server.url, 'slo:request_success:ratio_rate5m');
    expect(labels.data?.result.map((r) => r.metric)).toEqual([
      { __name__: 'slo:request_success:ratio_rate5m', service: SERVICE },
    ]);
  });

  it('when a second app reads its SLO report from this Prometheus, then it reports what the rules recorded', async () => {
    const reader = await buildTestApp({ PROMETHEUS_BASE_URL: server.url });
    try {
      const response = await reader.app.inject({ url: '/v1/slo' });
      expect(response.statusCode).toBe(200);
      const report = response.json();
      expect(report).toMatchObject({ source: 'prometheus', window: '30d' });
      expect(report).not.toHaveProperty('prometheus_error');
      // The two rounds of traffic: 5 of 60 API answers per round were 5xx, 3 took 300 ms.
      const ratio = Number(
        (await instantQuery(server.url, 'max(slo:request_error:ratio_rate30d)')).data?.result[0]?.value[1],
      );
      expect(report.indicators.success_ratio).toBeCloseTo(1 - ratio, 5);
      expect(report.indicators.success_ratio).toBeGreaterThan(0.8);
      expect(report.indicators.success_ratio).toBeLessThan(1);
      expect(report.indicators.errors).toBeGreaterThan(0);
      expect(report.indicators.p99_latency_seconds).toBeGreaterThan(0.25);
      expect(report.meeting).toEqual({ success_ratio: false, p99_latency: false });
      expect(report.burn_rates['5m']).toBeGreaterThan(14.4);
      expect(report.error_budget.remaining_ratio).toBeLessThan(0);
    } finally {
      await reader.app.close();
    }
  });

  it('when every rule expression is evaluated, then none errors and every recording rule returns data', async () => {
    const problems: string[] = [];
    for (const rule of allRules(loadRuleFiles())) {
      const name = rule.record ?? rule.alert!;
      const result = await instantQuery(server.url, rule.expr);
      if (result.status !== 'success') problems.push(`${name}: ${result.error}`);
      else if (rule.record !== undefined && !nonEmpty(result)) problems.push(`${name}: no data`);
    }
    expect(problems).toEqual([]);
  });

  it('when every dashboard expression is evaluated, then none errors, those over scraped metrics return data, and every other metric is a known absentee', async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const { file, dashboard } of loadDashboards()) {
      for (const query of dashboardQueries(dashboard)) {
        const expr = substituteVariables(query.expr, { namespace: '.*', service: SERVICE }, RATE_INTERVAL);
        const result = await instantQuery(server.url, expr);
        const where = `${file} ${query.where}`;
        if (result.status !== 'success') {
          problems.push(`${where}: ${result.error}`);
          continue;
        }
        // A panel over scraped metrics and recorded rules must show data. Any other metric it selects must
        // be one that this build may not export (yet, or before the first event): a misspelt name is not.
        const names = selectedNames(expr);
        const missing: string[] = [];
        for (const name of names) if (!(await scraped(server, name))) missing.push(name);
        const unknown = missing.filter((n) => !MAY_BE_ABSENT.includes(n));
        if (unknown.length > 0)
          problems.push(`${where}: selects ${unknown.join(', ')}, which Prometheus never scraped`);
        else if (missing.length === 0) {
          checked += 1;
          if (!nonEmpty(result)) problems.push(`${where}: no data from ${expr}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it('when an expression names a metric that does not exist, then the data check notices', async () => {
    const result = await instantQuery(server.url, `sum(rate(http_request_total{job="${SERVICE}"}[1m]))`);
    expect(result.status).toBe('success');
    expect(nonEmpty(result)).toBe(false);
    expect(await scraped(server, 'http_request_total')).toBe(false);
    expect(await scraped(server, 'http_requests_total')).toBe(true);
    const broken = await instantQuery(server.url, 'sum(rate(http_requests_total[1m])');
    expect(broken.status).toBe('error');
  });
});
