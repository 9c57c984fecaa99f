// The HTTP core every route shares: request ids, problem+json errors (404, 405, 413, 415, 500), security
// headers, CORS, the access log and its redaction, OpenAPI and the docs page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { PROBLEM } from '../helpers/problem.js';

let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp(
    { CORS_ALLOW_ORIGINS: 'https://app.example', ENVIRONMENT: 'test' },
    { start: false },
  );
  // A route that takes a JSON body and one that fails, to exercise the shared error handling.
  t.app.post('/test/echo', { schema: { body: { type: 'object' } } }, async (request) => request.body);
  t.app.get('/test/boom', async () => {
    throw new Error('database password is hunter2');
  });
  await t.app.ready();
});
afterAll(async () => {
  await t.app.close();
});

describe('request ids', () => {
  it('when the client sends a well-formed X-Request-ID, then it is echoed and in the access log line', async () => {
    const response = await t.app.inject({ url: '/v1/random', headers: { 'x-request-id': 'req-abc.123' } });
    expect(response.headers['x-request-id']).toBe('req-abc.123');
    const line = t.logs.find((l) => l.request_id === 'req-abc.123' && l.msg === 'request completed');
    expect(line).toMatchObject({ method: 'GET', route: '/v1/random', status: 200, level: 'info' });
    expect(typeof line?.duration_ms).toBe('number');
  });

  it('when only X-Correlation-ID is sent, then it is used', async () => {
    const response = await t.app.inject({ url: '/v1/random', headers: { 'x-correlation-id': 'corr-42' } });
    expect(response.headers['x-request-id']).toBe('corr-42');
  });

  it('when the incoming id is malformed, then a fresh UUID replaces it', async () => {
    const response = await t.app.inject({
      url: '/v1/random',
      headers: { 'x-request-id': 'bad id\twith "quotes"' },
    });
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const long = await t.app.inject({ url: '/v1/random', headers: { 'x-request-id': 'a'.repeat(129) } });
    expect(long.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('when no id is sent, then every answer still carries a distinct one', async () => {
    const [a, b] = await Promise.all([
      t.app.inject({ url: '/health/live' }),
      t.app.inject({ url: '/health/live' }),
    ]);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

describe('errors are problem+json', () => {
  it('when the route does not exist, then 404 names the path', async () => {
    const response = await t.app.inject({ url: '/v1/nothing-here?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({
      type: 'urn:reliability-api:problem:not-found',
      title: 'Not Found',
      status: 404,
      instance: '/v1/nothing-here',
      request_id: response.headers['x-request-id'],
    });
  });

  it('when the path exists for another method, then 405 lists the allowed methods in Allow', async () => {
    const response = await t.app.inject({ method: 'DELETE', url: '/v1/random/integers' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
    expect(response.headers['content-type']).toBe(PROBLEM);
  });

  it('when the body is larger than BODY_LIMIT_BYTES, then 413', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ blob: 'x'.repeat(t.config.BODY_LIMIT_BYTES) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().type).toBe('urn:reliability-api:problem:payload-too-large');
  });

  it('when the content type is not supported, then 415', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    expect(response.statusCode).toBe(415);
    expect(response.headers['content-type']).toBe(PROBLEM);
  });

  it('when the JSON body is malformed, then 400 and never 500', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":',
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
  });

  it('when a handler fails outside development, then 500 hides the internal message and logs it', async () => {
    const response = await t.app.inject({ url: '/test/boom' });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toContain('at ');
    expect(response.json()).toMatchObject({
      type: 'urn:reliability-api:problem:internal-error',
      status: 500,
    });
    expect(response.json().detail).toBeUndefined();
    const logged = t.logs.find(
      (l) => l.request_id === response.headers['x-request-id'] && l.level === 'error',
    );
    expect(logged?.msg).toBe('request failed');
  });
});

describe('security and CORS', () => {
  it('when an API answer is sent, then it carries the API security headers and none of the document ones', async () => {
    for (const url of ['/v1/random', '/v1/nope', '/v1/random?min=x']) {
      const response = await t.app.inject({ url });
      expect(response.headers).toMatchObject({
        'content-security-policy': "default-src 'none';frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'cross-origin-resource-policy': 'same-origin',
        'referrer-policy': 'no-referrer',
      });
      for (const header of ['x-xss-protection', 'x-dns-prefetch-control', 'origin-agent-cluster'])
        expect(response.headers[header], `${url} ${header}`).toBeUndefined();
    }
  });

  it('when the docs page is sent, then it carries helmet’s document headers, whose CSP lets it load its own assets', async () => {
    const response = await t.app.inject({ url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(response.headers['cross-origin-opener-policy']).toBe('same-origin');
  });

  it('when the origin is allowed, then CORS headers allow it; otherwise they do not', async () => {
    const allowed = await t.app.inject({ url: '/v1/random', headers: { origin: 'https://app.example' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    const denied = await t.app.inject({ url: '/v1/random', headers: { origin: 'https://evil.example' } });
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('when CORS_ALLOW_ORIGINS is empty (the default), then no origin is allowed', async () => {
    const other = await buildTestApp({}, { start: false });
    try {
      const response = await other.app.inject({
        url: '/v1/random',
        headers: { origin: 'https://app.example' },
      });
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await other.app.close();
    }
  });
});

describe('logs', () => {
  it('redact credentials wherever they are logged', async () => {
    t.app.log.info(
      {
        headers: { authorization: 'Bearer abc', cookie: 's=1', 'x-api-key': 'k' },
        password: 'p',
        user: { token: 't' },
      },
      'redaction probe',
    );
    const line = t.logs.find((l) => l.msg === 'redaction probe') as Record<string, Record<string, unknown>>;
    expect(line.headers).toEqual({
      authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'x-api-key': '[REDACTED]',
    });
    expect(line.password).toBe('[REDACTED]');
    expect(line.user).toEqual({ token: '[REDACTED]' });
  });

  it('write exactly one access line per request', async () => {
    const response = await t.app.inject({
      url: '/v1/random/uuids',
      headers: { authorization: 'Bearer secret-token' },
    });
    const lines = t.logs.filter((l) => l.request_id === response.headers['x-request-id']);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('secret-token');
  });
});

describe('trust proxy', () => {
  it('when TRUST_PROXY is off, then X-Forwarded-For is ignored; when on, then the client IP comes from it', async () => {
    const headers = { 'x-forwarded-for': '203.0.113.7' };
    const r1 = await t.app.inject({ url: '/v1/random', headers, remoteAddress: '10.0.0.1' });
    expect(t.logs.find((l) => l.request_id === r1.headers['x-request-id'])?.ip).toBe('10.0.0.1');
    const trusting = await buildTestApp({ TRUST_PROXY: '10.0.0.0/8' }, { start: false });
    try {
      const r2 = await trusting.app.inject({ url: '/v1/random', headers, remoteAddress: '10.0.0.1' });
      expect(trusting.logs.find((l) => l.request_id === r2.headers['x-request-id'])?.ip).toBe('203.0.113.7');
    } finally {
      await trusting.app.close();
    }
  });
});

describe('OpenAPI and docs', () => {
  it('serves an OpenAPI 3.1 document with every public route and its schemas', async () => {
    const response = await t.app.inject({ url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(doc.openapi).toBe('3.1.0');
    for (const path of [
      '/v1/random',
      '/v1/random/integers',
      '/v1/random/sequences',
      '/v1/random/decimals',
      '/v1/random/gaussians',
      '/v1/random/strings',
      '/v1/random/uuids',
      '/v1/random/bytes',
      '/health/live',
      '/health/ready',
      '/health/startup',
      '/version',
    ]) {
      expect(doc.paths[path]?.get, path).toBeDefined();
    }
    const params = doc.paths['/v1/random/integers'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(['min', 'max', 'count', 'unique', 'base']));
    expect(doc.components.schemas.Problem).toBeDefined();
  });

  it('serves interactive docs at /docs', async () => {
    const response = await t.app.inject({ url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.body).toContain('swagger');
  });
});
