// Tracing through the real app, exporting to a real OTLP/HTTP receiver on loopback: a request continues
// its caller's trace, database and Redis calls are its descendants, its log lines carry the trace id; the
// samplers decide what is exported; with no endpoint nothing is traced or added to log lines.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, context, trace } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp } from '../../src/app.js';
import { loggerOptions } from '../../src/observability/logger.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { PASSWORD, createUser } from '../helpers/identity.js';
import {
  SPAN_KIND,
  descendsFrom,
  startOtlpReceiver,
  traceparent,
  type OtlpReceiver,
  type ReceivedSpan,
} from '../helpers/otlp-receiver.js';
import { TEST_REDIS_URL, createTestDatabase, type TestDatabase } from '../helpers/services.js';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver.close();
});

async function redisReady(redis: Redis | undefined): Promise<void> {
  if (redis === undefined) throw new Error('the app has no Redis client');
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Redis did not become ready')), 5_000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Each app exports under its own service name, so a test sees only its own spans in the shared receiver. */
function tracedEnv(env: Record<string, string> = {}) {
  return {
    OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: `tracing-test-${hex(4)}`,
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_STORAGE_URI: TEST_REDIS_URL,
    ...env,
  };
}

const spansOf = (service: string) => receiver.spansOf(service);

/**
 * POSTs JSON over a real socket, the body sent well after the headers, as a slow client or a large body
 * does: the handler then runs from a later socket event, and must still be inside the request's span.
 */
async function postLate(url: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; requestId: string }>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode!, requestId: String(res.headers['x-request-id']) }),
      );
    });
    req.flushHeaders();
    setTimeout(() => req.end(body), 100);
  });
}

/**
 * The real app, plus routes only tests have: one logs around an await, one fails, and one answers from
 * outside the request's context, as a callback API that loses the context would.
 */
async function buildTracedApp(env: Record<string, string>): Promise<TestApp> {
  const t = await buildTestApp(env, { start: false });
  t.app.get('/test/log', async (request) => {
    request.log.info('before the await');
    await sleep(5);
    t.app.log.info('after the await, on the app logger');
    return { ok: true };
  });
  t.app.get('/test/fail', async () => {
    throw new Error('handler failed');
  });
  t.app.get('/test/detached', (_request, reply) => {
    context.with(ROOT_CONTEXT, () => void reply.send({ ok: true }));
  });
  await t.app.ready();
  await startApp(t.app, t.config);
  return t;
}

interface Traced {
  traceId: string;
  requestId: string;
}

interface TracedRun {
  t: TestApp;
  service: string;
  /** The login, its caller's span id, and the user who logged in. */
  login: Traced & { parentId: string; username: string };
  /** The calls of the test routes, each in its own trace. */
  log: Traced;
  fail: Traced;
  detached: Traced;
  metrics: string;
}

/**
 * Logs in over real HTTP with an incoming traceparent, calls the test routes, scrapes /metrics, then
 * closes the app (which flushes the exporter).
 */
async function tracedRun(env: Record<string, string> = {}): Promise<TracedRun> {
  const settings = tracedEnv(env);
  const t = await buildTracedApp(settings);
  const get = async (url: string, status: number): Promise<Traced> => {
    const traceId = hex(16);
    const response = await t.app.inject({ url, headers: { traceparent: traceparent(traceId, hex(8)) } });
    expect(response.statusCode, url).toBe(status);
    return { traceId, requestId: String(response.headers['x-request-id']) };
  };
  try {
    await redisReady(t.app.redis);
    const user = await createUser(t.app);
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const traceId = hex(16);
    const parentId = hex(8);
    const response = await postLate(
      `${address}/v1/auth/login`,
      { traceparent: traceparent(traceId, parentId) },
      JSON.stringify({ username: user.username, password: PASSWORD }),
    );
    expect(response.status).toBe(200);
    return {
      t,
      service: settings.OTEL_SERVICE_NAME,
      login: { traceId, parentId, requestId: response.requestId, username: user.username },
      log: await get('/test/log', 200),
      fail: await get('/test/fail', 500),
      detached: await get('/test/detached', 200),
      metrics: (await t.app.inject({ url: '/metrics' })).body,
    };
  } finally {
    await t.app.close();
  }
}

