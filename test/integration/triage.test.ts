// Error triage through the real app: 5xx answers land in the ring and group by fingerprint, the log file is
// read as a second source, and the summary goes through a fake LLM on loopback (OpenAI and Gemini shapes)
// without a single planted secret reaching it, falling back to rules whenever the LLM fails.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { readLogFile } from '../../src/modules/triage/log-file.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { bearer, createUser, login } from '../helpers/identity.js';
import { STUB_CAUSE, startLlmStub, type LlmStub } from '../helpers/llm-stub.js';
import { closedPort } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const LLM_KEY = 'test-llm-key-0123';
// Secrets planted in error messages, in the ring and in the log file; none may reach the LLM.
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsInJvbGUiOiJhZG1pbiJ9.kLq3uD0f9bX2rY7tW4sV1nM8pZ6cA5eH3jG0iK9oQ2w';
const SECRETS = {
  bearer: 'opaqueBearerValue42',
  jwt: JWT,
  apiKey: 'Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98765432',
  password: 'Sup3rSecret!Pw',
  email: 'carol.jones@example.org',
  ip: '203.0.113.77',
};
const leakyMessage = (n: number) =>
  `login failed for ${SECRETS.email} from ${SECRETS.ip} password=${SECRETS.password} ` +
  `Authorization: Bearer ${SECRETS.bearer} jwt ${SECRETS.jwt} key rak_0a1b2c3d_${SECRETS.apiKey} attempt ${n}`;

const now = Date.now();
const iso = (offsetMs: number) => new Date(now + offsetMs).toISOString();
// The two lines this service writes for a failed request: the error handler's and the access line.
const failed = (id: string, at: number, err: Record<string, unknown>) => ({
  level: 'error',
  time: iso(at),
  request_id: id,
  msg: 'request failed',
  err,
});
const access = (id: string, at: number, route: string, status: number, method = 'GET') => ({
  level: 'info',
  time: iso(at),
  request_id: id,
  method,
  route,
  status,
  msg: 'request completed',
});
const LOG_LINES = [
  failed('file-req-1', -5_000, { type: 'Error', message: leakyMessage(1) }),
  access('file-req-1', -5_000, '/v1/auth/login', 500, 'POST'),
  access('file-req-2', -4_000, '/v1/auth/login', 500, 'POST'), // the access line may come first
  failed('file-req-2', -4_000, { type: 'Error', message: leakyMessage(2) }),
  {
    level: 50,
    time: now - 3_000,
    msg: 'redis lost',
    err: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.9.8.7:6379' },
  },
  access('file-req-3', -2_000, '/v1/random', 503),
  access('file-ok', -1_000, '/v1/random', 200),
].map((l) => JSON.stringify(l));
const MALFORMED = ['not json at all', '{"truncated": ', '[1,2,3]'];

const logDir = mkdtempSync(path.join(tmpdir(), 'triage-'));
const logFile = path.join(logDir, 'service.log');
writeFileSync(logFile, [...LOG_LINES.slice(0, 3), ...MALFORMED, ...LOG_LINES.slice(3), ''].join('\n'));

interface Group {
  fingerprint: string;
  code: string;
  pattern: string;
  route: string;
  count: number;
  statuses: number[];
  request_ids: string[];
  trace_ids: string[];
  sample_message: string;
}
interface Triage {
  fingerprint: string;
  likely_cause: string;
  severity: string;
  next_steps: string[];
  source: string;
}

let stub: LlmStub;
let adminToken: string;
let userToken: string;
const apps: TestApp[] = [];

/** A started app with extra routes that fail the way real code does. */
async function triageApp(env: Record<string, string>): Promise<App> {
  const t = await buildTestApp({ FAULT_INJECTION_ENABLED: 'true', ...env }, { start: false });
  apps.push(t);
  // What a tracing plugin does: the rest of the request runs inside a context holding its span.
  t.app.addHook('onRequest', (request, _reply, done) => {
    const traceId = request.headers['x-test-trace-id'];
    if (typeof traceId !== 'string') return done();
    const span = { traceId, spanId: '00f067aa0ba902b7', traceFlags: 1 };
    context.with(trace.setSpanContext(context.active(), span), done);
  });
  t.app.get<{ Params: { id: string }; Querystring: { label: string } }>(
    '/test/orders/:id',
    async (request) => {
      const { id } = request.params;
      throw new Error(
        `charge failed in ${request.query.label} for order ${id} of bob${id}@example.com from 10.0.0.${Number(id) % 250}`,
      );
    },
  );
  t.app.get('/test/leak', async () => {
    throw new Error(leakyMessage(3));
  });
  await t.app.ready();
  await startApp(t.app, t.config);
  return t.app;
}

