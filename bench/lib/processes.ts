// Child processes: every one is tracked so that errors, signals and the watchdog can stop them all, and can
// be pinned to a core with taskset. The servers under test (the built service, the raw node:http baseline)
// are spawned here, on a chosen Node.js binary, and polled until ready; a process tree's CPU time is read
// from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError, root } from './common.js';

export const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
// A load run may overrun its duration by connection setup and wrk/autocannon start-up; beyond this margin
// something is stuck and the run is abandoned rather than letting the benchmark hang.
export const RUN_SLACK_MS = 15_000;
// USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on Linux, asked all the same).
const TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return out.status === 0 && Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();
export const clockTicks = () => TICKS;

const children = new Set<ChildProcess>();
let pinning = false;
let interrupted = false;

export function commandExists(command: string): boolean {
  return spawnSync('which', [command], { stdio: 'ignore' }).status === 0;
}

/** From now on, launch() pins to its core if taskset works on cores 0 and 1; returns whether it does. */
export function enablePinning(): boolean {
  // taskset can exist while the machine has a single CPU (or a restricted cpuset): check both cores work.
  pinning =
    commandExists('taskset') &&
    [0, 1].every((core) => spawnSync('taskset', ['-c', String(core), 'true']).status === 0);
  return pinning;
}

/** Whether a SIGINT or SIGTERM arrived (see installSignalHandlers). */
export const isInterrupted = () => interrupted;

export function launch(core: number, command: string, args: string[], options: Parameters<typeof spawn>[2]) {
  // After a signal, main() may still be between steps: start nothing new while the servers are stopped.
  if (interrupted) throw new BenchError('interrupted');
  const [cmd, argv] = pinning ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
  const child = spawn(cmd, argv, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after `timeoutMs` if the child has not exited; resolves once it has. */
export async function stop(child: ChildProcess, timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited(child);
  clearTimeout(timer);
}

const tempDirs: string[] = [];
let scratchDir: string | undefined;

/** A new temporary directory, removed by cleanup(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Stops every child, then removes the temporary directories they used; safe to call more than once. */
export async function cleanup(): Promise<void> {
  await Promise.all([...children].map(stop));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  scratchDir = undefined;
}

/** A private temporary directory (wrk scripts), removed by cleanup(). */
export function scratch(): string {
  scratchDir ??= tempDir('bench-scratch-');
  return scratchDir;
}

// Last resort when the process exits without the async cleanup having run (e.g. process.exit elsewhere).
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** On SIGINT or SIGTERM: start nothing new, stop every child, exit 130 or 143; a second signal exits 1. */
export function installSignalHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(1);
      interrupted = true;
      process.stderr.write(`\nbench: ${signal}, stopping servers\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** Bounds the whole run: past the budget, stops every child and exits 1. Clear the timer when done. */
export function startWatchdog(budgetMs: number): NodeJS.Timeout {
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: exceeded its ${Math.round(budgetMs / 1000)} s budget, stopping\n`);
    void cleanup().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();
  return watchdog;
}

export interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runToEnd(core: number, command: string, args: string[], timeoutMs: number): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = launch(core, command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new BenchError(`${command} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * CPU seconds (utime + stime of /proc/<pid>/stat, every thread included) of `pid` and all its descendants,
 * live at the time of the call, in units of `getconf CLK_TCK`.
 */
export function cpuSeconds(pid: number): number {
  const parentOf = new Map<number, number>();
  const ticksOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces: state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
      ticksOf.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // gone
    }
  }
  const inTree = (p: number): boolean => {
    for (let at: number | undefined = p, depth = 0; at !== undefined && at > 1 && depth < 64; depth++) {
      if (at === pid) return true;
      at = parentOf.get(at);
    }
    return false;
  };
  let ticks = 0;
  for (const [p, t] of ticksOf) if (inTree(p)) ticks += t;
  return ticks / TICKS;
}

// ---------------------------------------------------------------------------------------------------------
// Servers under test

export const TARGETS = ['service', 'raw'] as const;
export type Target = (typeof TARGETS)[number];

/** The Node.js binary the servers under test run on (the load generators always run on this process's). */
export interface Runtime {
  /** `process.version` of the binary, e.g. v20.20.2. */
  version: string;
  execPath: string;
  /** For file names and log lines: `node20`, `node24`. */
  tag: string;
}

export function runtimeOf(execPath: string, version: string): Runtime {
  return { version, execPath, tag: `node${version.replace(/^v/, '').split('.')[0]}` };
}

/** The Node.js running the bench. */
export const currentRuntime = (): Runtime => runtimeOf(process.execPath, process.version);

export interface Server {
  target: Target;
  runtime: Runtime;
  child: ChildProcess;
  baseUrl: string;
  describe: () => string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200, for up to READY_TIMEOUT_MS; fails early if the server exits. */
export async function waitReady(server: Server, url: string, pollMs = 200): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new BenchError(`${server.target} exited before it was ready: ${server.describe()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet (or the probe timed out): poll again until the deadline.
    }
    await sleep(pollMs);
  }
  throw new BenchError(
    `${server.target} not ready within ${READY_TIMEOUT_MS / 1000} s: ${server.describe()}`,
  );
}

export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface ServiceSpawn {
  /** The PORT in `env`. */
  port: number;
  /** The service's whole environment (see setup.ts). */
  env: NodeJS.ProcessEnv;
  /** Appends the service's stdout and stderr to this file; without one, stdout is dropped, stderr inherited. */
  logFile?: string;
  /** Milliseconds between readiness polls. */
  pollMs?: number;
  /** The Node.js binary; this process's by default. */
  runtime?: Runtime;
  /** Node.js flags before the script, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
}

/** Starts the built service (`dist/src/cli/main.js serve`) on core 0; resolves once /health/ready is 200. */
export async function spawnService(options: ServiceSpawn): Promise<Server> {
  const { port, env, logFile, pollMs, runtime = currentRuntime(), nodeArgs = [] } = options;
  const args = [...nodeArgs, 'dist/src/cli/main.js', 'serve'];
  let child: ChildProcess;
  if (logFile === undefined) {
    child = launch(0, runtime.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  } else {
    const fd = openSync(logFile, 'a');
    child = launch(0, runtime.execPath, args, { cwd: root, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
  }
  const output =
    logFile === undefined
      ? () => 'its stderr is above'
      : () => `last log lines of ${path.relative(root, logFile)}:\n${tail(logFile, 10)}`;
  const server: Server = {
    target: 'service',
    runtime,
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    describe: () => `exit ${child.exitCode ?? child.signalCode ?? 'none'}; ${output()}`,
  };
  await waitReady(server, `${server.baseUrl}/health/ready`, pollMs);
  return server;
}

/** Starts bench/raw-server.mjs, the bare node:http baseline, on core 0; resolves once it answers. */
export async function startRaw(runtime: Runtime = currentRuntime()): Promise<Server> {
  const port = await freePort();
  let output = '';
  const child = launch(0, runtime.execPath, [path.join(root, 'bench', 'raw-server.mjs'), String(port)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const server: Server = {
    target: 'raw',
    runtime,
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    describe: () => `exit ${child.exitCode ?? child.signalCode ?? 'none'}; output:\n${output.trimEnd()}`,
  };
  await waitReady(server, `${server.baseUrl}/`);
  return server;
}