const serverSpan = (run: TracedRun, traceId: string) =>
  spansOf(run.service).find((s) => s.kind === SPAN_KIND.SERVER && s.traceId === traceId);

function expectTracedLogin(run: TracedRun): {
  server: ReceivedSpan;
  db: ReceivedSpan[];
  redis: ReceivedSpan[];
} {
  const spans = spansOf(run.service).filter((s) => s.traceId === run.login.traceId);
  const server = spans.find((s) => s.kind === SPAN_KIND.SERVER);
  expect(server).toBeDefined();
  expect(server!.parentSpanId).toBe(run.login.parentId);
  expect(server!.name).toBe('POST /v1/auth/login');
  expect(server!.attributes).toMatchObject({
    'http.request.method': 'POST',
    'http.route': '/v1/auth/login',
    'url.path': '/v1/auth/login',
    'http.response.status_code': 200,
  });
  const db = spans.filter((s) => s.attributes['db.system.name'] === 'postgresql');
  const redis = spans.filter((s) => s.attributes['db.system.name'] === 'redis');
  expect(db.length).toBeGreaterThan(0);
  expect(redis.length).toBeGreaterThan(0);
  for (const span of [...db, ...redis]) {
    expect(span.kind).toBe(SPAN_KIND.CLIENT);
    expect(descendsFrom(span, server!.spanId, spans), span.name).toBe(true);
    // Neither SQL parameters nor Redis arguments: the username and password appear in no attribute.
    expect(JSON.stringify(span.attributes)).not.toContain(run.login.username);
    expect(JSON.stringify(span.attributes)).not.toContain(PASSWORD);
  }
  expect(db.some((s) => s.name === 'SELECT users' && s.attributes['db.collection.name'] === 'users')).toBe(
    true,
  );
  expect(db.every((s) => typeof s.attributes['db.query.text'] === 'string')).toBe(true);
  return { server: server!, db, redis };
}

