// The stall guard on a real process: an injected event-loop stall longer than the guard ends the process
// with its one line on stderr, a shorter one does not, and a SIGTERM during a stall still ends it within
// the shutdown timeout.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { logLines, run, waitFor } from '../helpers/process.js';
import { closedPort } from '../helpers/services.js';

async function startServer(env: Record<string, string>) {
  const port = await closedPort();
  const base = `http://127.0.0.1:${port}`;
  const server = run(['serve'], {
    ENVIRONMENT: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: 'pglite://memory',
    FAULT_INJECTION_ENABLED: 'true',
    SEED_DEMO_USER: 'true',
    SHUTDOWN_DRAIN_SECONDS: '1',
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    ...env,
  });
  await waitFor(`${base}/health/ready`, 200, 60_000);
  const seeded = logLines(server.stdout()).find((l) => l.demo_password !== undefined)!;
  const login = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: seeded.demo_username, password: seeded.demo_password }),
  });
  const { access_token: token } = (await login.json()) as { access_token: string };
  return { server, base, token };
}

async function stall(base: string, token: string, seconds: number): Promise<number> {
  const answer = await fetch(`${base}/v1/admin/faults/stall?seconds=${seconds}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(answer.status).toBe(202);
  expect(await answer.json()).toEqual({ stall_seconds: seconds });
  return performance.now();
}

const stallLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.level === 'fatal');

describe('stall guard', { timeout: 90_000 }, () => {
  it('when the event loop stalls for the guard + 5 s, then the process is killed within the guard + 2 s with one line on stderr', async () => {
    const guard = 2;
    const { server, base, token } = await startServer({ EVENT_LOOP_STALL_EXIT_SECONDS: String(guard) });
    const stalledAt = await stall(base, token, guard + 5);
    const { code, signal } = await server.exited;
    const afterMs = performance.now() - stalledAt;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(afterMs).toBeGreaterThanOrEqual(guard * 1000);
    expect(afterMs).toBeLessThan((guard + 2) * 1000);
    const lines = stallLines(server.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      pid: server.child.pid,
      limit_seconds: guard,
      service: 'reliability-api',
    });
    expect(lines[0]!.stalled_seconds as number).toBeGreaterThanOrEqual(guard);
    expect(String(lines[0]!.msg)).toContain('event loop stalled');
    process.stdout.write(
      `stall guard ${guard} s, stall ${guard + 5} s: killed after ${Math.round(afterMs)} ms\n`,
    );
  });

  it('when a stall is shorter than the guard, then the process lives on and answers', async () => {
    const { server, base, token } = await startServer({ EVENT_LOOP_STALL_EXIT_SECONDS: '3' });
    try {
      const stalledAt = await stall(base, token, 2.5);
      await sleep(200);
      const live = await fetch(`${base}/health/live`);
      expect(live.status).toBe(200);
      // The probe waited for the stall to end.
      expect(performance.now() - stalledAt).toBeGreaterThanOrEqual(2400);
      await sleep(3_000);
      expect(server.child.exitCode).toBeNull();
      expect(stallLines(server.stderr())).toEqual([]);
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    }
  });

  it('when SIGTERM arrives during a stall, then the process ends within the shutdown timeout', async () => {
    const timeout = 5;
    const { server, base, token } = await startServer({
      EVENT_LOOP_STALL_EXIT_SECONDS: '3',
      SHUTDOWN_TIMEOUT_SECONDS: String(timeout),
    });
    await stall(base, token, 60);
    await sleep(500);
    const signalledAt = performance.now();
    server.child.kill('SIGTERM');
    const { signal } = await server.exited;
    const afterMs = performance.now() - signalledAt;
    expect(signal).toBe('SIGKILL');
    expect(afterMs).toBeLessThan(timeout * 1000);
    expect(stallLines(server.stderr())).toHaveLength(1);
    process.stdout.write(`SIGTERM during a stall (guard 3 s): ended after ${Math.round(afterMs)} ms\n`);
  });

  it('when the event loop stalls during shutdown, then the guard still ends the process', async () => {
    const { server, base, token } = await startServer({ EVENT_LOOP_STALL_EXIT_SECONDS: '3' });
    const stalledAt = await stall(base, token, 60);
    server.child.kill('SIGTERM');
    const { signal } = await server.exited;
    expect(signal).toBe('SIGKILL');
    expect(performance.now() - stalledAt).toBeLessThan(5_000);
  });
});