const get = (app: App, url: string, token = adminToken) => app.inject({ url, headers: bearer(token) });
const groupsOf = async (app: App, url = '/v1/admin/errors?limit=500') =>
  (await get(app, url)).json<{ groups: Group[] }>().groups;

let app: App;
beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  stub = await startLlmStub();
  app = await triageApp({});
  const admin = await createUser(app, 'admin');
  const user = await createUser(app, 'user');
  adminToken = (await login(app, admin.username)).access_token;
  userToken = (await login(app, user.username)).access_token;
});
afterAll(async () => {
  for (const t of apps) await t.app.close();
  await stub.close();
  context.disable();
});

describe('GET /v1/admin/errors from the ring', () => {
  it('when requests fail with 5xx, then they group by fingerprint with the request ids the clients saw', async () => {
    const ids: string[] = [];
    for (const order of [11, 42, 977]) {
      const response = await app.inject({ url: `/test/orders/${order}?label=alpha` });
      expect(response.statusCode).toBe(500);
      ids.push(response.headers['x-request-id'] as string);
    }
    const group = (await groupsOf(app)).find((g) => g.pattern.includes('alpha'));
    expect(group).toMatchObject({
      code: 'Error',
      pattern: 'charge failed in alpha for order <num> of [EMAIL] from [IP]',
      route: '/test/orders/:id',
      count: 3,
      statuses: [500],
      request_ids: ids.reverse(),
    });
    expect(group!.fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(group!.sample_message).toBe('charge failed in alpha for order 977 of [EMAIL] from [IP]');
  });

  it('when faults are injected, then each status is counted in one group and 4xx answers are left out', async () => {
    const send = (status: number, id: string) =>
      app.inject({ url: '/v1/random', headers: { 'x-fault-status': String(status), 'x-request-id': id } });
    expect((await send(503, 'fault-a')).statusCode).toBe(503);
    expect((await send(500, 'fault-b')).statusCode).toBe(500);
    expect((await send(404, 'fault-c')).statusCode).toBe(404);
    const groups = await groupsOf(app);
    const faults = groups.find((g) => g.code === 'APP_FAULT_INJECTED');
    expect(faults).toMatchObject({
      pattern: 'Injected fault (X-Fault-Status: <num>)',
      route: '/v1/random',
      count: 2,
      statuses: [500, 503],
      request_ids: ['fault-b', 'fault-a'],
    });
    expect(groups.flatMap((g) => g.request_ids)).not.toContain('fault-c');
  });

  it('when a request fails inside a trace, then its group carries the trace id', async () => {
    const traceId = randomBytes(16).toString('hex');
    const response = await app.inject({
      url: '/test/orders/7?label=gamma',
      headers: { 'x-test-trace-id': traceId },
    });
    expect(response.statusCode).toBe(500);
    const group = (await groupsOf(app)).find((g) => g.pattern.includes('gamma'));
    expect(group).toMatchObject({ trace_ids: [traceId], request_ids: [response.headers['x-request-id']] });
  });

  it('when requests succeed, then nothing is recorded', async () => {
    const before = (await get(app, '/v1/admin/errors')).json<{ total: number }>().total;
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/v1/random' })).statusCode).toBe(200);
    expect((await get(app, '/v1/admin/errors')).json<{ total: number }>().total).toBe(before);
  });

  it('when since and limit are given, then the window and the number of groups follow them', async () => {
    await app.inject({ url: '/test/orders/5?label=beta' });
    const limited = (await get(app, '/v1/admin/errors?limit=1&since=15m')).json();
    expect(limited.groups).toHaveLength(1);
    expect(limited.total_groups).toBeGreaterThan(1);
    expect(limited.sources).toEqual({ ring: limited.total });
    const future = (
      await get(app, `/v1/admin/errors?since=${new Date(Date.now() + 60_000).toISOString()}`)
    ).json();
    expect(future).toMatchObject({ total: 0, total_groups: 0, groups: [] });
  });

  it.each([
    ['since=yesterday', 'since'],
    ['since=15x', 'since'],
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['colour=red', 'colour'],
  ])('when the query is %s, then 400 problem+json names %s', async (query, name) => {
    const response = await get(app, `/v1/admin/errors?${query}`);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().errors[0].name).toBe(name);
  });

  it('when the caller is not an admin, then 403; without credentials, 401', async () => {
    for (const url of ['/v1/admin/errors', '/v1/admin/errors/summary']) {
      expect((await get(app, url, userToken)).statusCode).toBe(403);
      expect((await app.inject({ url })).statusCode).toBe(401);
    }
  });

  it('when no LLM is configured, then the summary is rule-based with a runbook per group', async () => {
    const body = (await get(app, '/v1/admin/errors/summary')).json();
    expect(body.summary.source).toBe('rules');
    expect(body.summary.llm_error).toBeUndefined();
    expect(body.summary.groups.map((t: Triage) => t.fingerprint)).toEqual(
      body.groups.map((g: Group) => g.fingerprint),
    );
    const faults = body.groups.find((g: Group) => g.code === 'APP_FAULT_INJECTED');
    const triage = body.summary.groups.find((t: Triage) => t.fingerprint === faults.fingerprint);
    expect(triage).toMatchObject({ severity: 'low', source: 'rules' });
    expect(triage.likely_cause).toMatch(/X-Fault-Status/);
    const bug = body.summary.groups.find((t: { runbook?: string }) => t.runbook !== undefined);
    expect(bug.runbook).toMatch(/^docs\/runbooks\/\w+\.md$/);
  });
});

