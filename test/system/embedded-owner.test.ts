// The embedded database has one owner: the README's first ten minutes as a new user lives them (serve in
// one terminal, create-user in another), a second server on the same data directory, the operator's other
// commands while the server runs, and a lock left behind by a crashed server.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logLines, run, runToEnd, waitFor } from '../helpers/process.js';
import { startProbe } from '../helpers/probe.js';
import { closedPort } from '../helpers/services.js';

const PASSWORD = 'correct horse battery staple';

/** A new user's working directory: `./data` is the default DATA_DIR, resolved against it. */
const workdir = () => mkdtempSync(path.join(tmpdir(), 'embedded-'));

// The README's defaults (development, embedded database under ./data), on a free port, with a short drain.
const serverEnv = (port: number) => ({
  PORT: String(port),
  HOST: '127.0.0.1',
  SHUTDOWN_DRAIN_SECONDS: '1',
});

async function startServer(cwd: string) {
  const port = await closedPort();
  const base = `http://127.0.0.1:${port}`;
  const server = run(['serve'], serverEnv(port), undefined, { cwd });
  await waitFor(`${base}/health/ready`, 200, 60_000);
  return { server, base, port };
}

async function stop(server: ReturnType<typeof run>) {
  server.child.kill('SIGTERM');
  return server.exited;
}

const cli = (args: string[], cwd: string, input?: string) =>
  runToEnd(args, {}, 60_000, { cwd, ...(input === undefined ? {} : { input }) });

async function login(base: string, username: string) {
  return fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
    signal: AbortSignal.timeout(10_000),
  });
}

const IN_USE =
  /^reliability-api: the embedded database \.\/data is in use by reliability-api serve \(pid (\d+)\); stop it first/;

describe('one owner per embedded data directory', { timeout: 120_000 }, () => {
  it('when create-user runs in a second terminal while serve runs, then it goes through the server, the login works, probes never fail and SIGTERM exits 0', async () => {
    const cwd = workdir();
    const { server, base } = await startServer(cwd);
    const hint = logLines(server.stdout()).find((l) => String(l.msg).startsWith('no admin yet'));
    expect(hint?.msg).toContain('create-user --username admin --role admin');
    expect(hint?.docs).toMatch(/^http:\/\/localhost:\d+\/docs$/);

    const probe = startProbe(`${base}/health/live`, 50);
    const created = await cli(
      ['create-user', '--username', 'alice', '--role', 'admin'],
      cwd,
      `${PASSWORD}\n`,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created admin alice \([0-9a-f-]{36}\)/);

    const answer = await login(base, 'alice');
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { access_token: string }).access_token).toMatch(/^ey/);
    const report = await probe.stop();
    expect(report.failures).toEqual([]);
    expect(report.count).toBeGreaterThan(5);

    const { code } = await stop(server);
    expect(code).toBe(0);
    // A clean stop leaves neither the lock nor the socket behind.
    expect(existsSync(path.join(cwd, 'data', 'pglite.lock'))).toBe(false);
    expect(existsSync(path.join(cwd, 'data', 'pglite.sock'))).toBe(false);
  });

  it('when a second serve opens the same data directory, then it exits 1 naming the holder while the first keeps serving, and no user is lost', async () => {
    const cwd = workdir();
    // Created with no server running: the CLI opens the database itself, under the lock, and lets go.
    const created = await cli(['create-user', '--username', 'bob', '--role', 'user'], cwd, `${PASSWORD}\n`);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).not.toContain('through the running server');

    const first = await startServer(cwd);
    const secondPort = await closedPort();
    const second = await runToEnd(['serve'], serverEnv(secondPort), 60_000, { cwd });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toMatch(IN_USE);
    expect(Number(IN_USE.exec(second.stderr)![1])).toBe(first.server.child.pid);

    expect((await fetch(`${first.base}/health/live`)).status).toBe(200);
    expect((await login(first.base, 'bob')).status).toBe(200);
    expect((await stop(first.server)).code).toBe(0);

    const again = await startServer(cwd);
    expect((await login(again.base, 'bob')).status).toBe(200);
    expect((await stop(again.server)).code).toBe(0);
  });

  it('when the server runs, then migrate status and backup go through it, migrate up and restore refuse, and the backup restores into a new data directory', async () => {
    const cwd = workdir();
    const { server } = await startServer(cwd);
    const created = await cli(
      ['create-user', '--username', 'carol', '--role', 'admin'],
      cwd,
      `${PASSWORD}\n`,
    );
    expect(created.code, created.stderr).toBe(0);

    const status = await cli(['migrate', 'status'], cwd);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^applied {2}0001_users {2}\d{4}-/m);
    const up = await cli(['migrate', 'up'], cwd);
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(IN_USE);

    const file = path.join(cwd, 'backup.tar.gz');
    const backup = await cli(['backup', '--out', file], cwd);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(
      /^backup: .*backup\.tar\.gz \(\d+ bytes, sha256 [0-9a-f]{64}\) from pglite:\.\/data$/m,
    );
    expect(readFileSync(`${file}.sha256`, 'utf8')).toMatch(/^[0-9a-f]{64} {2}backup\.tar\.gz\n$/);
    const refused = await cli(['restore', '--in', file], cwd);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(IN_USE);
    expect((await stop(server)).code).toBe(0);

    const elsewhere = workdir();
    const restored = await cli(['restore', '--in', file], elsewhere);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^restored: .* into pglite:\.\/data$/m);
    const copy = await startServer(elsewhere);
    expect((await login(copy.base, 'carol')).status).toBe(200);
    expect((await stop(copy.server)).code).toBe(0);

    const notEmpty = await cli(['restore', '--in', file], elsewhere);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toMatch(/is not empty.*--force/);
    const forced = await cli(['restore', '--in', file, '--force'], elsewhere);
    expect(forced.code, forced.stderr).toBe(0);
    const aside = /the previous database is at (\S+)$/m.exec(forced.stdout)?.[1];
    expect(aside).toBeDefined();
    expect(existsSync(path.join(aside!, 'PG_VERSION'))).toBe(true);
  });

  it('when a server was killed and left its lock behind, then the next one takes it over with a warning and the data is intact', async () => {
    const cwd = workdir();
    const { server, base } = await startServer(cwd);
    const created = await cli(['create-user', '--username', 'dave', '--role', 'user'], cwd, `${PASSWORD}\n`);
    expect(created.code, created.stderr).toBe(0);
    expect((await login(base, 'dave')).status).toBe(200);
    server.child.kill('SIGKILL');
    await server.exited;
    expect(existsSync(path.join(cwd, 'data', 'pglite.lock'))).toBe(true);

    const next = await startServer(cwd);
    const warning = logLines(next.server.stdout()).find((l) => String(l.msg).includes('took over the lock'));
    expect(warning?.level).toBe('warn');
    expect(warning?.msg).toContain(`(pid ${server.child.pid})`);
    expect((await login(next.base, 'dave')).status).toBe(200);
    expect((await stop(next.server)).code).toBe(0);
  });
});
