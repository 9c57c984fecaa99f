// Identity and access, end to end through the real app: on the embedded default and on the real
// PostgreSQL + Redis. Every flow of the contract: login (JSON and OAuth2 form), refresh rotation and reuse
// detection, logout, password change, signup, user administration, API keys, RBAC and the audit log.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { App } from '../../src/app.js';
import { buildTestApp } from '../helpers/app.js';
import { PASSWORD, bearer, createUser, login, uniqueName } from '../helpers/identity.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

/** Polls /v1/auth/me for up to a second while it still answers 200; returns the last status. */
async function meStatusWithinASecond(app: App, token: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    const status = (await app.inject({ url: '/v1/auth/me', headers: bearer(token) })).statusCode;
    if (status !== 200 || performance.now() - started >= 1_000) return status;
    await sleep(20);
  }
}

const backends: [
  string,
  () => Promise<{ env: Record<string, string>; cleanup?: () => Promise<void> }>,
  boolean,
][] = [
  ['the embedded default', async () => ({ env: {} }), false],
  [
    'PostgreSQL and Redis',
    async () => {
      const db: TestDatabase = await createTestDatabase('identity');
      return { env: { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL }, cleanup: () => db.drop() };
    },
    !(inject('postgresAvailable') && inject('redisAvailable')),
  ],
];

