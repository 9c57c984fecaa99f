// Load benchmark (`npm run bench`): the built service and a bare node:http baseline, each pinned to core 0,
// loaded by wrk (else autocannon) pinned to core 1. Prints a table; writes bench/results/<date>.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(root, 'bench', 'results');

const CASES = [
  { name: 'single', path: '/v1/random?min=1&max=100' },
  { name: 'integers', path: '/v1/random/integers?count=100' },
] as const;
const TARGETS = ['service', 'raw'] as const;
type Target = (typeof TARGETS)[number];

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
// A load run may overrun its duration by connection setup and wrk/autocannon start-up; beyond this margin
// something is stuck and the run is abandoned rather than letting the benchmark hang.
const RUN_SLACK_MS = 15_000;

class BenchError extends Error {}

function intSetting(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new BenchError(`${name} must be a whole number in [${min}, ${max}], got "${raw}"`);
  }
  return Number(raw);
}

function commandExists(command: string): boolean {
  return spawnSync('which', [command], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------------------------------------
// Child processes: every one is tracked so that errors, signals and the watchdog can stop them all.

const children = new Set<ChildProcess>();
let pinning = false;
let interrupted = false;

function launch(core: number, command: string, args: string[], options: Parameters<typeof spawn>[2]) {
  // After a signal, main() may still be between steps: start nothing new while the servers are stopped.
  if (interrupted) throw new BenchError('interrupted');
  const [cmd, argv] = pinning ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
  const child = spawn(cmd, argv, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited(child);
  clearTimeout(timer);
}

const tempDirs: string[] = [];

/** Stops every child, then removes the temporary directories they used; safe to call more than once. */
async function cleanup(): Promise<void> {
  await Promise.all([...children].map(stop));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

// Last resort when the process exits without the async cleanup having run (e.g. process.exit elsewhere).
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runToEnd(core: number, command: string, args: string[], timeoutMs: number): Promise<Output> {
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

// ---------------------------------------------------------------------------------------------------------
// Servers

interface Server {
  target: Target;
  child: ChildProcess;
  baseUrl: string;
  describe: () => string;
}

function freePort(): Promise<number> {
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

async function waitReady(server: Server, url: string): Promise<void> {
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
    await sleep(200);
  }
  throw new BenchError(
    `${server.target} not ready within ${READY_TIMEOUT_MS / 1000} s: ${server.describe()}`,
  );
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startService(logFile: string, dataDir: string): Promise<Server> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // production refuses the embedded database; test validates config the same way otherwise.
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    MIGRATE_ON_START: 'true',
    PORT: String(port),
    HOST: '127.0.0.1',
    // No load balancer to drain for: stop at once so the run ends promptly.
    SHUTDOWN_DRAIN_SECONDS: '0',
  };
  delete env.DATABASE_URL;
  delete env.METRICS_PORT;
  delete env.FAULT_INJECTION_ENABLED;
  const fd = openSync(logFile, 'a');
  const child = launch(0, process.execPath, ['dist/src/cli/main.js', 'serve'], {
    cwd: root,
    env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const server: Server = {
    target: 'service',
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    describe: () =>
      `exit ${child.exitCode ?? child.signalCode ?? 'none'}; last log lines of ${path.relative(root, logFile)}:\n${tail(logFile, 10)}`,
  };
  await waitReady(server, `${server.baseUrl}/health/ready`);
  return server;
}

async function startRaw(): Promise<Server> {
  const port = await freePort();
  let output = '';
  const child = launch(0, process.execPath, [path.join(root, 'bench', 'raw-server.mjs'), String(port)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const server: Server = {
    target: 'raw',
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    describe: () => `exit ${child.exitCode ?? child.signalCode ?? 'none'}; output:\n${output.trimEnd()}`,
  };
  await waitReady(server, `${server.baseUrl}/`);
  return server;
}

/** Fails unless the URL answers 200; returns the body size so the JSON shows the baseline is comparable. */
async function verify(url: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = await response.arrayBuffer();
  if (response.status !== 200) throw new BenchError(`GET ${url} answered ${response.status}, expected 200`);
  return body.byteLength;
}

// ---------------------------------------------------------------------------------------------------------
// Load generators

interface Measurement {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  errorDetail: Record<string, number>;
}

type LoadGenerator = 'wrk' | 'autocannon';

const WRK_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

function wrkLatency(output: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(output);
  if (!match) throw new BenchError(`no ${percentile}% latency in wrk output:\n${output}`);
  return Number(match[1]) * WRK_UNITS_MS[match[2]!]!;
}

function parseWrk(output: string): Measurement {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const total = /^\s*(\d+) requests in /m.exec(output);
  if (!rps || !total) throw new BenchError(`unexpected wrk output:\n${output}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const errorDetail = socket
    ? {
        connect: Number(socket[1]),
        read: Number(socket[2]),
        write: Number(socket[3]),
        timeout: Number(socket[4]),
      }
    : { connect: 0, read: 0, write: 0, timeout: 0 };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    requests: Number(total[1]),
    requestsPerSecond: Number(rps[1]),
    p50Ms: wrkLatency(output, '50(?:\\.0+)?'),
    p99Ms: wrkLatency(output, '99(?:\\.0+)?'),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: Object.values(errorDetail).reduce((a, b) => a + b, 0),
    errorDetail,
  };
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  resets: number;
  mismatches: number;
  non2xx: number;
  requests: { total: number };
  latency: { p50: number; p99: number };
}

function parseAutocannon(output: string): Measurement {
  const line = output
    .trim()
    .split('\n')
    .findLast((l) => l.startsWith('{'));
  if (line === undefined) throw new BenchError(`no JSON in autocannon output:\n${output}`);
  const r = JSON.parse(line) as AutocannonResult;
  return {
    requests: r.requests.total,
    requestsPerSecond: r.requests.total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    // autocannon counts timeouts inside errors already.
    errors: r.errors + r.resets + r.mismatches,
    errorDetail: { errors: r.errors, timeouts: r.timeouts, resets: r.resets, mismatches: r.mismatches },
  };
}

async function load(
  generator: LoadGenerator,
  url: string,
  seconds: number,
  connections: number,
): Promise<Measurement> {
  const timeoutMs = seconds * 1_000 + RUN_SLACK_MS;
  if (generator === 'wrk') {
    // One thread: the generator has one core to itself, and more threads would only contend for it.
    const args = ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency', url];
    const out = await runToEnd(1, 'wrk', args, timeoutMs);
    if (out.code !== 0) throw new BenchError(`wrk exited with ${out.code}:\n${out.stderr}${out.stdout}`);
    return parseWrk(out.stdout);
  }
  // A child process, not the autocannon API: in-process it would share the bench's core and event loop.
  const cli = path.join(root, 'node_modules', 'autocannon', 'autocannon.js');
  const args = [cli, '--json', '-n', '-c', String(connections), '-d', String(seconds), url];
  const out = await runToEnd(1, process.execPath, args, timeoutMs);
  if (out.code !== 0) throw new BenchError(`autocannon exited with ${out.code}:\n${out.stderr}${out.stdout}`);
  return parseAutocannon(out.stdout);
}

// ---------------------------------------------------------------------------------------------------------
// Report

interface CaseResult extends Measurement {
  case: string;
  path: string;
  target: Target;
  bodyBytes: number;
  flagged: boolean;
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

function ratioOf(results: CaseResult[], name: string): number | null {
  const service = results.find((r) => r.case === name && r.target === 'service');
  const raw = results.find((r) => r.case === name && r.target === 'raw');
  if (!service || !raw || raw.requestsPerSecond === 0) return null;
  return service.requestsPerSecond / raw.requestsPerSecond;
}

function table(results: CaseResult[]): string {
  const header = ['case', 'target', 'req/s', 'p50 ms', 'p99 ms', 'service/raw', 'notes'];
  const rows = results.map((r) => {
    const ratio = r.target === 'service' ? ratioOf(results, r.case) : null;
    return [
      `GET ${r.path}`,
      r.target,
      r.requestsPerSecond.toFixed(0),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      ratio === null ? '' : ratio.toFixed(2),
      r.flagged ? `FLAGGED: ${r.non2xx} non-2xx, ${r.errors} errors` : '',
    ];
  });
  const numeric = new Set([2, 3, 4, 5]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const format = (row: string[]) =>
    row
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(format)].join('\n');
}

function gitCommit(): string {
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : 'unknown';
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const connections = intSetting('BENCH_CONNECTIONS', 50, 1, 10_000);
  const duration = intSetting('BENCH_DURATION', 10, 1, 600);
  const warmup = intSetting('BENCH_WARMUP', 3, 0, 60);
  const requested = process.env.BENCH_LOADGEN?.trim() || 'auto';
  if (!['auto', 'wrk', 'autocannon'].includes(requested)) {
    throw new BenchError(`BENCH_LOADGEN must be auto, wrk or autocannon, got "${requested}"`);
  }
  const hasWrk = commandExists('wrk');
  if (requested === 'wrk' && !hasWrk) throw new BenchError('BENCH_LOADGEN=wrk but wrk is not installed');
  const generator: LoadGenerator = requested === 'autocannon' || !hasWrk ? 'autocannon' : 'wrk';
  // taskset can exist while the machine has a single CPU (or a restricted cpuset): check both cores work.
  pinning =
    commandExists('taskset') &&
    [0, 1].every((core) => spawnSync('taskset', ['-c', String(core), 'true']).status === 0);

  // The watchdog bounds the whole run, whatever hangs: two start-ups, every run, and the shutdowns.
  const runs = CASES.length * TARGETS.length;
  const budgetMs = 2 * READY_TIMEOUT_MS + runs * ((warmup + duration) * 1_000 + 2 * RUN_SLACK_MS) + 30_000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: exceeded its ${Math.round(budgetMs / 1000)} s budget, stopping\n`);
    void cleanup().finally(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  mkdirSync(resultsDir, { recursive: true });
  const logFile = path.join(resultsDir, `${stamp}-service.log`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bench-pglite-'));
  tempDirs.push(dataDir);

  console.log(
    `bench: ${generator}${pinning ? ', servers on core 0, load on core 1' : ', no CPU pinning'}; ` +
      `${connections} connections, ${warmup} s warm-up + ${duration} s per run`,
  );
  try {
    const servers: Partial<Record<Target, Server>> = {};
    try {
      servers.service = await startService(logFile, dataDir);
      servers.raw = await startRaw();
    } catch (error) {
      if (error instanceof BenchError) throw new BenchError(`server failed to start: ${error.message}`);
      throw error;
    }
    console.log(`service log: ${path.relative(root, logFile)}`);

    const bodyBytes = new Map<string, number>();
    for (const c of CASES) {
      for (const target of TARGETS) {
        bodyBytes.set(`${c.name}/${target}`, await verify(`${servers[target]!.baseUrl}${c.path}`));
      }
    }

    const results: CaseResult[] = [];
    for (const c of CASES) {
      for (const target of TARGETS) {
        const url = `${servers[target]!.baseUrl}${c.path}`;
        process.stdout.write(`  ${c.name} / ${target} ... `);
        // Each run gets its own warm-up so the JIT and connection setup of that route are out of the numbers.
        if (warmup > 0) await load(generator, url, warmup, connections);
        const m = await load(generator, url, duration, connections);
        const flagged = m.non2xx > 0 || m.errors > 0;
        results.push({
          case: c.name,
          path: c.path,
          target,
          bodyBytes: bodyBytes.get(`${c.name}/${target}`)!,
          flagged,
          ...m,
        });
        console.log(
          `${m.requestsPerSecond.toFixed(0)} req/s${flagged ? ` (${m.non2xx} non-2xx, ${m.errors} errors)` : ''}`,
        );
      }
    }

    console.log(`\n${table(results)}\n`);
    const cpus = os.cpus();
    const report = {
      date: startedAt.toISOString().slice(0, 10),
      startedAt: startedAt.toISOString(),
      commit: gitCommit(),
      machine: {
        cpuModel: cpus[0]?.model.trim() ?? 'unknown',
        cpuCount: cpus.length,
        totalMemoryBytes: os.totalmem(),
        totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1),
        platform: os.platform(),
        arch: os.arch(),
        osRelease: os.release(),
        node: process.version,
        taskset: pinning,
        wrk: generator === 'wrk',
      },
      settings: {
        connections,
        durationSeconds: duration,
        warmupSeconds: warmup,
        loadGenerator: generator,
        serviceEnvironment: 'test',
        serviceLogLevel: 'info',
        database: 'embedded PGlite',
      },
      results: results.map((r) => ({
        case: r.case,
        path: r.path,
        target: r.target,
        requestsPerSecond: round(r.requestsPerSecond, 1),
        latencyP50Ms: round(r.p50Ms, 3),
        latencyP99Ms: round(r.p99Ms, 3),
        requests: r.requests,
        non2xx: r.non2xx,
        errors: r.errors,
        errorDetail: r.errorDetail,
        flagged: r.flagged,
        bodyBytes: r.bodyBytes,
      })),
      ratios: CASES.map((c) => {
        const ratio = ratioOf(results, c.name);
        return { case: c.name, serviceOverRawRequestsPerSecond: ratio === null ? null : round(ratio, 3) };
      }),
      serviceLog: path.relative(root, logFile),
    };
    const jsonFile = path.join(resultsDir, `${report.date}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`results: ${path.relative(root, jsonFile)}`);
    const flagged = results.filter((r) => r.flagged).length;
    if (flagged > 0)
      console.log(`warning: ${flagged} run(s) had non-2xx responses or errors (FLAGGED above)`);
    return 0;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(1);
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, stopping servers\n`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

// After a signal the handler above owns the exit (and its code); main() only unwinds.
main().then(
  (code) => {
    if (!interrupted) process.exit(code);
  },
  async (error: unknown) => {
    if (interrupted) return;
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!(error instanceof BenchError) && error instanceof Error && error.stack) {
      process.stderr.write(`${error.stack}\n`);
    }
    await cleanup();
    process.exit(1);
  },
);
