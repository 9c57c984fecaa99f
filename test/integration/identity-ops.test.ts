// Identity operations: the demo admin seed, pruning of dead sessions, and the environment defaults.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { buildTestApp } from '../helpers/app.js';
import { createUser, login } from '../helpers/identity.js';

describe('SEED_DEMO_USER', () => {
  it('when on in development, then a demo admin is created and its password logged once, and it can log in', async () => {
    const t = await buildTestApp(
      { ENVIRONMENT: 'development', SEED_DEMO_USER: 'true' },
      { ownDatabase: true },
    );
    try {
      const line = t.logs.find((l) => l.msg === 'demo admin created; this password is shown once');
      expect(line?.demo_username).toBe('demo-admin');
      const tokens = await login(t.app, 'demo-admin', line?.demo_password as string);
      expect(
        (
          await t.app.inject({
            url: '/v1/users',
            headers: { authorization: `Bearer ${tokens.access_token}` },
          })
        ).statusCode,
      ).toBe(200);
    } finally {
      await t.app.close();
    }
  });

  it('is refused in staging and production', () => {
    const production = {
      ENVIRONMENT: 'production',
      SECRET_KEY: 'x'.repeat(40),
      DATABASE_URL: 'postgres://db/app',
      RATE_LIMIT_STORAGE_URI: 'redis://r:6379',
    };
    expect(() => loadConfig({ ...production, SEED_DEMO_USER: 'true' }, { cwd: '/nonexistent' })).toThrow(
      /SEED_DEMO_USER/,
    );
  });
});

describe('ANONYMOUS_ACCESS', () => {
  it('defaults to on in development and test, off in staging and production', () => {
    const cwd = { cwd: '/nonexistent' };
    expect(loadConfig({ ENVIRONMENT: 'test' }, cwd).ANONYMOUS_ACCESS).toBe(true);
    const production = {
      ENVIRONMENT: 'production',
      SECRET_KEY: 'x'.repeat(40),
      DATABASE_URL: 'postgres://db/app',
      RATE_LIMIT_STORAGE_URI: 'redis://r:6379',
    };
    expect(loadConfig(production, cwd).ANONYMOUS_ACCESS).toBe(false);
  });
});

describe('pruning', () => {
  it('deletes expired refresh tokens and long-dead sessions, and keeps live ones', async () => {
    const { app } = await buildTestApp({}, { ownDatabase: true });
    try {
      const user = await createUser(app);
      await login(app, user.username);
      await login(app, user.username);
      const db = app.database.db;
      const [dead] = await db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', user.id)
        .limit(1)
        .execute();
      await sql`update sessions set expires_at = now() - interval '1 day' where id = ${dead!.id}`.execute(db);
      await sql`update refresh_tokens set expires_at = now() - interval '1 day' where session_id = ${dead!.id}`.execute(
        db,
      );

      await app.pruneIdentity();

      const left = await db.selectFrom('sessions').select('id').where('user_id', '=', user.id).execute();
      expect(left.map((s) => s.id)).not.toContain(dead!.id);
      expect(left).toHaveLength(1);
      const tokens = await db.selectFrom('refresh_tokens').select('session_id').execute();
      expect(tokens.map((t) => t.session_id)).not.toContain(dead!.id);
    } finally {
      await app.close();
    }
  });
});

describe('password hashing bulkhead', () => {
  it('when more sign-ins arrive than the bulkhead holds, then the excess gets 503 with Retry-After at once', async () => {
    const { app } = await buildTestApp({ PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '1' });
    try {
      const user = await createUser(app);
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          app.inject({
            method: 'POST',
            url: '/v1/auth/login',
            payload: { username: user.username, password: 'correct horse battery staple' },
          }),
        ),
      );
      const codes = answers.map((a) => a.statusCode).sort();
      expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(2); // one running, one queued
      const busy = answers.filter((a) => a.statusCode === 503);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy[0]!.headers['retry-after']).toBe('1');
    } finally {
      await app.close();
    }
  });
});