describe('the log file source', () => {
  it('when LOG_FILE_PATH is set, then its errors are merged per request, grouped and redacted', async () => {
    const fileApp = await triageApp({ LOG_FILE_PATH: logFile });
    const body = (await get(fileApp, '/v1/admin/errors')).json();
    expect(body.sources.log_file).toEqual({ path: logFile, lines: 10, malformed: 3, truncated: false });
    const login = body.groups.find((g: Group) => g.route === '/v1/auth/login');
    expect(login).toMatchObject({
      code: 'Error',
      count: 2,
      statuses: [500],
      request_ids: ['file-req-2', 'file-req-1'],
    });
    const redis = body.groups.find((g: Group) => g.code === 'ECONNREFUSED');
    expect(redis).toMatchObject({ route: 'none', pattern: 'connect ECONNREFUSED [IP]:<num>', count: 1 });
    expect(body.groups.find((g: Group) => g.code === 'HTTP_503')).toMatchObject({
      request_ids: ['file-req-3'],
    });
    const text = JSON.stringify(body.groups.map((g: Group) => [g.pattern, g.sample_message]));
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
  });

  it('when the file is larger than the tail read, then only the tail is read and the cut line is not malformed', async () => {
    const read = await readLogFile(logFile, { tailBytes: LOG_LINES.at(-1)!.length + 20 });
    expect(read.stats).toMatchObject({ lines: 1, malformed: 0, truncated: true });
  });

  it('when the file does not exist, then the answer says so instead of failing', async () => {
    const missingApp = await triageApp({ LOG_FILE_PATH: path.join(logDir, 'missing.log') });
    const response = await get(missingApp, '/v1/admin/errors');
    expect(response.statusCode).toBe(200);
    expect(response.json().sources.log_file).toMatchObject({ error: 'ENOENT', lines: 0 });
  });
});

