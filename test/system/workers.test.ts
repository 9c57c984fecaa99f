// WEB_CONCURRENCY worker processes under a primary, as real processes against the real PostgreSQL and
// under steady load: a killed worker costs only its in-flight requests and is replaced within seconds, a
// MAX_REQUESTS recycle fails no request, SIGTERM lets requests in flight finish and exits 0, /metrics
// counts every request exactly across recycles, and a crash loop stops the service.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLoad } from '../helpers/load.js';
import { logLines, run, runToEnd, waitFor, type Running } from '../helpers/process.js';
import { closedPort, createTestDatabase, type TestDatabase } from '../helpers/services.js';

const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };

describe('worker processes: configuration', () => {
  it('when WEB_CONCURRENCY > 1 has no DATABASE_URL, then serve exits 2 with one line', async () => {
    const { code, stderr } = await runToEnd(['serve'], { ENVIRONMENT: 'test', WEB_CONCURRENCY: '2' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('WEB_CONCURRENCY: several worker processes need PostgreSQL (DATABASE_URL)');
  });
});

describe.skipIf(!inject('postgresAvailable'))('worker processes', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  const running: Running[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('workers');
  });
  afterAll(async () => {
    for (const server of running) {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
    }
    await db.drop();
  });

  async function startCluster(env: Record<string, string> = {}) {
    const port = await closedPort();
    const base = `http://127.0.0.1:${port}`;
    const server = run(['serve'], {
      ENVIRONMENT: 'test',
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      WEB_CONCURRENCY: '2',
      SHUTDOWN_DRAIN_SECONDS: '1',
      LOG_LEVEL: 'info',
      RATE_LIMITS: JSON.stringify({ api: { anonymous: UNLIMITED }, auth: { anonymous: UNLIMITED } }),
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
      ...env,
    });
    running.push(server);
    await waitFor(`${base}/health/ready`, 200, 60_000);
    await until(() => readyWorkers(server).size === 2, 30_000);
    return { server, base };
  }

  /** SIGTERM to the primary: it must exit 0; if not, the workers' exits and any error say why. */
  async function expectCleanStop(server: Running) {
    server.child.kill('SIGTERM');
    const { code } = await server.exited;
    const why = logLines(server.stdout())
      .filter(
        (l) => ['worker stopped', 'worker retired'].includes(l.msg as string) || (l.level as number) >= 40,
      )
      .slice(-12)
      .map((l) => JSON.stringify(l))
      .join('\n');
    expect(code, why).toBe(0);
  }

  /** slot -> pid of the workers the primary reported ready, newest last. */
  function readyWorkers(server: Running): Map<number, number> {
    const ready = new Map<number, number>();
    for (const line of logLines(server.stdout()))
      if (line.msg === 'worker ready') ready.set(line.worker_slot as number, line.pid as number);
    return ready;
  }

  async function until(condition: () => boolean, timeoutMs: number) {
    const started = performance.now();
    while (!condition()) {
      if (performance.now() - started > timeoutMs) throw new Error('condition not met in time');
      await sleep(50);
    }
  }

  async function requestTotal(base: string, route: string): Promise<number> {
    const text = await (await fetch(`${base}/metrics`)).text();
    let total = 0;
    for (const line of text.split('\n'))
      if (line.startsWith('http_requests_total{') && line.includes(`route="${route}"`))
        total += Number(line.split(' ').at(-1));
    return total;
  }

  it('when a worker is SIGKILLed under load, then only its in-flight requests fail and a replacement serves within seconds', async () => {
    const { server, base } = await startCluster();
    const connections = 8;
    const load = startLoad(`${base}/v1/random?min=1&max=6`, connections);
    await sleep(2_000);
    const victim = readyWorkers(server).get(1)!;
    const killedAt = load.now();
    process.kill(victim, 'SIGKILL');
    const replacedAfter = performance.now();
    await until(() => readyWorkers(server).get(1) !== victim, 15_000);
    const replacementMs = performance.now() - replacedAfter;
    await sleep(2_000);
    const report = await load.stop();

    // A failure is a request the victim's death caught: one in flight at the kill, or one written on a
    // keep-alive socket to the victim before the client had read that socket's close (a race every HTTP
    // client has; measured up to ~50 ms on a busy machine). So at most one per connection, all of them
    // within a second of the kill, and none once the primary has replaced the worker. One more case ends
    // later: a new connection the primary handed to the worker as it died is never closed by Node's
    // cluster, so the client's own headers timeout ends it (seen once on Node 24 in CI).
    const failures = JSON.stringify({ killedAt, failures: report.failures });
    expect(report.failures.length, failures).toBeLessThanOrEqual(connections);
    for (const failure of report.failures) {
      expect(failure.failedAtMs, failures).toBeGreaterThanOrEqual(killedAt);
      expect(failure.sentAtMs, failures).toBeLessThanOrEqual(killedAt + 1_000);
      if (failure.failedAtMs > killedAt + 1_000)
        expect(failure.reason, failures).toBe('UND_ERR_HEADERS_TIMEOUT');
    }
    expect(report.ok).toBeGreaterThan(500);
    expect(replacementMs).toBeLessThan(10_000);
    const primary = logLines(server.stdout()).find((l) => l.msg === 'worker crashed; replacing it');
    expect(primary).toMatchObject({ worker_slot: 1, pid: victim, signal: 'SIGKILL' });
    process.stdout.write(
      `SIGKILL of a worker under load: ${report.failures.length} of ${report.sent} requests failed (${[...new Set(report.failures.map((f) => f.reason))].join(', ') || 'none'}); replacement ready after ${Math.round(replacementMs)} ms\n`,
    );
    await expectCleanStop(server);
  });

  it('when workers recycle after MAX_REQUESTS under steady load, then no request fails and /metrics counts every one', async () => {
    const { server, base } = await startCluster({ MAX_REQUESTS: '1500', MAX_REQUESTS_JITTER: '300' });
    const route = '/v1/random';
    const load = startLoad(`${base}${route}?min=1&max=6`, 8);
    // Until two workers have retired: on a loaded machine that takes longer than on an idle one (about
    // 3,000 requests), and the assertion is about what happens across the recycles, not how soon they come.
    await sleep(3_000);
    // A substring count while polling (parsing every line each time would compete with the load).
    await until(() => server.stdout().split('"msg":"worker retired"').length > 2, 60_000).catch(
      () => undefined,
    );
    const report = await load.stop();
    const recycles = logLines(server.stdout()).filter((l) => l.msg === 'worker retired').length;
    expect(report.failures).toEqual([]);
    expect(recycles).toBeGreaterThanOrEqual(2);
    // Every answered request, through every worker that served and retired since.
    await sleep(500);
    expect(await requestTotal(base, route)).toBe(report.sent);
    process.stdout.write(
      `recycling under load: ${report.sent} requests in ${Math.round(report.durationMs)} ms, ${recycles} workers retired, ${report.failures.length} failed; /metrics total ${report.sent}\n`,
    );
    await expectCleanStop(server);
  });

  it('when SIGTERM reaches the primary with requests in flight, then every one completes and it exits 0', async () => {
    const { server, base } = await startCluster({ FAULT_INJECTION_ENABLED: 'true' });
    const slow = Array.from({ length: 10 }, () =>
      fetch(`${base}/v1/random`, { headers: { 'x-fault-delay-ms': '2000' } }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      }),
    );
    await sleep(300);
    server.child.kill('SIGTERM');
    expect(await Promise.all(slow)).toEqual(Array(10).fill(200));
    const { code } = await server.exited;
    expect(code).toBe(0);
    const lines = logLines(server.stdout()).map((l) => l.msg);
    expect(lines.filter((m) => m === 'shutdown: complete')).toHaveLength(2);
    expect(lines).toContain('primary: every worker has stopped');
  });

  it('when workers keep crashing at start, then the primary reports a crash loop and exits 1', async () => {
    const port = await closedPort();
    const deadDatabase = `postgres://postgres@127.0.0.1:${await closedPort()}/none`;
    const server = run(['serve'], {
      ENVIRONMENT: 'test',
      DATABASE_URL: deadDatabase,
      PORT: String(port),
      HOST: '127.0.0.1',
      WEB_CONCURRENCY: '2',
      WORKER_MAX_RESTARTS: '3',
      SHUTDOWN_DRAIN_SECONDS: '0',
    });
    running.push(server);
    const { code } = await server.exited;
    expect(code).toBe(1);
    const lines = logLines(server.stdout());
    expect(lines.filter((l) => l.msg === 'worker crashed; replacing it').length).toBeGreaterThanOrEqual(3);
    expect(lines.find((l) => String(l.msg).startsWith('crash loop'))?.level).toBe('error');
  });
});
