// The generated TypeScript client (clients/typescript) against the real server over HTTP: it is what the
// document generates today, and a user's first session works through it, typed errors included.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Problem } from '../../clients/typescript/index.js';
import { useTestApp } from '../helpers/app.js';
import { PASSWORD, createUser } from '../helpers/identity.js';

const root = new URL('../..', import.meta.url).pathname;

describe('clients/typescript', () => {
  it('is what openapi-typescript generates from docs/openapi.json (`npm run openapi` writes both)', async () => {
    const { stdout } = await promisify(execFile)('npx', ['openapi-typescript', 'docs/openapi.json'], {
      cwd: root,
      maxBuffer: 32 * 1024 * 1024,
    });
    expect(stdout).toBe(readFileSync(`${root}/clients/typescript/schema.d.ts`, 'utf8'));
  }, 60_000);
});

describe('a first session through the typed client', () => {
  const t = useTestApp({ ANONYMOUS_ACCESS: 'false' });
  let base: string;
  let username: string;
  beforeAll(async () => {
    ({ username } = await createUser(t.app, 'user'));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });

  it('logs in, draws, creates an API key and draws with it, and gets a typed problem for bad input', async () => {
    const anonymous = createClient(base);
    const login = await anonymous.POST('/v1/auth/login', { body: { username, password: PASSWORD } });
    expect(login.response.status).toBe(200);
    const token = login.data!.access_token;

    const user = createClient(base, token);
    const draw = await user.GET('/v1/random/integers', {
      params: { query: { min: 1, max: 49, count: 6, unique: true } },
    });
    expect(draw.response.status).toBe(200);
    const values = draw.data!.data as number[];
    expect(values).toHaveLength(6);
    expect(new Set(values).size).toBe(6);
    expect(values.every((v) => v >= 1 && v <= 49)).toBe(true);

    const created = await user.POST('/v1/api-keys', {
      body: { name: 'first key', scopes: ['random:read'] },
      params: { header: { 'idempotency-key': randomUUID() } },
    });
    expect(created.response.status).toBe(201);
    const withKey = createClient(base, created.data!.key);
    const one = await withKey.GET('/v1/random', { params: { query: { min: 1, max: 6 } } });
    expect(one.data).toMatchObject({ min: 1, max: 6 });

    const bad = await withKey.GET('/v1/random/integers', { params: { query: { min: 10, max: 1 } } });
    expect(bad.response.status).toBe(400);
    expect(bad.response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    const problem: Problem | undefined = bad.error;
    expect(problem?.type).toBe('urn:reliability-api:problem:validation-error');
    expect(problem?.errors?.map((e) => e.name)).toEqual(expect.arrayContaining(['min']));

    const refused = await anonymous.GET('/v1/random');
    expect(refused.response.status).toBe(401);
    expect(refused.error?.status).toBe(401);
  });
});
