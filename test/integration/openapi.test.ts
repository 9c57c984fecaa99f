// The OpenAPI document as the tools that read it see it: the committed docs/openapi.json is what the server
// serves (so API changes show in review), Redocly's recommended rules pass, every operation says which
// credentials it takes and has a stable operationId, and parameters with defaults are optional to callers.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  OPENAPI_DOCUMENT_ENV,
  errorResponses,
  operationIdOf,
  securityOf,
} from '../../src/plugins/openapi.js';
import { useTestApp } from '../helpers/app.js';

const committed = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
type Operation = {
  operationId?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean }[];
};
const operations = (doc: { paths: Record<string, Record<string, Operation>> }) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method, op })),
  );

describe('docs/openapi.json', () => {
  const t = useTestApp({ ...OPENAPI_DOCUMENT_ENV, DATABASE_URL: 'pglite://memory' }, { start: false });

  it('is what the server serves (run `npm run openapi` after changing a route)', async () => {
    const served = (await t.app.inject({ url: '/openapi.json' })).json();
    expect(served).toEqual(committed);
  });

  it("passes Redocly's recommended rules with no error and no warning", async () => {
    const { stdout, stderr } = await promisify(execFile)(
      'npx',
      ['redocly', 'lint', 'docs/openapi.json', '--format=summary'],
      {
        cwd: new URL('../..', import.meta.url).pathname,
        env: { ...process.env, NO_COLOR: '1', REDOCLY_TELEMETRY: 'off' },
      },
    ).catch((error: { stdout: string; stderr: string }) => error);
    const output = `${stdout}\n${stderr}`;
    expect(output, output).toContain('Your API description is valid');
    expect(output).not.toMatch(/^(error|warning)\s/m);
  }, 60_000);

  it('gives every operation a unique operationId and a security requirement', () => {
    const ops = operations(committed);
    expect(ops.length).toBeGreaterThan(30);
    const ids = ops.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of ops) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z0-9]*$/);
      expect(Array.isArray(op.security), `${method} ${path}`).toBe(true);
    }
    const security = (path: string, method = 'get') => committed.paths[path][method].security;
    expect(security('/health/ready')).toEqual([]);
    expect(security('/v1/users')).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(security('/v1/auth/password', 'put')).toEqual([{ bearer: [] }]);
    expect(security('/v1/random')).toEqual([{}, { bearer: [] }, { apiKey: [] }]);
    expect(Object.keys(committed.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
  });

  it('documents the error answers each operation can give, all problem+json, with their headers', () => {
    const responses = (path: string, method = 'get') => committed.paths[path][method].responses;
    const patchUser = responses('/v1/users/{id}', 'patch');
    for (const status of ['400', '401', '403', '404', '413', '415', '429', '503', '4XX', '5XX']) {
      expect(Object.keys(patchUser[status].content), status).toEqual(['application/problem+json']);
      expect(patchUser[status].content['application/problem+json'].schema.$ref).toBe(
        '#/components/schemas/Problem',
      );
    }
    expect(Object.keys(patchUser['429'].headers).sort()).toEqual([
      'ratelimit',
      'ratelimit-policy',
      'retry-after',
    ]);
    expect(Object.keys(patchUser['503'].headers)).toEqual(['retry-after']);
    expect(Object.keys(patchUser['401'].headers)).toEqual(['www-authenticate']);
    const createKey = responses('/v1/api-keys', 'post');
    expect(createKey).toHaveProperty('409');
    expect(createKey).toHaveProperty('422');
    const random = responses('/v1/random');
    expect(random).not.toHaveProperty('404');
    expect(random).not.toHaveProperty('413');
    expect(responses('/health/ready')).not.toHaveProperty('429');
  });

  it('marks query parameters that have a default as optional, and the server still applies the default', async () => {
    const params = committed.paths['/v1/random/integers'].get.parameters as Operation['parameters'];
    expect(params!.filter((p) => p.in === 'query' && p.required === true)).toEqual([]);
    const answer = (await t.app.inject({ url: '/v1/random/integers' })).json();
    expect(answer).toMatchObject({ min: 1, count: 1, unique: false, base: 10 });
  });
});

describe('operationIdOf and securityOf', () => {
  it('names an operation after its method and path, without the version prefix', () => {
    expect(operationIdOf('GET', '/v1/random/integers')).toBe('getRandomIntegers');
    expect(operationIdOf('PATCH', '/v1/users/:id')).toBe('patchUsersById');
    expect(operationIdOf('GET', '/.well-known/jwks.json')).toBe('getWellKnownJwksJson');
    expect(operationIdOf('POST', '/v1/admin/breakers/{name}/open')).toBe('postAdminBreakersByNameOpen');
  });

  it('states exactly the credentials a route rule accepts', () => {
    expect(securityOf(undefined)).toEqual([]);
    expect(securityOf({ scope: 'admin' })).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(securityOf({ session: true })).toEqual([{ bearer: [] }]);
    expect(securityOf({ scope: 'random:read', anonymous: true })).toEqual([
      {},
      { bearer: [] },
      { apiKey: [] },
    ]);
  });

  it('derives no error answers for a route that takes nothing and is not limited', () => {
    expect(errorResponses({ url: '/health/live', schema: {}, config: { operational: true } })).toEqual({});
  });
});
