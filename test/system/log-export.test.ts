// Logs in one place: the built service, started as an operator starts it with OTEL_LOGS_EXPORTER=otlp,
// exports its log lines as OTLP log records to a real receiver on loopback (the collector's stand-in),
// each request's lines with that request's trace id; the lines on stdout stay as they were; the records of
// the shutdown itself reach the receiver before the process exits; a missing collector costs nothing.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logLines, run, runToEnd, waitFor } from '../helpers/process.js';
import { startOtlpReceiver, traceparent, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { closedPort, createTestDatabase, type TestDatabase } from '../helpers/services.js';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

const postgres = inject('postgresAvailable');
let receiver: OtlpReceiver;
// PostgreSQL rather than the embedded database: each start is then well under a second instead of the
// embedded one's several, and what is tested here does not depend on the database.
let database: TestDatabase | undefined;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  if (postgres) database = await createTestDatabase('log_export');
});
afterAll(async () => {
  await receiver.close();
  await database?.drop();
});

async function serve(env: Record<string, string>) {
  const port = await closedPort();
  const base = `http://127.0.0.1:${port}`;
  const server = run(['serve'], {
    ENVIRONMENT: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: database!.url,
    SHUTDOWN_DRAIN_SECONDS: '0',
    LOG_LEVEL: 'info',
    ...env,
  });
  await waitFor(`${base}/health/ready`);
  return { server, base };
}

async function until<T>(read: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const started = performance.now();
  for (;;) {
    const value = read();
    if (value !== undefined || performance.now() - started > timeoutMs) return value;
    await sleep(50);
  }
}

describe.skipIf(!postgres)('OTEL_LOGS_EXPORTER=otlp', { timeout: 60_000 }, () => {
  it("when a traced request is served, then its access record reaches the collector with the request's trace id, and stdout keeps the same line", async () => {
    const service = `log-export-${hex(4)}`;
    const { server, base } = await serve({
      OTEL_LOGS_EXPORTER: 'otlp',
      OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: service,
    });
    const traceId = hex(16);
    const parent = hex(8);
    let exit: { code: number | null } | undefined;
    try {
      const answer = await fetch(`${base}/v1/random?min=1&max=6`, {
        headers: { traceparent: traceparent(traceId, parent) },
      });
      expect(answer.status).toBe(200);
      const requestId = answer.headers.get('x-request-id');

      const record = await until(
        () => receiver.logs.find((r) => r.resource['service.name'] === service && r.traceId === traceId),
        10_000,
      );
      expect(record, 'no log record with the trace id reached the receiver').toBeDefined();
      expect(record).toMatchObject({
        body: 'request completed',
        severityNumber: 9,
        severityText: 'INFO',
        flags: 1,
        attributes: { request_id: requestId, route: '/v1/random', status: 200, method: 'GET' },
      });
      expect(record!.resource).toMatchObject({
        'service.name': service,
        'deployment.environment.name': 'test',
      });
      // Its time is the line's own, not the export's.
      const line = logLines(server.stdout()).find((l) => l.trace_id === traceId);
      expect(line).toMatchObject({ msg: 'request completed', request_id: requestId, trace_flags: '01' });
      expect(BigInt(record!.timeUnixNano) / 1_000_000n).toBe(BigInt(Date.parse(String(line!.time))));
    } finally {
      server.child.kill('SIGTERM');
      exit = await server.exited;
    }
    expect(exit.code).toBe(0);
    // The record's span is the request's server span, the one whose parent is the caller's (spans are
    // batched for 5 s, and flushed at the latest by the shutdown).
    const record = receiver.logs.find((r) => r.resource['service.name'] === service && r.traceId === traceId);
    const span = receiver.spansOf(service).find((s) => s.traceId === traceId && s.parentSpanId === parent);
    expect(span).toBeDefined();
    expect(record?.spanId).toBe(span!.spanId);
    // The last line of the shutdown was exported before the process ended.
    expect(
      receiver.logs.some((r) => r.resource['service.name'] === service && r.body === 'shutdown: complete'),
    ).toBe(true);
    expect(logLines(server.stdout()).some((l) => l.msg === 'shutdown: complete')).toBe(true);
  });

  it('when no collector answers, then requests are served as before and the process still exits 0 within its bound', async () => {
    const { server, base } = await serve({
      OTEL_LOGS_EXPORTER: 'otlp',
      OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
    });
    for (let i = 0; i < 20; i++) {
      const answer = await fetch(`${base}/v1/random`);
      expect(answer.status).toBe(200);
    }
    const stopping = performance.now();
    server.child.kill('SIGTERM');
    const { code } = await server.exited;
    expect(code).toBe(0);
    // The log flush's 2 s deadline and the trace flush's 5 s one, plus the drain and a margin.
    expect(performance.now() - stopping).toBeLessThan(10_000);
    expect(
      logLines(server.stdout()).filter((l) => l.msg === 'request completed' && l.route === '/v1/random'),
    ).toHaveLength(20);
  });

  it('when OTEL_LOGS_EXPORTER=otlp has no endpoint, then the service refuses to start and names the setting', async () => {
    const { code, stderr } = await runToEnd(['serve'], { ENVIRONMENT: 'test', OTEL_LOGS_EXPORTER: 'otlp' });
    expect(code).toBe(2);
    expect(stderr).toContain('OTEL_LOGS_EXPORTER');
  });

  it('when the exporter is off (the default), then nothing is sent', async () => {
    const service = `log-export-off-${hex(4)}`;
    const { server, base } = await serve({ OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: service });
    await (await fetch(`${base}/v1/random`)).arrayBuffer();
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    // Its spans arrived (tracing is on), so an export would have had time to arrive too.
    expect(receiver.spansOf(service).length).toBeGreaterThan(0);
    expect(receiver.logs.filter((r) => r.resource['service.name'] === service)).toEqual([]);
  });
});
