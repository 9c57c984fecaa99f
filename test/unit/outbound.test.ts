// The outbound client against a real loopback HTTP server this file scripts: breaker thresholds and
// recovery, retries and their backoff, Retry-After, deadlines, the bulkhead, admin controls, metrics, traces.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { propagation, SpanKind, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createOutboundRegistry,
  OutboundError,
  outboundPolicyFrom,
  type OutboundPolicy,
  type OutboundRegistry,
} from '../../src/adapters/http/outbound.js';
import { closedPort } from '../helpers/services.js';

interface Hit {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
type Handler = (res: ServerResponse, n: number, hit: Hit) => void;

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (res: ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
const ok = json(200, { ok: true });
const status = (code: number, headers: Record<string, string> = {}) => json(code, { code }, headers);
const hang: Handler = () => undefined;
const later =
  (ms: number, then: Handler): Handler =>
  (res, n, hit) =>
    setTimeout(() => then(res, n, hit), ms);
/** Answers with the handlers in turn, the last one for ever after. */
const sequence =
  (...handlers: Handler[]): Handler =>
  (res, n, hit) =>
    handlers[Math.min(n, handlers.length - 1)]!(res, n, hit);

const upstream = { url: '', hits: [] as Hit[], handler: ok as Handler };
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    const hit = { at: performance.now(), method: req.method!, url: req.url!, headers: req.headers, body };
    upstream.hits.push(hit);
    upstream.handler(res, upstream.hits.length - 1, hit);
  });
});

const exporter = new InMemorySpanExporter();
beforeAll(async () => {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const POLICY: OutboundPolicy = {
  timeoutMs: 1_000,
  maxRetries: 0,
  maxConcurrency: 10,
  maxQueue: 10,
  consecutiveFailures: 3,
  failureRatio: 1,
  failureRatioWindowMs: 10_000,
  failureRatioMinCalls: 10,
  cooldownMs: 200,
  backoffBaseMs: 10,
  backoffMaxMs: 100,
};

let outbound: OutboundRegistry;
let registry: Registry;
function setup(policy: Partial<OutboundPolicy> = {}, handler: Handler = ok, random?: () => number) {
  upstream.hits = [];
  upstream.handler = handler;
  registry = new Registry();
  outbound = createOutboundRegistry({ policy: { ...POLICY, ...policy }, registry, random });
  return outbound.client('upstream', upstream.url);
}
afterEach(async () => {
  server.closeAllConnections();
  await outbound?.close();
});

async function failure(promise: Promise<unknown>): Promise<OutboundError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutboundError);
  return error as OutboundError;
}

async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

const gaps = (hits: Hit[]) => hits.slice(1).map((hit, i) => hit.at - hits[i]!.at);

