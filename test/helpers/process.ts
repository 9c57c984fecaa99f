// Runs the built CLI as a real process, the way an operator or an orchestrator does.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLI = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A minimal environment: PATH and whatever the test sets, nothing inherited by accident. */
export function cleanEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', SETTINGS_SECRETS_DIR: '/nonexistent', ...env };
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  cwd?: string;
}

export function run(
  args: string[],
  env: Record<string, string>,
  command: string[] = [process.execPath, CLI],
  options: RunOptions = {},
): Running {
  const [bin, ...pre] = command;
  const child = spawn(bin!, [...pre, ...args], {
    env: cleanEnv(env),
    cwd: options.cwd,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/**
 * Runs a command to completion (bounded), returning its exit code and output. Asynchronous, unlike
 * spawnSync, so a test can keep probing a server while the command runs.
 */
export async function runToEnd(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
  options: RunOptions = {},
) {
  const running = run(args, env, undefined, options);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  const { code } = await running.exited;
  clearTimeout(timer);
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}

/** Polls until `url` answers with `status`, or throws after `timeoutMs`. */
export async function waitFor(url: string, status = 200, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === status) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
}

export function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
