// Child processes of the rig, each registered so that one cleanup (on success, on error, on Ctrl-C)
// stops all of them and removes what they made: nothing outlives a run.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];

/** Registers `fn` to run at cleanup, in reverse order of registration. */
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** Runs every registered cleanup once, last registered first; errors are reported, not thrown. */
export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (error) {
      process.stderr.write(`cleanup: ${(error as Error).message}\n`);
    }
  }
}

let signalsInstalled = false;
/** Ctrl-C or SIGTERM: clean up, then exit 130/143. */
export function cleanupOnSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping the rig\n`);
      void cleanup().finally(() => process.exit(code));
    });
  }
}

export interface Child {
  readonly process: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns a long-running child whose stdout and stderr are kept (bounded) for diagnostics. */
export function start(command: string, args: string[], options: SpawnOptions = {}): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // A child that cannot be spawned reports through 'error'; the exit promise then never resolves.
  child.once('error', (error) => {
    output += `spawn failed: ${error.message}\n`;
  });
  return { process: child, output: () => output, exited };
}

/** Stops a child: `signal`, then SIGKILL after `graceMs`. Resolves when it has exited. */
export async function stop(child: Child, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill(signal);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** Runs a command to completion; throws with its output when it fails. */
export function runChecked(command: string, args: string[], options: { cwd?: string } = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, ...options });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout || result.error?.message}`,
    );
  }
  return result.stdout;
}

/** Polls `check` every 50 ms until it resolves true; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
