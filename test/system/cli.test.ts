// The built CLI as a process: exit codes, migrations against the real PostgreSQL, serving, and the
// graceful shutdown plan under a real SIGTERM with a slow request in flight.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { closedPort, useTestDatabases } from '../helpers/services.js';
import { logLines, run, runToEnd, waitFor } from '../helpers/process.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cli-'));

describe('exit codes', () => {
  it('when the configuration is invalid, then it exits 2 with one line naming every bad setting', async () => {
    const { code, stderr } = await runToEnd(['serve'], { PORT: 'eighty', LOG_LEVEL: 'loud' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('PORT');
    expect(stderr).toContain('LOG_LEVEL');
  });

  it('when production is started with development defaults, then it refuses with exit 2', async () => {
    const { code, stderr } = await runToEnd(['serve'], { ENVIRONMENT: 'production' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/SECRET_KEY.*DATABASE_URL.*RATE_LIMIT_STORAGE_URI/);
  });

  it('when the command is unknown, then it exits 2 with usage', async () => {
    const { code, stderr } = await runToEnd(['frobnicate'], {});
    expect(code).toBe(2);
    expect(stderr).toContain('usage:');
  });

  it('when asked for help or the version, then it exits 0', async () => {
    expect((await runToEnd(['--help'], {})).code).toBe(0);
    const version = await runToEnd(['version'], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('when the port is taken, then serve exits non-zero with the reason', async () => {
    const blocker = await import('node:net').then((net) => net.createServer());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const { code, stderr } = await runToEnd(['serve'], {
        ENVIRONMENT: 'test',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: 'pglite://memory',
      });
      expect(code).toBe(1);
      expect(stderr).toContain('EADDRINUSE');
    } finally {
      blocker.close();
    }
  });
});

describe.skipIf(!inject('postgresAvailable'))('against PostgreSQL', () => {
  const { fresh } = useTestDatabases();

  it('migrate up, serve without migrating, migrate down --all leaves an empty public schema', async () => {
    const db = await fresh('cli');
    const env = { ENVIRONMENT: 'test', DATABASE_URL: db.url, LOG_LEVEL: 'warn' };

    const up = await runToEnd(['migrate', 'up'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('applied: 0001_users');
    const status = await runToEnd(['migrate', 'status'], env);
    expect(status.stdout).toMatch(/^applied {2}0001_users/m);

    const port = await closedPort();
    const server = run(['serve'], {
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      MIGRATE_ON_START: 'false',
      SHUTDOWN_DRAIN_SECONDS: '0',
    });
    try {
      await waitFor(`http://127.0.0.1:${port}/health/ready`);
      const answer = await fetch(`http://127.0.0.1:${port}/v1/random?min=1&max=6`);
      expect(answer.status).toBe(200);
      const { value } = (await answer.json()) as { value: number };
      expect(value >= 1 && value <= 6).toBe(true);
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    }

    const down = await runToEnd(['migrate', 'down', '--all'], env);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^reverted: 0003_idempotency_keys, 0002_identity, 0001_users$/m);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "select table_name from information_schema.tables where table_schema = 'public'",
      );
      expect(rows).toEqual([]);
    } finally {
      await client.end();
    }
    expect((await runToEnd(['migrate', 'status'], env)).stdout).toMatch(/^pending {2}0001_users/m);
  });

  it('when the database is unreachable, then migrate exits 1 with a one-line reason', async () => {
    const port = await closedPort();
    const { code, stderr } = await runToEnd(['migrate', 'up'], {
      ENVIRONMENT: 'test',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/none`,
    });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/ECONNREFUSED/);
  });
});

describe('graceful shutdown', { timeout: 90_000 }, () => {
  async function startServer(extra: Record<string, string> = {}) {
    const port = await closedPort();
    const base = `http://127.0.0.1:${port}`;
    const server = run(['serve'], {
      ENVIRONMENT: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: tmp(),
      FAULT_INJECTION_ENABLED: 'true',
      SHUTDOWN_DRAIN_SECONDS: '1',
      SHUTDOWN_TIMEOUT_SECONDS: '10',
      ...extra,
    });
    await waitFor(`${base}/health/ready`);
    return { server, base };
  }

  it('when SIGTERM arrives with a slow request in flight, then readiness fails, the request completes and the exit is 0', async () => {
    const { server, base } = await startServer();
    const slow = fetch(`${base}/v1/random?min=1&max=6`, { headers: { 'x-fault-delay-ms': '2500' } });
    await sleep(200);
    server.child.kill('SIGTERM');
    await sleep(200);

    // During the drain: not ready, yet still serving (the load balancer has not noticed yet).
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', reason: 'shutting down' });
    expect((await fetch(`${base}/v1/random`)).status).toBe(200);

    const response = await slow;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { value: number }).value).toBeGreaterThanOrEqual(1);

    const { code } = await server.exited;
    expect(code).toBe(0);
    const messages = logLines(server.stdout()).map((l) => l.msg);
    expect(messages).toEqual(
      expect.arrayContaining([
        'shutdown: draining',
        'shutdown: closing listener, waiting for in-flight requests',
        'shutdown: complete',
        'database closed',
      ]),
    );
  });

  it('when a second signal arrives during shutdown, then the process exits 1 at once', async () => {
    const { server } = await startServer({ SHUTDOWN_DRAIN_SECONDS: '30' });
    server.child.kill('SIGTERM');
    await sleep(300);
    server.child.kill('SIGINT');
    const { code } = await server.exited;
    expect(code).toBe(1);
  });

  const databases = useTestDatabases();
  // On PostgreSQL: a development server on the embedded database takes seconds to start, twice here.
  it.skipIf(!inject('postgresAvailable'))(
    'when Ctrl-C (SIGINT) stops a development server, then it skips the drain; SIGTERM still drains',
    async () => {
      const { url } = await databases.fresh('dev_shutdown');
      const development = { ENVIRONMENT: 'development', SHUTDOWN_DRAIN_SECONDS: '30', DATABASE_URL: url };
      const interrupted = await startServer(development);
      interrupted.server.child.kill('SIGINT');
      const { code } = await interrupted.server.exited;
      expect(code).toBe(0);
      const draining = logLines(interrupted.server.stdout()).find((l) => l.msg === 'shutdown: draining');
      expect(draining).toMatchObject({ reason: 'SIGINT', drain_seconds: 0 });

      const terminated = await startServer(development);
      terminated.server.child.kill('SIGTERM');
      await sleep(500);
      // Still draining: a load balancer's SIGTERM gets the drain whatever the environment.
      expect((await fetch(`${terminated.base}/health/ready`)).status).toBe(503);
      terminated.server.child.kill('SIGKILL');
      await terminated.server.exited;
      const line = logLines(terminated.server.stdout()).find((l) => l.msg === 'shutdown: draining');
      expect(line).toMatchObject({ reason: 'SIGTERM', drain_seconds: 30 });
    },
  );

  it('when in-flight requests outlast SHUTDOWN_TIMEOUT_SECONDS, then the process exits 1', async () => {
    const { server, base } = await startServer({
      SHUTDOWN_DRAIN_SECONDS: '0',
      SHUTDOWN_TIMEOUT_SECONDS: '1',
    });
    const stuck = fetch(`${base}/v1/random`, { headers: { 'x-fault-delay-ms': '20000' } }).catch(
      () => undefined,
    );
    await sleep(200);
    server.child.kill('SIGTERM');
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(logLines(server.stdout()).map((l) => l.msg)).toContain('shutdown: timed out, exiting');
    await stuck;
  });
});

describe('npm start', { timeout: 90_000 }, () => {
  it('when started with no database or Redis configured, then it serves the API on the embedded defaults', async () => {
    const port = await closedPort();
    const root = new URL('../..', import.meta.url).pathname;
    const server = run([], { PORT: String(port), DATA_DIR: tmp() }, [
      process.execPath,
      path.join(root, 'scripts/start.mjs'),
    ]);
    try {
      await waitFor(`http://127.0.0.1:${port}/v1/random?min=1&max=6`);
      const body = (await (await fetch(`http://127.0.0.1:${port}/v1/random?min=1&max=6`)).json()) as {
        value: number;
      };
      expect(body.value >= 1 && body.value <= 6).toBe(true);
      expect(logLines(server.stdout()).find((l) => l.msg === 'database opened')?.database).toMatch(
        /^pglite:/,
      );
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    }
  });
});