describe.each(backends)('identity on %s', (_label, backend, skip) => {
  let app: App;
  let cleanup: (() => Promise<void>) | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (skip) return;
    ({ env, cleanup } = await backend());
    ({ app } = await buildTestApp({ ...env, ANONYMOUS_ACCESS: 'false', LOGIN_MAX_FAILURES: '50' }));
  });
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  describe.skipIf(skip)('login', () => {
    it('when the credentials are right (JSON), then it answers a token pair', async () => {
      const user = await createUser(app);
      const response = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: user.username, password: PASSWORD },
      });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json()).toEqual({
        access_token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: expect.stringMatching(/^[\w-]{43}$/),
        refresh_expires_in: 14 * 86_400,
      });
    });

    it('when an OAuth2 client posts the password grant form-encoded, then it works the same', async () => {
      const user = await createUser(app);
      const response = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=password&username=${encodeURIComponent(user.username)}&password=${encodeURIComponent(PASSWORD)}`,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json().token_type).toBe('Bearer');
    });

    it('when the password is wrong or the user does not exist, then both get the same 401 answer', async () => {
      const user = await createUser(app);
      const wrong = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: user.username, password: 'nope-nope-nope' },
      });
      const unknown = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: uniqueName('ghost'), password: 'nope-nope-nope' },
      });
      for (const response of [wrong, unknown]) {
        expect(response.statusCode).toBe(401);
        expect(response.headers['content-type']).toBe(PROBLEM);
        expect(response.headers['www-authenticate']).toBe('Bearer realm="reliability-api"');
      }
      const strip = (body: Record<string, unknown>) => ({ ...body, request_id: undefined });
      expect(strip(wrong.json())).toEqual(strip(unknown.json()));
    });

    it('when a disabled user logs in with the right password, then it is refused like a wrong password', async () => {
      const admin = await createUser(app, 'admin');
      const user = await createUser(app);
      const adminTokens = await login(app, admin.username);
      await app.inject({
        method: 'PATCH',
        url: `/v1/users/${user.id}`,
        headers: bearer(adminTokens.access_token),
        payload: { disabled: true },
      });
      const response = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: user.username, password: PASSWORD },
      });
      expect(response.statusCode).toBe(401);
    });
  });

  describe.skipIf(skip)('sessions', () => {
    it('when a refresh token is used, then a new pair comes back and the old refresh token is dead', async () => {
      const user = await createUser(app);
      const first = await login(app, user.username);
      const refreshed = await app.inject({
        method: 'POST',
        url: '/v1/auth/refresh',
        payload: { refresh_token: first.refresh_token },
      });
      expect(refreshed.statusCode).toBe(200);
      const second = refreshed.json();
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(
        (await app.inject({ url: '/v1/auth/me', headers: bearer(second.access_token) })).statusCode,
      ).toBe(200);
    });

    it('when a rotated refresh token is replayed, then the whole family is revoked, live access tokens included, and audited', async () => {
      const user = await createUser(app);
      const stolen = await login(app, user.username);
      const victim = (
        await app.inject({
          method: 'POST',
          url: '/v1/auth/refresh',
          payload: { refresh_token: stolen.refresh_token },
        })
      ).json();

      const replay = await app.inject({
        method: 'POST',
        url: '/v1/auth/refresh',
        payload: { refresh_token: stolen.refresh_token },
      });
      expect(replay.statusCode).toBe(401);
      expect(replay.json().detail).toMatch(/reuse/);

      expect(
        (await app.inject({ url: '/v1/auth/me', headers: bearer(victim.access_token) })).statusCode,
      ).toBe(401);
      const again = await app.inject({
        method: 'POST',
        url: '/v1/auth/refresh',
        payload: { refresh_token: victim.refresh_token },
      });
      expect(again.statusCode).toBe(401);

      const admin = await createUser(app, 'admin');
      const events = (
        await app.inject({
          url: '/v1/admin/audit?limit=200',
          headers: bearer((await login(app, admin.username)).access_token),
        })
      ).json();
      expect(
        events.data.some(
          (e: { event: string; subject_id: string }) =>
            e.event === 'refresh_reuse_detected' && e.subject_id === user.id,
        ),
      ).toBe(true);
    });

    it('when one refresh token is refreshed twice at once, then exactly one succeeds', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.username);
      const answers = await Promise.all(
        [1, 2].map(() =>
          app.inject({
            method: 'POST',
            url: '/v1/auth/refresh',
            payload: { refresh_token: tokens.refresh_token },
          }),
        ),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
    });

    it('when a session logs out, then its access and refresh tokens are refused', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.username);
      const other = await login(app, user.username);
      const out = await app.inject({
        method: 'POST',
        url: '/v1/auth/logout',
        headers: bearer(tokens.access_token),
        payload: {},
      });
      expect(out.statusCode).toBe(204);
      const me = await app.inject({ url: '/v1/auth/me', headers: bearer(tokens.access_token) });
      expect(me.statusCode).toBe(401);
      expect(me.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      expect(
        (
          await app.inject({
            method: 'POST',
            url: '/v1/auth/refresh',
            payload: { refresh_token: tokens.refresh_token },
          })
        ).statusCode,
      ).toBe(401);
      // Another session of the same user is untouched.
      expect((await app.inject({ url: '/v1/auth/me', headers: bearer(other.access_token) })).statusCode).toBe(
        200,
      );
    });

    it('when the password changes, then other sessions end, this one stays, and only the new password logs in', async () => {
      const user = await createUser(app);
      const current = await login(app, user.username);
      const other = await login(app, user.username);
      const headers = bearer(current.access_token);

      const wrong = await app.inject({
        method: 'PUT',
        url: '/v1/auth/password',
        headers,
        payload: { current_password: 'not-it-at-all', new_password: 'another long passphrase' },
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().errors[0].name).toBe('current_password');
      for (const bad of ['short', user.username]) {
        const refused = await app.inject({
          method: 'PUT',
          url: '/v1/auth/password',
          headers,
          payload: { current_password: PASSWORD, new_password: bad },
        });
        expect(refused.statusCode).toBe(400);
        expect(refused.json().errors[0].name).toBe('new_password');
      }

      const changed = await app.inject({
        method: 'PUT',
        url: '/v1/auth/password',
        headers,
        payload: { current_password: PASSWORD, new_password: 'another long passphrase' },
      });
      expect(changed.statusCode).toBe(204);
      expect((await app.inject({ url: '/v1/auth/me', headers })).statusCode).toBe(200);
      expect((await app.inject({ url: '/v1/auth/me', headers: bearer(other.access_token) })).statusCode).toBe(
        401,
      );
      await expect(login(app, user.username, PASSWORD)).rejects.toThrow(/401/);
      await login(app, user.username, 'another long passphrase');
    });

    it('GET /v1/auth/me answers the caller', async () => {
      const user = await createUser(app);
      const response = await app.inject({
        url: '/v1/auth/me',
        headers: bearer((await login(app, user.username)).access_token),
      });
      expect(response.json()).toEqual({
        id: user.id,
        username: user.username,
        role: 'user',
        created_at: expect.any(String),
      });
    });
  });

  describe.skipIf(skip)('signup', () => {
    it('when ALLOW_SIGNUP is off (the default), then register is 404', async () => {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { username: uniqueName('new'), password: PASSWORD },
      });
      expect(response.statusCode).toBe(404);
    });

    it('when ALLOW_SIGNUP is on, then register creates a user once and refuses a taken name', async () => {
      const open = await buildTestApp({ ...env, ALLOW_SIGNUP: 'true' });
      try {
        const username = uniqueName('Signup');
        const created = await open.app.inject({
          method: 'POST',
          url: '/v1/auth/register',
          payload: { username, password: PASSWORD },
        });
        expect(created.statusCode).toBe(201);
        expect(created.json()).toMatchObject({ username, role: 'user', disabled: false });
        const taken = await open.app.inject({
          method: 'POST',
          url: '/v1/auth/register',
          payload: { username: username.toLowerCase(), password: PASSWORD },
        });
        expect(taken.statusCode).toBe(409);
      } finally {
        await open.app.close();
      }
    });
  });

  describe.skipIf(skip)('users (admin)', () => {
    it('when a non-admin calls an admin route, then 403 insufficient_scope; without credentials 401', async () => {
      const user = await createUser(app);
      const forbidden = await app.inject({
        url: '/v1/users',
        headers: bearer((await login(app, user.username)).access_token),
      });
      expect(forbidden.statusCode).toBe(403);
      expect(forbidden.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
      expect((await app.inject({ url: '/v1/users' })).statusCode).toBe(401);
    });

    it('creates users, pages through them with a cursor, and reads one', async () => {
      const admin = await createUser(app, 'admin');
      const headers = bearer((await login(app, admin.username)).access_token);
      const username = uniqueName('made');
      const created = await app.inject({
        method: 'POST',
        url: '/v1/users',
        headers,
        payload: { username, password: PASSWORD, role: 'user' },
      });
      expect(created.statusCode).toBe(201);
      const duplicate = await app.inject({
        method: 'POST',
        url: '/v1/users',
        headers,
        payload: { username: username.toUpperCase(), password: PASSWORD },
      });
      expect(duplicate.statusCode).toBe(409);

      const seen: string[] = [];
      let cursor: string | null = null;
      let page: { data: { id: string }[]; next_cursor: string | null };
      do {
        page = (
          await app.inject({ url: `/v1/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers })
        ).json();
        expect(page.data.length).toBeLessThanOrEqual(2);
        seen.push(...page.data.map((u) => u.id));
        cursor = page.next_cursor;
      } while (cursor !== null);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toContain(created.json().id);

      expect((await app.inject({ url: '/v1/users?cursor=garbage', headers })).statusCode).toBe(400);
      expect((await app.inject({ url: `/v1/users/${created.json().id}`, headers })).json().username).toBe(
        username,
      );
    });

    it('lets a user read themself but not another user', async () => {
      const a = await createUser(app);
      const b = await createUser(app);
      const headers = bearer((await login(app, a.username)).access_token);
      expect((await app.inject({ url: `/v1/users/${a.id}`, headers })).statusCode).toBe(200);
      expect((await app.inject({ url: `/v1/users/${b.id}`, headers })).statusCode).toBe(403);
    });

    it('when a user is disabled, then their sessions and API keys stop working at once', async () => {
      const admin = await createUser(app, 'admin');
      const adminHeaders = bearer((await login(app, admin.username)).access_token);
      const user = await createUser(app);
      const tokens = await login(app, user.username);
      const key = (
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: bearer(tokens.access_token),
          payload: { name: 'k', scopes: ['random:read'] },
        })
      ).json();
      expect((await app.inject({ url: '/v1/random', headers: { 'x-api-key': key.key } })).statusCode).toBe(
        200,
      );

      const patched = await app.inject({
        method: 'PATCH',
        url: `/v1/users/${user.id}`,
        headers: adminHeaders,
        payload: { disabled: true },
      });
      expect(patched.json()).toMatchObject({ disabled: true });
      expect(
        (await app.inject({ url: '/v1/auth/me', headers: bearer(tokens.access_token) })).statusCode,
      ).toBe(401);
      expect((await app.inject({ url: '/v1/random', headers: { 'x-api-key': key.key } })).statusCode).toBe(
        401,
      );
      expect(
        (
          await app.inject({
            method: 'POST',
            url: '/v1/auth/refresh',
            payload: { refresh_token: tokens.refresh_token },
          })
        ).statusCode,
      ).toBe(401);
    });

    it('when a role changes, then the old tokens (which carry the role) stop working', async () => {
      const admin = await createUser(app, 'admin');
      const adminHeaders = bearer((await login(app, admin.username)).access_token);
      const user = await createUser(app);
      const tokens = await login(app, user.username);
      const promoted = await app.inject({
        method: 'PATCH',
        url: `/v1/users/${user.id}`,
        headers: adminHeaders,
        payload: { role: 'admin' },
      });
      expect(promoted.json().role).toBe('admin');
      expect(
        (await app.inject({ url: '/v1/auth/me', headers: bearer(tokens.access_token) })).statusCode,
      ).toBe(401);
      const fresh = await login(app, user.username);
      expect((await app.inject({ url: '/v1/users', headers: bearer(fresh.access_token) })).statusCode).toBe(
        200,
      );
    });

    it('refuses an admin disabling their own account', async () => {
      const admin = await createUser(app, 'admin');
      const headers = bearer((await login(app, admin.username)).access_token);
      expect(
        (
          await app.inject({
            method: 'PATCH',
            url: `/v1/users/${admin.id}`,
            headers,
            payload: { disabled: true },
          })
        ).statusCode,
      ).toBe(409);
    });
  });

  describe.skipIf(skip)('API keys', () => {
    it('shows the key once, lists without the secret, authenticates with Bearer and X-API-Key, and revokes at once', async () => {
      const user = await createUser(app);
      const headers = bearer((await login(app, user.username)).access_token);
      const created = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers,
        payload: { name: 'ci', scopes: ['random:read'] },
      });
      expect(created.statusCode).toBe(201);
      const key = created.json();
      expect(key.key).toMatch(/^rak_[0-9a-f]{8}_[\w-]{43}$/);
      expect(key.key.startsWith(key.prefix)).toBe(true);

      const listed = (await app.inject({ url: '/v1/api-keys', headers })).json();
      expect(listed.data).toHaveLength(1);
      expect(JSON.stringify(listed)).not.toContain(key.key);

      expect((await app.inject({ url: '/v1/random', headers: bearer(key.key) })).statusCode).toBe(200);
      expect((await app.inject({ url: '/v1/random', headers: { 'x-api-key': key.key } })).statusCode).toBe(
        200,
      );
      // A key is not a session: it cannot manage keys or change passwords.
      expect((await app.inject({ url: '/v1/api-keys', headers: { 'x-api-key': key.key } })).statusCode).toBe(
        403,
      );

      expect(
        (await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers })).statusCode,
      ).toBe(204);
      const refused = await app.inject({ url: '/v1/random', headers: { 'x-api-key': key.key } });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['www-authenticate']).toMatch(/invalid_token/);
    });

    it('never grants more than the owner holds, and hides other users keys', async () => {
      const user = await createUser(app);
      const headers = bearer((await login(app, user.username)).access_token);
      const escalate = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers,
        payload: { name: 'x', scopes: ['admin'] },
      });
      expect(escalate.statusCode).toBe(403);
      const unknownScope = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers,
        payload: { name: 'x', scopes: ['root'] },
      });
      expect(unknownScope.statusCode).toBe(400);
      const past = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers,
        payload: { name: 'x', scopes: ['random:read'], expires_at: '2001-01-01T00:00:00Z' },
      });
      expect(past.statusCode).toBe(400);

      const other = await createUser(app);
      const otherKey = (
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: bearer((await login(app, other.username)).access_token),
          payload: { name: 'o', scopes: ['random:read'] },
        })
      ).json();
      expect(
        (await app.inject({ method: 'DELETE', url: `/v1/api-keys/${otherKey.id}`, headers })).statusCode,
      ).toBe(404);
    });

    it('lets an admin key reach admin routes, and a random:read key only random', async () => {
      const admin = await createUser(app, 'admin');
      const headers = bearer((await login(app, admin.username)).access_token);
      const adminKey = (
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers,
          payload: { name: 'ops', scopes: ['admin', 'random:read'] },
        })
      ).json();
      const readKey = (
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers,
          payload: { name: 'read', scopes: ['random:read'] },
        })
      ).json();
      expect(
        (await app.inject({ url: '/v1/admin/audit', headers: { 'x-api-key': adminKey.key } })).statusCode,
      ).toBe(200);
      const denied = await app.inject({ url: '/v1/admin/audit', headers: { 'x-api-key': readKey.key } });
      expect(denied.statusCode).toBe(403);
      expect(denied.headers['www-authenticate']).toMatch(/insufficient_scope/);
    });
  });

  describe.skipIf(skip)('random endpoints when anonymous access is off', () => {
    it('answer 401 without credentials, 401 invalid_token with bad ones, 200 with a user token', async () => {
      const none = await app.inject({ url: '/v1/random/uuids' });
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="reliability-api"');
      const bad = await app.inject({ url: '/v1/random/uuids', headers: bearer('not.a.token') });
      expect(bad.statusCode).toBe(401);
      expect(bad.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      expect(
        (await app.inject({ url: '/v1/random/uuids', headers: { authorization: 'Basic abc' } })).statusCode,
      ).toBe(401);
      const user = await createUser(app);
      expect(
        (
          await app.inject({
            url: '/v1/random/uuids',
            headers: bearer((await login(app, user.username)).access_token),
          })
        ).statusCode,
      ).toBe(200);
    });

    it('probes and docs never need credentials', async () => {
      for (const url of ['/health/live', '/health/ready', '/openapi.json', '/metrics']) {
        expect((await app.inject({ url })).statusCode, url).toBe(200);
      }
    });
  });

  describe.skipIf(skip)('audit log', () => {
    it('records who did what, from where, with the request id, newest first and paged', async () => {
      const admin = await createUser(app, 'admin');
      await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: admin.username, password: 'wrong-wrong-wrong' },
        headers: { 'user-agent': 'audit-test', 'x-request-id': 'audit-req-1' },
      });
      const headers = bearer((await login(app, admin.username)).access_token);
      const first = (await app.inject({ url: '/v1/admin/audit?limit=2', headers })).json();
      expect(first.data).toHaveLength(2);
      expect(Number(first.data[0].id)).toBeGreaterThan(Number(first.data[1].id));
      const all = (await app.inject({ url: '/v1/admin/audit?limit=200', headers })).json().data as Record<
        string,
        unknown
      >[];
      expect(all).toContainEqual(
        expect.objectContaining({
          event: 'login_failed',
          subject_id: admin.id,
          user_agent: 'audit-test',
          request_id: 'audit-req-1',
          ip: '127.0.0.1',
        }),
      );
      const next = (
        await app.inject({ url: `/v1/admin/audit?limit=2&cursor=${first.next_cursor}`, headers })
      ).json();
      expect(Number(next.data[0].id)).toBeLessThan(Number(first.data[1].id));
    });
  });
});