describe('with tracing on, over the embedded database', () => {
  let run: TracedRun;
  beforeAll(async () => {
    run = await tracedRun();
  });

  it('when a login arrives with a traceparent, then its server span continues that trace, with database and Redis spans beneath it', () => {
    const { server, redis } = expectTracedLogin(run);
    expect(server.resource).toMatchObject({ 'service.name': run.service, 'deployment.environment': 'test' });
    expect(redis.every((s) => s.name === s.attributes['db.operation.name'])).toBe(true);
  });

  it("when a request completes, then its access line carries its trace id and its server span's id", () => {
    // The second was answered outside the request's context: the ids come from its span all the same.
    for (const { requestId, traceId } of [run.login, run.detached]) {
      const access = run.t.logs.find((l) => l.request_id === requestId && l.msg === 'request completed');
      expect(access).toMatchObject({ trace_id: traceId, span_id: serverSpan(run, traceId)?.spanId });
    }
  });

  it('when a handler logs before and after an await, on the request or the app logger, then both lines carry its ids', () => {
    const server = serverSpan(run, run.log.traceId);
    expect(server).toBeDefined();
    for (const msg of ['before the await', 'after the await, on the app logger']) {
      const line = run.t.logs.find((l) => l.msg === msg);
      expect(line, msg).toMatchObject({ trace_id: run.log.traceId, span_id: server!.spanId });
    }
  });

  it('when a handler fails, then its span is an error holding the exception, and the error line carries its trace id', () => {
    const server = serverSpan(run, run.fail.traceId);
    expect(server?.name).toBe('GET /test/fail');
    expect(server?.status.code).toBe(2);
    expect(server?.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500' });
    const exception = server?.events.find((e) => e.name === 'exception');
    expect(exception?.attributes['exception.message']).toBe('handler failed');
    const failed = run.t.logs.find((l) => l.msg === 'request failed');
    expect(failed).toMatchObject({ request_id: run.fail.requestId, trace_id: run.fail.traceId });
  });

  it('when queries and commands ran, then their durations and the pool state are in /metrics', () => {
    expect(run.metrics).toMatch(/^db_query_duration_seconds_count\{operation="select"\} [1-9]/m);
    expect(run.metrics).toMatch(/^db_query_duration_seconds_count\{operation="insert"\} [1-9]/m);
    expect(run.metrics).toMatch(/^redis_command_duration_seconds_count\{command="[a-z]+"\} [1-9]/m);
    expect(run.metrics).toMatch(/^db_pool_connections\{state="idle"\} 1$/m);
    expect(run.metrics).toMatch(/^db_pool_connections\{state="in_use"\} 0$/m);
    expect(run.metrics).toMatch(/^db_pool_connections\{state="waiting"\} 0$/m);
  });
});

describe.skipIf(!inject('postgresAvailable'))('with tracing on, over the real PostgreSQL', () => {
  let database: TestDatabase;
  let run: TracedRun;
  beforeAll(async () => {
    database = await createTestDatabase('tracing');
    run = await tracedRun({ DATABASE_URL: database.url });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('when a login arrives with a traceparent, then the pg queries are spans beneath its server span', () => {
    const { db } = expectTracedLogin(run);
    expect(db.every((s) => s.attributes['db.namespace'] === database.name)).toBe(true);
    expect(db.every((s) => s.attributes['server.address'] === '127.0.0.1')).toBe(true);
  });

  it('when the pg pool has served queries, then /metrics reports its connections by state', () => {
    expect(run.metrics).toMatch(/^db_query_duration_seconds_count\{operation="select"\} [1-9]/m);
    expect(run.metrics).toMatch(/^db_pool_connections\{state="idle"\} [1-9]/m);
    expect(run.metrics).toMatch(/^db_pool_connections\{state="waiting"\} 0$/m);
  });
});

describe('sampling', () => {
  it('when the sampler is always_off, then the request is served and no span is exported', async () => {
    const settings = tracedEnv({ OTEL_TRACES_SAMPLER: 'always_off' });
    const t = await buildTestApp(settings);
    const traceId = hex(16);
    try {
      const response = await t.app.inject({
        url: '/v1/random',
        headers: { traceparent: traceparent(traceId, hex(8)) },
      });
      expect(response.statusCode).toBe(200);
    } finally {
      await t.app.close();
    }
    expect(spansOf(settings.OTEL_SERVICE_NAME)).toEqual([]);
  });

  it('when an incoming traceparent is not sampled, then parentbased_always_on exports nothing of that trace', async () => {
    const settings = tracedEnv({ OTEL_TRACES_SAMPLER: 'parentbased_always_on' });
    const t = await buildTestApp(settings);
    const unsampled = hex(16);
    const sampled = hex(16);
    try {
      for (const [traceId, flags] of [
        [unsampled, '00'],
        [sampled, '01'],
      ] as const) {
        const response = await t.app.inject({
          url: '/v1/random',
          headers: { traceparent: traceparent(traceId, hex(8), flags) },
        });
        expect(response.statusCode).toBe(200);
      }
    } finally {
      await t.app.close();
    }
    const traces = new Set(spansOf(settings.OTEL_SERVICE_NAME).map((s) => s.traceId));
    expect(traces.has(unsampled)).toBe(false);
    expect(traces.has(sampled)).toBe(true); // the same app does export a sampled request
  });
});

describe('with tracing off', () => {
  it('when no OTLP endpoint is set, then nothing is traced and log lines carry no trace ids', async () => {
    const requestsBefore = receiver.requests;
    const t = await buildTestApp({ REDIS_URL: TEST_REDIS_URL });
    try {
      expect(loggerOptions(t.config, 'reliability-api', 'test').mixin).toBeUndefined();
      expect(t.app.hasRequestDecorator('traceSpan')).toBe(false);
      await redisReady(t.app.redis);
      const user = await createUser(t.app);
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        headers: { traceparent: traceparent(hex(16), hex(8)) },
        payload: { username: user.username, password: PASSWORD },
      });
      expect(response.statusCode).toBe(200);
      // No provider is registered: spans anywhere in the process are no-ops.
      expect(trace.getTracer('probe').startSpan('probe').isRecording()).toBe(false);
      const lines = t.logs.filter((l) => l.request_id === response.headers['x-request-id']);
      expect(lines.some((l) => l.msg === 'request completed')).toBe(true);
      for (const line of lines) expect(line).not.toHaveProperty('trace_id');
    } finally {
      await t.app.close();
    }
    expect(receiver.requests).toBe(requestsBefore);
  });
});