describe('GET /v1/admin/errors/summary with an LLM', () => {
  const llmEnv = (provider: string, base: string) => ({
    LOG_FILE_PATH: logFile,
    TRIAGE_LLM_PROVIDER: provider,
    TRIAGE_LLM_BASE_URL: base,
    TRIAGE_LLM_MODEL: `${provider}-test-model`,
    TRIAGE_LLM_API_KEY: LLM_KEY,
    OUTBOUND_TIMEOUT_MS: '500',
    OUTBOUND_MAX_RETRIES: '0',
    BREAKER_CONSECUTIVE_FAILURES: '1000',
  });

  // The LLM's own key travels in these, as it must; everything else is searched for planted secrets.
  const CREDENTIAL_HEADERS = new Set(['authorization', 'x-goog-api-key']);

  /** Every planted secret is absent from everything the stub received. */
  function expectNoSecretsSent(): void {
    expect(stub.requests.length).toBeGreaterThan(0);
    for (const request of stub.requests) {
      const headers = Object.entries(request.headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name));
      const sent = `${request.url}\n${JSON.stringify(headers)}\n${request.body}`;
      for (const [kind, secret] of Object.entries(SECRETS)) expect(sent, kind).not.toContain(secret);
      for (const piece of JWT.split('.')) expect(sent).not.toContain(piece);
      expect(sent).not.toContain('10.9.8.7');
    }
  }

  it.each([
    ['openai', '/v1', '/v1/chat/completions'],
    ['gemini', '/v1beta', '/v1beta/models/gemini-test-model:generateContent'],
  ])(
    'when the provider is %s, then the groups are triaged by the model and no secret is sent',
    async (provider, base, requestPath) => {
      const llmApp = await triageApp(llmEnv(provider, `${stub.url}${base}`));
      expect((await llmApp.inject({ url: '/test/leak' })).statusCode).toBe(500);
      stub.mode = 'ok';
      stub.requests.length = 0;
      const body = (await get(llmApp, '/v1/admin/errors/summary')).json();
      expect(body.summary).toMatchObject({ source: 'llm', provider, model: `${provider}-test-model` });
      expect(body.summary.groups).toHaveLength(body.groups.length);
      for (const triage of body.summary.groups)
        expect(triage).toMatchObject({ likely_cause: STUB_CAUSE, source: 'llm' });

      expect(stub.requests).toHaveLength(1);
      const [request] = stub.requests;
      expect(request!.method).toBe('POST');
      expect(request!.url).toBe(requestPath);
      const sent = JSON.parse(request!.body);
      if (provider === 'openai') {
        expect(request!.headers.authorization).toBe(`Bearer ${LLM_KEY}`);
        expect(sent).toMatchObject({ model: 'openai-test-model', response_format: { type: 'json_object' } });
      } else {
        expect(request!.headers['x-goog-api-key']).toBe(LLM_KEY);
        expect(sent.generationConfig.responseMimeType).toBe('application/json');
      }
      expect(request!.body).toContain('/v1/auth/login');
      expectNoSecretsSent();
    },
  );

  it.each(['garbage', 'not-json-content', 'fail', 'hang'] as const)(
    'when the LLM answers %s, then the summary falls back to rules with llm_error',
    async (mode) => {
      const llmApp = await triageApp(llmEnv('openai', `${stub.url}/v1`));
      stub.mode = mode;
      stub.requests.length = 0;
      const response = await get(llmApp, '/v1/admin/errors/summary');
      expect(response.statusCode).toBe(200);
      const { summary, groups } = response.json();
      expect(summary).toMatchObject({ source: 'rules', provider: 'openai', model: 'openai-test-model' });
      expect(summary.llm_error).toEqual(expect.any(String));
      expect(summary.groups).toHaveLength(groups.length);
      for (const triage of summary.groups) expect(triage.source).toBe('rules');
      expect(stub.requests.length).toBeGreaterThan(0);
      expectNoSecretsSent();
    },
  );

  it('when the LLM keeps failing, then its breaker opens and later summaries do not call it', async () => {
    const llmApp = await triageApp({
      ...llmEnv('openai', `${stub.url}/v1`),
      BREAKER_CONSECUTIVE_FAILURES: '2',
    });
    stub.mode = 'fail';
    for (let i = 0; i < 2; i++) await get(llmApp, '/v1/admin/errors/summary');
    stub.mode = 'ok';
    stub.requests.length = 0;
    const { summary } = (await get(llmApp, '/v1/admin/errors/summary')).json();
    expect(summary).toMatchObject({ source: 'rules' });
    expect(summary.llm_error).toMatch(/breaker_open/);
    expect(stub.requests).toHaveLength(0);
  });

  it('when the LLM is unreachable, then the summary falls back to rules with llm_error', async () => {
    const llmApp = await triageApp(llmEnv('gemini', `http://127.0.0.1:${await closedPort()}/v1beta`));
    const { summary } = (await get(llmApp, '/v1/admin/errors/summary')).json();
    expect(summary).toMatchObject({ source: 'rules', provider: 'gemini' });
    expect(summary.llm_error).toEqual(expect.any(String));
  });
});