describe('failed-login limits', () => {
  it('when a username fails too often from one IP, then 429 with Retry-After, even for the right password', async () => {
    const { app } = await buildTestApp({ LOGIN_MAX_FAILURES: '3', LOGIN_FAILURE_WINDOW_SECONDS: '600' });
    try {
      const user = await createUser(app);
      for (let i = 0; i < 3; i++) {
        const r = await app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { username: user.username, password: 'wrong-wrong-wrong' },
          remoteAddress: '198.51.100.9',
        });
        expect(r.statusCode).toBe(401);
      }
      const blocked = await app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: user.username, password: PASSWORD },
        remoteAddress: '198.51.100.9',
      });
      expect(blocked.statusCode).toBe(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      // Another client IP is not punished for this one's guesses.
      await login(app, user.username, PASSWORD, '198.51.100.10');
    } finally {
      await app.close();
    }
  });

  describe.skipIf(!(inject('postgresAvailable') && inject('redisAvailable')))('across replicas', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase('replicas');
    });
    afterAll(async () => {
      await db.drop();
    });

    it('counts failures from every replica through Redis; a logout or a refresh reuse on one replica is refused by the other within a second', async () => {
      const env = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, LOGIN_MAX_FAILURES: '2' };
      const a = await buildTestApp(env);
      const b = await buildTestApp(env);
      try {
        const user = await createUser(a.app);
        const ip = `203.0.113.${Math.floor(Math.random() * 250)}`; // eslint-disable-line no-restricted-properties
        for (const replica of [a.app, b.app]) {
          await replica.inject({
            method: 'POST',
            url: '/v1/auth/login',
            payload: { username: user.username, password: 'wrong-wrong-wrong' },
            remoteAddress: ip,
          });
        }
        const blocked = await a.app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { username: user.username, password: PASSWORD },
          remoteAddress: ip,
        });
        expect(blocked.statusCode).toBe(429);

        const tokens = await login(b.app, user.username, PASSWORD, '192.0.2.77');
        expect(
          (await a.app.inject({ url: '/v1/auth/me', headers: bearer(tokens.access_token) })).statusCode,
        ).toBe(200);
        expect(
          (
            await a.app.inject({
              method: 'POST',
              url: '/v1/auth/logout',
              headers: bearer(tokens.access_token),
            })
          ).statusCode,
        ).toBe(204);
        expect(await meStatusWithinASecond(b.app, tokens.access_token)).toBe(401);

        // A refresh token replayed on one replica kills the family on the other at once.
        const stolen = await login(a.app, user.username, PASSWORD, '192.0.2.78');
        const rotated = (
          await b.app.inject({
            method: 'POST',
            url: '/v1/auth/refresh',
            payload: { refresh_token: stolen.refresh_token },
          })
        ).json();
        expect(
          (await b.app.inject({ url: '/v1/auth/me', headers: bearer(rotated.access_token) })).statusCode,
        ).toBe(200);
        const replay = await a.app.inject({
          method: 'POST',
          url: '/v1/auth/refresh',
          payload: { refresh_token: stolen.refresh_token },
        });
        expect(replay.statusCode).toBe(401);
        expect(await meStatusWithinASecond(b.app, rotated.access_token)).toBe(401);
      } finally {
        await a.app.close();
        await b.app.close();
      }
    });
  });
});