describe('outbound client', () => {
  it('when configured from settings, then the policy carries them', () => {
    expect(
      outboundPolicyFrom({
        OUTBOUND_TIMEOUT_MS: 1500,
        OUTBOUND_MAX_RETRIES: 3,
        OUTBOUND_MAX_CONCURRENCY: 8,
        BREAKER_CONSECUTIVE_FAILURES: 4,
        BREAKER_FAILURE_RATIO: 0.25,
        BREAKER_COOLDOWN_SECONDS: 7,
      }),
    ).toMatchObject({
      timeoutMs: 1500,
      maxRetries: 3,
      maxConcurrency: 8,
      maxQueue: 8,
      consecutiveFailures: 4,
      failureRatio: 0.25,
      failureRatioWindowMs: 30_000,
      failureRatioMinCalls: 10,
      cooldownMs: 7_000,
    });
  });

  it('when the dependency answers, then the call resolves with status, headers and parsed JSON, sent under the base path', async () => {
    setup();
    const client = outbound.client('api', `${upstream.url}/base/v1/`);
    const response = await client.request({
      method: 'PUT',
      path: '/items',
      query: { q: 'a b', n: 2 },
      json: { hello: 'world' },
      headers: { 'X-Custom': 'yes' },
    });
    expect(response).toMatchObject({ status: 200, body: { ok: true } });
    expect(response.headers['content-type']).toBe('application/json');
    const [hit] = upstream.hits;
    expect(hit).toMatchObject({ method: 'PUT', url: '/base/v1/items?q=a+b&n=2', body: '{"hello":"world"}' });
    expect(hit!.headers).toMatchObject({ 'x-custom': 'yes', 'content-type': 'application/json' });
    expect(hit!.headers['user-agent']).toMatch(/^reliability-api\//);
    expect(outbound.client('api', `${upstream.url}/base/v1/`)).toBe(client);
    expect(() => outbound.client('api', 'http://127.0.0.1:1')).toThrow(/another base URL/);
  });

  it('when a non-JSON answer arrives, then its body is the text', async () => {
    const client = setup({}, (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('plain'));
    expect((await client.request({ path: '/' })).body).toBe('plain');
  });

  it('when failures reach the consecutive threshold, then the breaker opens and answers fast without touching the server', async () => {
    const client = setup({ consecutiveFailures: 3 }, status(500));
    for (let i = 0; i < 3; i++)
      expect(await failure(client.request({ path: '/' }))).toMatchObject({
        outcome: 'error_status',
        status: 500,
        dependency: 'upstream',
      });
    const open = await failure(client.request({ path: '/' }));
    expect(open.outcome).toBe('breaker_open');
    expect(open.retryAfterSeconds).toBeGreaterThan(0);
    expect(open.retryAfterSeconds).toBeLessThanOrEqual(0.2);
    expect(upstream.hits).toHaveLength(3);
    expect(outbound.snapshots()).toEqual([
      expect.objectContaining({
        name: 'upstream',
        state: 'open',
        calls: 4,
        failures: 3,
        rejections: 1,
        consecutive_failures: 3,
        last_failure: expect.objectContaining({ outcome: 'error_status', status: 500 }),
      }),
    ]);
    expect(await metric('circuit_breaker_state', { name: 'upstream' })).toBe(1);
    expect(await metric('circuit_breaker_transitions_total', { name: 'upstream', to: 'open' })).toBe(1);
    expect(await metric('outbound_requests_total', { dependency: 'upstream', outcome: 'error_status' })).toBe(
      3,
    );
    expect(await metric('outbound_requests_total', { dependency: 'upstream', outcome: 'breaker_open' })).toBe(
      1,
    );
  });

  it('when the cooldown has passed, then one trial call goes through (half-open) and its success closes the breaker', async () => {
    const client = setup({ consecutiveFailures: 1 }, status(503));
    await failure(client.request({ path: '/' }));
    expect(outbound.snapshots()[0]!.state).toBe('open');
    await sleep(POLICY.cooldownMs + 50);
    upstream.handler = later(150, ok);
    const trial = client.request({ path: '/' });
    while (upstream.hits.length < 2) await sleep(5);
    expect(outbound.snapshots()[0]!.state).toBe('half_open');
    expect(await metric('circuit_breaker_state', { name: 'upstream' })).toBe(2);
    expect((await trial).status).toBe(200);
    expect(outbound.snapshots()[0]).toMatchObject({
      state: 'closed',
      opened_at: null,
      consecutive_failures: 0,
    });
    expect(await metric('circuit_breaker_state', { name: 'upstream' })).toBe(0);
    for (const to of ['open', 'half_open', 'closed'])
      expect(await metric('circuit_breaker_transitions_total', { name: 'upstream', to }), to).toBe(1);
  });

  it('when the trial call fails, then the breaker opens again for another cooldown', async () => {
    const client = setup({ consecutiveFailures: 1 }, status(503));
    await failure(client.request({ path: '/' }));
    await sleep(POLICY.cooldownMs + 50);
    expect((await failure(client.request({ path: '/' }))).outcome).toBe('error_status');
    expect((await failure(client.request({ path: '/' }))).outcome).toBe('breaker_open');
    expect(upstream.hits).toHaveLength(2);
    expect(await metric('circuit_breaker_transitions_total', { name: 'upstream', to: 'open' })).toBe(2);
  });

  it('when more than the failure ratio of the window fails, with the minimum of calls, then the breaker opens', async () => {
    const client = setup(
      { consecutiveFailures: 100, failureRatio: 0.5, failureRatioMinCalls: 4 },
      sequence(status(502), ok, status(502), status(502)),
    );
    await failure(client.request({ path: '/' }));
    await client.request({ path: '/' });
    await failure(client.request({ path: '/' }));
    // 2 of 3 failed, but 3 calls are below the minimum
    expect(outbound.snapshots()[0]!.state).toBe('closed');
    await failure(client.request({ path: '/' }));
    expect(outbound.snapshots()[0]).toMatchObject({ state: 'open', consecutive_failures: 2 });
    expect((await failure(client.request({ path: '/' }))).outcome).toBe('breaker_open');
  });

  it('when an idempotent call keeps failing with a retryable status, then it stops after maxRetries with backoff that doubles up to its cap', async () => {
    // A jitter draw of ~1 makes each wait its ceiling: 49, 99, 149, then 149 (capped) ms.
    const client = setup(
      { maxRetries: 4, backoffBaseMs: 50, backoffMaxMs: 150, consecutiveFailures: 100 },
      status(503),
      () => 0.999,
    );
    expect(await failure(client.request({ path: '/' }))).toMatchObject({
      outcome: 'error_status',
      status: 503,
    });
    expect(upstream.hits).toHaveLength(5);
    const waits = [49, 99, 149, 149];
    gaps(upstream.hits).forEach((gap, i) => {
      expect(gap, `gap ${i}`).toBeGreaterThanOrEqual(waits[i]! - 2);
      // generous: a loaded machine delays timers, it never fires them early
      expect(gap, `gap ${i}`).toBeLessThan(waits[i]! + 1_000);
    });
    // one call, one breaker failure: retries do not inflate the count
    expect(outbound.snapshots()[0]).toMatchObject({ failures: 1, consecutive_failures: 1 });
  });

  it('when jitter is random, then every wait stays under its exponential ceiling', async () => {
    const client = setup({ maxRetries: 3, backoffBaseMs: 40, backoffMaxMs: 1_000 }, status(504));
    await failure(client.request({ path: '/' }));
    expect(upstream.hits).toHaveLength(4);
    gaps(upstream.hits).forEach((gap, i) => expect(gap, `gap ${i}`).toBeLessThan(40 * 2 ** i + 1_000));
  });

  it('when a retry succeeds, then the call resolves', async () => {
    const client = setup({ maxRetries: 2 }, sequence(status(502), status(429), ok));
    expect((await client.request({ path: '/' })).status).toBe(200);
    expect(upstream.hits).toHaveLength(3);
    expect(outbound.snapshots()[0]).toMatchObject({ successes: 1, failures: 0 });
  });

  it('when a 503 carries Retry-After, then the retry waits that long', async () => {
    const client = setup(
      { maxRetries: 1, backoffBaseMs: 1, backoffMaxMs: 5_000 },
      sequence(status(503, { 'retry-after': '1' }), ok),
    );
    expect((await client.request({ path: '/' })).status).toBe(200);
    expect(gaps(upstream.hits)[0]).toBeGreaterThanOrEqual(995);
  });

  it('when Retry-After asks for longer than the backoff cap, then the wait is capped', async () => {
    const client = setup(
      { maxRetries: 1, backoffBaseMs: 1, backoffMaxMs: 300 },
      sequence(status(429, { 'retry-after': '120' }), ok),
    );
    expect((await client.request({ path: '/' })).status).toBe(200);
    const [gap] = gaps(upstream.hits);
    expect(gap).toBeGreaterThanOrEqual(295);
    expect(gap).toBeLessThan(5_000);
  });

  it('when the answer is 500, then it is not retried', async () => {
    const client = setup({ maxRetries: 3 }, status(500));
    expect((await failure(client.request({ path: '/' }))).status).toBe(500);
    expect(upstream.hits).toHaveLength(1);
  });

  it('when a POST fails with a retryable status, then it is never retried unless marked idempotent', async () => {
    const client = setup({ maxRetries: 3, consecutiveFailures: 100 }, status(503));
    await failure(client.request({ method: 'POST', path: '/', json: {} }));
    expect(upstream.hits).toHaveLength(1);
    await failure(client.request({ method: 'POST', path: '/', json: {}, idempotent: true }));
    expect(upstream.hits).toHaveLength(5);
  });

  it('when the dependency answers 404, then the call resolves and the breaker does not count it', async () => {
    const client = setup({ consecutiveFailures: 2 }, status(404));
    for (let i = 0; i < 4; i++) expect((await client.request({ path: '/missing' })).status).toBe(404);
    expect(outbound.snapshots()[0]).toMatchObject({
      state: 'closed',
      successes: 4,
      failures: 0,
      consecutive_failures: 0,
    });
  });

  it('when the server hangs, then the attempt times out, and a timeout is retried', async () => {
    const client = setup({ timeoutMs: 100, maxRetries: 1 }, hang);
    const error = await failure(client.request({ path: '/' }));
    expect(error.outcome).toBe('timeout');
    expect(upstream.hits).toHaveLength(2);
    expect(await metric('outbound_requests_total', { dependency: 'upstream', outcome: 'timeout' })).toBe(1);
  });

  it('when nothing listens, then the call fails as a connection error', async () => {
    setup();
    const client = outbound.client('down', `http://127.0.0.1:${await closedPort()}`);
    expect((await failure(client.request({ path: '/' }))).outcome).toBe('connection_error');
  });

  it('when the bulkhead and its queue are full, then further calls are rejected at once', async () => {
    const client = setup({ maxConcurrency: 1, maxQueue: 1 }, later(200, ok));
    const calls = [1, 2, 3].map(() =>
      client.request({ path: '/' }).then(
        (r) => r.status,
        (e: OutboundError) => e.outcome,
      ),
    );
    expect(await calls[2]).toBe('bulkhead_rejected');
    expect(await Promise.all(calls)).toEqual([200, 200, 'bulkhead_rejected']);
    expect(upstream.hits).toHaveLength(2);
    expect(outbound.snapshots()[0]).toMatchObject({ rejections: 1, in_flight: 0, queued: 0 });
  });

  it('when the caller aborts, then the call rejects with its reason and the breaker does not count it', async () => {
    const client = setup({ consecutiveFailures: 1 }, hang);
    const controller = new AbortController();
    const call = client.request({ path: '/', signal: controller.signal });
    while (upstream.hits.length < 1) await sleep(5);
    controller.abort(new Error('client went away'));
    await expect(call).rejects.toThrow('client went away');
    expect(outbound.snapshots()[0]).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('when an operator opens, closes and resets a breaker, then calls follow the forced state', async () => {
    const client = setup();
    await client.request({ path: '/' });
    expect(outbound.control('upstream', 'open')).toMatchObject({ state: 'isolated' });
    expect((await failure(client.request({ path: '/' }))).outcome).toBe('breaker_open');
    expect(upstream.hits).toHaveLength(1);
    expect(await metric('circuit_breaker_state', { name: 'upstream' })).toBe(1);
    expect(outbound.control('upstream', 'close')).toMatchObject({ state: 'closed', calls: 2, rejections: 1 });
    expect((await client.request({ path: '/' })).status).toBe(200);
    expect(outbound.control('upstream', 'reset')).toMatchObject({
      state: 'closed',
      calls: 0,
      successes: 0,
      failures: 0,
      rejections: 0,
      last_failure: null,
    });
    expect(outbound.control('nope', 'open')).toBeUndefined();
  });

  it('when an operator closes a breaker that opened on failures, then calls go through again at once', async () => {
    const client = setup({ consecutiveFailures: 1, cooldownMs: 60_000 }, status(503));
    await failure(client.request({ path: '/' }));
    upstream.handler = ok;
    expect(outbound.control('upstream', 'close')).toMatchObject({ state: 'closed', consecutive_failures: 0 });
    expect((await client.request({ path: '/' })).status).toBe(200);
  });

  it('when tracing is on, then each attempt is a CLIENT span and its traceparent reaches the server', async () => {
    exporter.reset();
    const client = setup({ maxRetries: 1 }, sequence(status(502), ok));
    await client.request({ path: '/traced', query: { token: 'secret' } });
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    spans.forEach((span, i) => {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(upstream.hits[i]!.headers.traceparent).toBe(
        `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`,
      );
    });
    expect(spans[0]!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `${upstream.url}/traced`,
      'server.address': '127.0.0.1',
      'http.response.status_code': 502,
      'error.type': '502',
    });
    expect(spans[1]!.attributes).toMatchObject({
      'http.response.status_code': 200,
      'http.request.resend_count': 1,
    });
  });
});
