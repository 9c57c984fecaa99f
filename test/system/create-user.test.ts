// `create-user` as an operator runs it: the password piped on stdin, never on the command line.
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI, cleanEnv, runToEnd } from '../helpers/process.js';
import { createTestDatabase, type TestDatabase } from '../helpers/services.js';

const createUser = (args: string[], env: Record<string, string>, input: string) =>
  spawnSync(process.execPath, [CLI, 'create-user', ...args], {
    env: cleanEnv(env),
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });

describe.skipIf(!inject('postgresAvailable'))('create-user', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase('create_user');
    env = { ENVIRONMENT: 'test', DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
    expect((await runToEnd(['migrate', 'up'], env)).code).toBe(0);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('when the password comes on stdin, then the user is created with an argon2id hash and an audit event', async () => {
    const result = createUser(
      ['--username', 'ops-admin', '--role', 'admin'],
      env,
      'a long enough password\n',
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^created admin ops-admin \(/);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ role: string; password_hash: string }>(
        'select role, password_hash from users where username = $1',
        ['ops-admin'],
      );
      expect(rows[0]?.role).toBe('admin');
      expect(rows[0]?.password_hash).toMatch(/^\$argon2id\$/);
      const audit = await client.query(
        "select count(*)::int as n from audit_events where event = 'user_created'",
      );
      expect(audit.rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('when the username is taken or the password too short, then it exits 1 with the reason', () => {
    const taken = createUser(['--username', 'OPS-ADMIN'], env, 'another long password\n');
    expect(taken.status).toBe(1);
    expect(taken.stderr).toMatch(/taken/);
    const short = createUser(['--username', 'someone'], env, 'short\n');
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/at least 12/);
  });

  it('when a password is offered on the command line, then it is refused as bad usage', () => {
    const result = createUser(['--username', 'x-user', '--password', 'secret-on-argv'], env, '');
    expect(result.status).toBe(2);
  });
});
