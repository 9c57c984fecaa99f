// Load benchmark (`npm run bench`): the built service and a bare node:http baseline, each pinned to core 0,
// loaded by wrk (else autocannon) pinned to core 1. The service runs in variants (rate limiting on the
// memory or the Redis store, tracing on), each case next to its own baseline run; then logins under load
// while a prober times /health/live, and a load run through which the limiter's Redis is killed. Prints the
// tables; writes bench/results/<date>.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(root, 'bench', 'results');

/** How the service under test is configured; every variant has every protection on. */
type VariantName = 'memory' | 'redis' | 'traced' | 'traced-unsampled';

interface Variant {
  /** What the variant changes, for the table and the JSON. */
  describe: string;
  env: (ctx: { sinkUrl: string }) => Record<string, string>;
}

const VARIANTS: Record<VariantName, Variant> = {
  memory: { describe: 'rate limits on the memory store, tracing off (the default)', env: () => ({}) },
  redis: {
    describe: 'rate limits on the Redis store (one EVALSHA per request)',
    env: () => ({ RATE_LIMIT_STORAGE_URI: REDIS_URL, REDIS_KEY_PREFIX: `bench-${process.pid}:` }),
  },
  traced: {
    describe: 'tracing on, every request sampled and exported over OTLP/HTTP',
    env: ({ sinkUrl }) => ({ OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: 'always_on' }),
  },
  'traced-unsampled': {
    describe: 'tracing on, sampler always_off (the cost of the instrumentation alone)',
    env: ({ sinkUrl }) => ({ OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: 'always_off' }),
  },
};

interface Case {
  name: string;
  path: string;
  /** Sends `Authorization: Bearer <access token of the demo admin>` on every request. */
  bearer: boolean;
  variant: VariantName;
  /** The share of raw node:http's req/s this case aims at, when it has a target. */
  target?: number;
}

const CASES: readonly Case[] = [
  { name: 'single', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory', target: 0.65 },
  { name: 'integers', path: '/v1/random/integers?count=100', bearer: false, variant: 'memory' },
  { name: 'me', path: '/v1/auth/me', bearer: true, variant: 'memory', target: 0.6 },
  { name: 'single-bearer', path: '/v1/random?min=1&max=100', bearer: true, variant: 'memory' },
  // The first case again: the spread between the two runs is the noise any other difference must exceed
  // (tracing off, the default, adds no code at all to the request path, so it is the memory variant).
  { name: 'single-repeat', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory' },
  { name: 'single-redis', path: '/v1/random?min=1&max=100', bearer: false, variant: 'redis', target: 0.5 },
  { name: 'single-traced', path: '/v1/random?min=1&max=100', bearer: false, variant: 'traced' },
  {
    name: 'single-traced-unsampled',
    path: '/v1/random?min=1&max=100',
    bearer: false,
    variant: 'traced-unsampled',
  },
];
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
// The limiter's deadline on Redis: the outage run checks no request waited much longer than this.
const REDIS_DEADLINE_MS = 50;
const TARGETS = ['service', 'raw'] as const;
type Target = (typeof TARGETS)[number];

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
// A load run may overrun its duration by connection setup and wrk/autocannon start-up; beyond this margin
// something is stuck and the run is abandoned rather than letting the benchmark hang.
const RUN_SLACK_MS = 15_000;
// The demo admin's password is in the service log before readiness; the logger writes asynchronously.
const CREDENTIALS_TIMEOUT_MS = 10_000;
const DEMO_LOG_MESSAGE = 'demo admin created; this password is shown once';
const LOGIN_PATH = '/v1/auth/login';
const PROBE_PATH = '/health/live';
// Sequential probes per second against /health/live, with and without login load.
const PROBE_RATE = 100;
// A probe slower than this counts as an error (and flags the run) rather than as a latency.
const PROBE_TIMEOUT_MS = 5_000;
// The prober starts this long after the login load, and the login load lasts one second longer than the
// probe, so that every probe is sent while logins run (both generators need a moment to start).
const PROBE_DELAY_MS = 500;
// A login hashes with argon2id on the server's single core: under load it can take well over wrk's
// default 2 s timeout, which would count slow logins as errors instead of measuring them.
const LOGIN_TIMEOUT_SECONDS = 10;
// Rate limits far above any load the bench makes, for every tier of both route groups: every request still
// goes through the limiter (its cost is measured) but none is refused, and every login answers 200.
const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };
const TIERS = ['anonymous', 'user', 'api_key', 'admin'] as const;
const BENCH_RATE_LIMITS = JSON.stringify({
  api: Object.fromEntries(TIERS.map((tier) => [tier, UNLIMITED])),
  auth: Object.fromEntries(TIERS.map((tier) => [tier, UNLIMITED])),
});

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
let scratchDir: string | undefined;

/** Stops every child, then removes the temporary directories they used; safe to call more than once. */
async function cleanup(): Promise<void> {
  await Promise.all([...children].map(stop));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  scratchDir = undefined;
}

/** A private temporary directory (wrk scripts), removed by cleanup(). */
function scratch(): string {
  if (scratchDir === undefined) {
    scratchDir = mkdtempSync(path.join(os.tmpdir(), 'bench-scratch-'));
    tempDirs.push(scratchDir);
  }
  return scratchDir;
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

async function startService(
  logFile: string,
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<Server> {
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
    // A demo admin whose password is logged once (development and test only): the identity cases use it.
    SEED_DEMO_USER: 'true',
    // The one access token must outlive the longest run (8 cases x (60 + 600) s is 88 min).
    ACCESS_TOKEN_EXPIRE_MINUTES: '1440',
    // The default policies would answer 429 to nearly every request of a load run (one client IP).
    RATE_LIMITS: process.env.RATE_LIMITS ?? BENCH_RATE_LIMITS,
  };
  for (const name of [
    'DATABASE_URL',
    'METRICS_PORT',
    'FAULT_INJECTION_ENABLED',
    'RATE_LIMIT_STORAGE_URI',
    'REDIS_URL',
    'OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_TRACES_SAMPLER',
  ])
    delete env[name];
  Object.assign(env, extraEnv);
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
async function verify(url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  const body = await response.arrayBuffer();
  if (response.status !== 200) throw new BenchError(`GET ${url} answered ${response.status}, expected 200`);
  return body.byteLength;
}

// ---------------------------------------------------------------------------------------------------------
// Dependencies of the variants: an OTLP/HTTP sink that accepts and counts what tracing exports (in the
// bench's own process: a collector is another process in production too), and private Redis servers.

interface Sink {
  url: string;
  exports: () => number;
  close: () => Promise<void>;
}

async function startSink(): Promise<Sink> {
  let exports = 0;
  const server = createHttpServer((req, res) => {
    req.resume();
    req.once('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') exports += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    exports: () => exports,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379), timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A throwaway redis-server on core 1 (with the load), so it can be killed without touching anyone's. */
async function startPrivateRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = launch(1, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', ''], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await reachable(url))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new BenchError('redis-server did not start');
    await sleep(100);
  }
  return { url, child };
}

// ---------------------------------------------------------------------------------------------------------
// Identity: the demo admin (SEED_DEMO_USER=true) and its access token

interface Credentials {
  username: string;
  password: string;
}

/** The demo admin's credentials, from the one log line that shows its password; polls the log, bounded. */
async function demoCredentials(logFile: string): Promise<Credentials> {
  const deadline = Date.now() + CREDENTIALS_TIMEOUT_MS;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(logFile, 'utf8');
    } catch {
      // Not created yet: poll again.
    }
    for (const line of text.split('\n')) {
      if (!line.includes(DEMO_LOG_MESSAGE)) continue;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a line still being written
      }
      const { msg, demo_username: username, demo_password: password } = entry;
      if (msg !== DEMO_LOG_MESSAGE) continue;
      if (typeof username !== 'string' || typeof password !== 'string' || password === '[REDACTED]') {
        throw new BenchError(`the "${DEMO_LOG_MESSAGE}" log line has no usable demo_username/demo_password`);
      }
      return { username, password };
    }
    if (Date.now() >= deadline) {
      throw new BenchError(
        `no "${DEMO_LOG_MESSAGE}" line in ${path.relative(root, logFile)} within ` +
          `${CREDENTIALS_TIMEOUT_MS / 1000} s (is SEED_DEMO_USER honoured?):\n${tail(logFile, 10)}`,
      );
    }
    await sleep(100);
  }
}

/** Logs in with JSON credentials; returns the access token. */
async function login(baseUrl: string, credentials: Credentials): Promise<string> {
  const response = await fetch(`${baseUrl}${LOGIN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
    signal: AbortSignal.timeout(LOGIN_TIMEOUT_SECONDS * 1_000),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new BenchError(
      `POST ${LOGIN_PATH} answered ${response.status}, expected 200: ${text.slice(0, 300)}`,
    );
  }
  const token = (JSON.parse(text) as { access_token?: unknown }).access_token;
  if (typeof token !== 'string' || token === '') {
    throw new BenchError(`POST ${LOGIN_PATH} answered 200 without an access_token`);
  }
  return token;
}

// ---------------------------------------------------------------------------------------------------------
// Load generators

interface Measurement {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  errorDetail: Record<string, number>;
}

interface LoadRequest {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Seconds before the generator gives up on a response and counts an error; the generator's default else. */
  timeoutSeconds?: number;
}

type LoadGenerator = 'wrk' | 'autocannon';

const WRK_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

function wrkLatency(output: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(output);
  if (!match) throw new BenchError(`no ${percentile}% latency in wrk output:\n${output}`);
  return Number(match[1]) * WRK_UNITS_MS[match[2]!]!;
}

function wrkMaxLatency(output: string): number {
  const match = /^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)\s/m.exec(output);
  if (!match) throw new BenchError(`no maximum latency in wrk output:\n${output}`);
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
    maxMs: wrkMaxLatency(output),
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
  latency: { p50: number; p99: number; max: number };
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
    maxMs: r.latency.max,
    non2xx: r.non2xx,
    // autocannon counts timeouts inside errors already.
    errors: r.errors + r.resets + r.mismatches,
    errorDetail: { errors: r.errors, timeouts: r.timeouts, resets: r.resets, mismatches: r.mismatches },
  };
}

let wrkScripts = 0;

/** wrk takes a method and a body only from a Lua script: writes one to the scratch directory. */
function wrkScript(method: string, body: string): string {
  const literal = (text: string) => {
    // A long bracket string takes the text verbatim, without Lua escapes, unless it holds the closing bracket.
    if (text.includes(']==]')) throw new BenchError('a wrk request body may not contain "]==]"');
    return `[==[${text}]==]`;
  };
  const file = path.join(scratch(), `wrk-${++wrkScripts}.lua`);
  writeFileSync(file, `wrk.method = ${literal(method)}\nwrk.body = ${literal(body)}\n`, { mode: 0o600 });
  return file;
}

async function load(
  generator: LoadGenerator,
  request: LoadRequest,
  seconds: number,
  connections: number,
): Promise<Measurement> {
  const { url, method = 'GET', headers = {}, body, timeoutSeconds } = request;
  const timeoutMs = seconds * 1_000 + RUN_SLACK_MS;
  if (generator === 'wrk') {
    // One thread: the generator has one core to itself, and more threads would only contend for it.
    const args = ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency'];
    if (timeoutSeconds !== undefined) args.push('--timeout', `${timeoutSeconds}s`);
    for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
    if (method !== 'GET' || body !== undefined) args.push('-s', wrkScript(method, body ?? ''));
    const out = await runToEnd(1, 'wrk', [...args, url], timeoutMs);
    if (out.code !== 0) throw new BenchError(`wrk exited with ${out.code}:\n${out.stderr}${out.stdout}`);
    return parseWrk(out.stdout);
  }
  // A child process, not the autocannon API: in-process it would share the bench's core and event loop.
  const cli = path.join(root, 'node_modules', 'autocannon', 'autocannon.js');
  const args = [cli, '--json', '-n', '-c', String(connections), '-d', String(seconds)];
  if (timeoutSeconds !== undefined) args.push('-t', String(timeoutSeconds));
  if (method !== 'GET') args.push('-m', method);
  if (body !== undefined) args.push('-b', body);
  // name=value: autocannon splits at the first ':' or '=', and a value after ': ' would keep its space.
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  const out = await runToEnd(1, process.execPath, [...args, url], timeoutMs);
  if (out.code !== 0) throw new BenchError(`autocannon exited with ${out.code}:\n${out.stderr}${out.stdout}`);
  return parseAutocannon(out.stdout);
}

// ---------------------------------------------------------------------------------------------------------
// Prober: sequential GETs at a fixed rate, each timed with performance.now(), in a child process pinned to
// the load core (in the bench's own process it could run on the server's core). One request at a time on
// one keep-alive connection: a stall shows as one long sample (the max), not as many.

const PROBE_SCRIPT = `
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
const [url, seconds, rate, timeoutMs] = process.argv.slice(1);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const interval = 1000 / Number(rate);
const latencies = [];
let non2xx = 0;
let errors = 0;
const once = () =>
  new Promise((resolve) => {
    let settled = false;
    const settle = (latency, ok) => {
      if (settled) return;
      settled = true;
      if (latency === undefined) errors++;
      else {
        latencies.push(Math.round(latency * 1000) / 1000);
        if (!ok) non2xx++;
      }
      resolve();
    };
    const start = performance.now();
    const req = get(url, { agent, timeout: Number(timeoutMs) }, (res) => {
      res.on('data', () => {});
      res.once('end', () => settle(performance.now() - start, res.statusCode >= 200 && res.statusCode < 300));
      res.once('error', () => settle(undefined));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => settle(undefined));
  });
const begin = performance.now();
const end = begin + Number(seconds) * 1000;
let due = begin;
while (performance.now() < end) {
  await once();
  due += interval;
  const wait = due - performance.now();
  // Behind schedule (a slow answer): carry on at the rate from now rather than bursting to catch up.
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  else due = performance.now();
}
agent.destroy();
process.stdout.write(JSON.stringify({ elapsedMs: performance.now() - begin, latencies, non2xx, errors }) + '\\n');
`;

interface ProbeResult {
  samples: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  flagged: boolean;
}

/** Nearest-rank percentile of ascending values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function probe(url: string, seconds: number): Promise<ProbeResult> {
  const args = ['--input-type=module', '-e', PROBE_SCRIPT, url, String(seconds), String(PROBE_RATE)];
  args.push(String(PROBE_TIMEOUT_MS));
  const out = await runToEnd(1, process.execPath, args, seconds * 1_000 + RUN_SLACK_MS);
  if (out.code !== 0) throw new BenchError(`the prober exited with ${out.code}:\n${out.stderr}${out.stdout}`);
  const line = out.stdout.trim().split('\n').at(-1) ?? '';
  let r: { elapsedMs: number; latencies: number[]; non2xx: number; errors: number };
  try {
    r = JSON.parse(line) as typeof r;
  } catch {
    throw new BenchError(`unexpected prober output:\n${out.stderr}${out.stdout}`);
  }
  const sorted = r.latencies.toSorted((a, b) => a - b);
  return {
    samples: sorted.length,
    requestsPerSecond: (sorted.length * 1_000) / r.elapsedMs,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    non2xx: r.non2xx,
    errors: r.errors,
    flagged: r.non2xx > 0 || r.errors > 0 || sorted.length === 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Logins under load: wrk/autocannon logs in over and over while the prober times /health/live; before it,
// the prober alone gives the baseline. Not a ratio: the raw server has no password hashing to compare with.

interface LoginUnderLoad {
  connections: number;
  login: Measurement & { flagged: boolean };
  healthBaseline: ProbeResult;
  healthUnderLoad: ProbeResult;
}

async function loginUnderLoad(
  generator: LoadGenerator,
  baseUrl: string,
  credentials: Credentials,
  settings: { duration: number; warmup: number; connections: number },
): Promise<LoginUnderLoad> {
  const { duration, warmup, connections } = settings;
  const request: LoadRequest = {
    url: `${baseUrl}${LOGIN_PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
    timeoutSeconds: LOGIN_TIMEOUT_SECONDS,
  };
  const probeUrl = `${baseUrl}${PROBE_PATH}`;
  const rps = (n: number) => `${n.toFixed(0)} req/s`;
  const issues = (r: { non2xx: number; errors: number }) => ` (${r.non2xx} non-2xx, ${r.errors} errors)`;

  process.stdout.write(`  ${PROBE_PATH} alone ... `);
  const healthBaseline = await probe(probeUrl, duration);
  console.log(
    `p99 ${healthBaseline.p99Ms.toFixed(2)} ms${healthBaseline.flagged ? issues(healthBaseline) : ''}`,
  );

  process.stdout.write(`  logins x${connections} + ${PROBE_PATH} ... `);
  if (warmup > 0) await load(generator, request, warmup, connections);
  // Both run to their end even when one fails, so nothing is left running behind an error.
  const [loginRun, probeRun] = await Promise.allSettled([
    load(generator, request, duration + 1, connections),
    sleep(PROBE_DELAY_MS).then(() => probe(probeUrl, duration)),
  ]);
  if (loginRun.status === 'rejected') throw loginRun.reason;
  if (probeRun.status === 'rejected') throw probeRun.reason;
  const login = { ...loginRun.value, flagged: loginRun.value.non2xx > 0 || loginRun.value.errors > 0 };
  const healthUnderLoad = probeRun.value;
  console.log(
    `${rps(login.requestsPerSecond)} logins${login.flagged ? issues(login) : ''}, ` +
      `${PROBE_PATH} p99 ${healthUnderLoad.p99Ms.toFixed(2)} ms${healthUnderLoad.flagged ? issues(healthUnderLoad) : ''}`,
  );
  return { connections, login, healthBaseline, healthUnderLoad };
}

// ---------------------------------------------------------------------------------------------------------
// Redis killed mid-run: the service limits on a private redis-server, which is SIGKILLed a third of the way
// into a load run. Every answer must still be 200 (the policies are above the load, so the insurance
// limiter refuses nothing) and none may wait much past the limiter's Redis deadline.

interface OutageResult extends Measurement {
  flagged: boolean;
  killedAfterSeconds: number;
  readiness: unknown;
  storeErrors: number;
}

async function redisOutage(
  generator: LoadGenerator,
  settings: { stamp: string; duration: number; warmup: number; connections: number },
): Promise<OutageResult> {
  const { stamp, duration, warmup, connections } = settings;
  const redis = await startPrivateRedis();
  const data = mkdtempSync(path.join(os.tmpdir(), 'bench-pglite-'));
  tempDirs.push(data);
  const service = await startService(path.join(resultsDir, `${stamp}-service-outage.log`), data, {
    RATE_LIMIT_STORAGE_URI: redis.url,
    REDIS_URL: redis.url,
  });
  try {
    const request: LoadRequest = { url: `${service.baseUrl}/v1/random?min=1&max=100` };
    await verify(request.url);
    process.stdout.write(`  Redis killed after ${(duration / 3).toFixed(1)} s of ${duration} s ... `);
    if (warmup > 0) await load(generator, request, warmup, connections);
    const [run] = await Promise.allSettled([
      load(generator, request, duration, connections),
      sleep((duration * 1_000) / 3).then(() => redis.child.kill('SIGKILL')),
    ]);
    if (run.status === 'rejected') throw run.reason;
    const m = run.value;
    const readiness = (await (await fetch(`${service.baseUrl}/health/ready`)).json()) as unknown;
    const metrics = await (await fetch(`${service.baseUrl}/metrics`)).text();
    const storeErrors = [...metrics.matchAll(/^rate_limit_store_errors_total(?:\{[^}]*\})? (\S+)$/gm)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
    const flagged = m.non2xx > 0 || m.errors > 0;
    console.log(
      `${m.requestsPerSecond.toFixed(0)} req/s, max ${m.maxMs.toFixed(1)} ms, ${m.non2xx} non-2xx, ${m.errors} errors`,
    );
    return { ...m, flagged, killedAfterSeconds: duration / 3, readiness, storeErrors };
  } finally {
    await stop(service.child);
    await stop(redis.child);
  }
}

function outageTable(o: OutageResult): string {
  const header = ['load', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'store errors'];
  const row = [
    `GET /v1/random, Redis killed at ${o.killedAfterSeconds.toFixed(1)} s`,
    o.requestsPerSecond.toFixed(0),
    o.p50Ms.toFixed(2),
    o.p99Ms.toFixed(2),
    o.maxMs.toFixed(2),
    String(o.non2xx),
    String(o.errors),
    String(o.storeErrors),
  ];
  return formatTable(header, [row], new Set([1, 2, 3, 4, 5, 6, 7]));
}

// ---------------------------------------------------------------------------------------------------------
// Report

interface CaseResult extends Measurement {
  case: string;
  path: string;
  bearer: boolean;
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

function formatTable(header: string[], rows: string[][], numeric: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const format = (row: string[]) =>
    row
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(format)].join('\n');
}

const flagNote = (r: { flagged: boolean; non2xx: number; errors: number }) =>
  r.flagged ? `FLAGGED: ${r.non2xx} non-2xx, ${r.errors} errors` : '';

function table(results: CaseResult[]): string {
  const header = [
    'case',
    'variant',
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'service/raw',
    'goal',
    'notes',
  ];
  const rows = results.map((r) => {
    const ratio = r.target === 'service' ? ratioOf(results, r.case) : null;
    const c = CASES.find((k) => k.name === r.case)!;
    return [
      `GET ${r.path}${r.bearer ? ' +Bearer' : ''}`,
      c.variant,
      r.target,
      r.requestsPerSecond.toFixed(0),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      r.maxMs.toFixed(2),
      ratio === null ? '' : ratio.toFixed(2),
      ratio === null || c.target === undefined ? '' : `>= ${c.target.toFixed(2)}`,
      flagNote(r),
    ];
  });
  return formatTable(header, rows, new Set([3, 4, 5, 6, 7]));
}

function loginTable(l: LoginUnderLoad): string {
  const header = ['load', 'measured', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'notes'];
  const loaded = `logins, ${l.connections} conn`;
  const row = (load: string, measured: string, r: ProbeResult | LoginUnderLoad['login']) => [
    load,
    measured,
    r.requestsPerSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.maxMs.toFixed(2),
    flagNote(r),
  ];
  const rows = [
    row('none', `GET ${PROBE_PATH}`, l.healthBaseline),
    row(loaded, `GET ${PROBE_PATH}`, l.healthUnderLoad),
    row(loaded, `POST ${LOGIN_PATH}`, l.login),
  ];
  const growth = l.healthUnderLoad.p99Ms / l.healthBaseline.p99Ms;
  return (
    `${formatTable(header, rows, new Set([2, 3, 4, 5]))}\n\n` +
    `${PROBE_PATH} p99: ${l.healthUnderLoad.p99Ms.toFixed(2)} ms under login load, ` +
    `${l.healthBaseline.p99Ms.toFixed(2)} ms without${Number.isFinite(growth) ? ` (x${growth.toFixed(1)})` : ''}`
  );
}

const probeJson = (r: ProbeResult) => ({
  path: PROBE_PATH,
  samples: r.samples,
  requestsPerSecond: round(r.requestsPerSecond, 1),
  latencyP50Ms: round(r.p50Ms, 3),
  latencyP99Ms: round(r.p99Ms, 3),
  latencyMaxMs: round(r.maxMs, 3),
  non2xx: r.non2xx,
  errors: r.errors,
  flagged: r.flagged,
});

function gitCommit(): string {
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : 'unknown';
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const connections = intSetting('BENCH_CONNECTIONS', 50, 1, 10_000);
  const duration = intSetting('BENCH_DURATION', 10, 1, 600);
  const warmup = intSetting('BENCH_WARMUP', 3, 0, 60);
  const loginConnections = intSetting('BENCH_LOGIN_CONNECTIONS', 16, 1, 1_000);
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

  // The watchdog bounds the whole run, whatever hangs: two start-ups, the demo admin's log line and login,
  // every run, the login-under-load runs (probe alone; warm-up; logins with the probe), and the shutdowns.
  const runs = (CASES.length + 1) * TARGETS.length;
  const budgetMs =
    (3 + Object.keys(VARIANTS).length) * READY_TIMEOUT_MS +
    CREDENTIALS_TIMEOUT_MS +
    LOGIN_TIMEOUT_SECONDS * 1_000 +
    runs * ((warmup + duration) * 1_000 + 2 * RUN_SLACK_MS) +
    (2 * duration + 1 + warmup) * 1_000 +
    PROBE_DELAY_MS +
    3 * RUN_SLACK_MS +
    30_000;
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
      `${connections} connections, ${warmup} s warm-up + ${duration} s per run; ` +
      `logins with ${loginConnections} connections, ${PROBE_PATH} probed ${PROBE_RATE}/s`,
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

    const credentials = await demoCredentials(logFile);
    const accessToken = await login(servers.service.baseUrl, credentials);
    const headersOf = (c: Case): Record<string, string> =>
      c.bearer ? { authorization: `Bearer ${accessToken}` } : {};

    const sink = await startSink();
    const redisUp = await reachable(REDIS_URL);
    if (!redisUp) console.log(`note: ${REDIS_URL} unreachable, the Redis cases are left out`);
    const cases = CASES.filter((c) => c.variant !== 'redis' || redisUp);
    const variants = [...new Set(cases.map((c) => c.variant))];

    const results: CaseResult[] = [];
    for (const variant of variants) {
      let service: Server = servers.service;
      if (variant !== 'memory') {
        const variantData = mkdtempSync(path.join(os.tmpdir(), 'bench-pglite-'));
        tempDirs.push(variantData);
        service = await startService(
          path.join(resultsDir, `${stamp}-service-${variant}.log`),
          variantData,
          VARIANTS[variant].env({ sinkUrl: sink.url }),
        );
      }
      const baseOf = (target: Target) => (target === 'raw' ? servers.raw! : service).baseUrl;
      console.log(`variant ${variant}: ${VARIANTS[variant].describe}`);
      for (const c of cases.filter((k) => k.variant === variant)) {
        for (const target of TARGETS) {
          const request: LoadRequest = { url: `${baseOf(target)}${c.path}`, headers: headersOf(c) };
          const bodyBytes = await verify(request.url, request.headers);
          process.stdout.write(`  ${c.name} / ${target} ... `);
          // Each run gets its own warm-up so the JIT and connection setup of that route are out of the numbers.
          if (warmup > 0) await load(generator, request, warmup, connections);
          const m = await load(generator, request, duration, connections);
          const flagged = m.non2xx > 0 || m.errors > 0;
          results.push({ case: c.name, path: c.path, bearer: c.bearer, target, bodyBytes, flagged, ...m });
          console.log(
            `${m.requestsPerSecond.toFixed(0)} req/s${flagged ? ` (${m.non2xx} non-2xx, ${m.errors} errors)` : ''}`,
          );
        }
      }
      if (service !== servers.service) await stop(service.child);
    }
    const traceExports = sink.exports();
    await sink.close();

    const outage = redisUp
      ? await redisOutage(generator, { stamp, duration, warmup, connections })
      : undefined;

    const loginLoad = await loginUnderLoad(generator, servers.service.baseUrl, credentials, {
      duration,
      warmup,
      connections: loginConnections,
    });

    console.log(`\n${table(results)}\n`);
    console.log(`Logins under load (service only)\n${loginTable(loginLoad)}\n`);
    if (outage !== undefined) console.log(`Redis killed mid-run (service only)\n${outageTable(outage)}\n`);
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
        identity: 'demo admin (SEED_DEMO_USER=true), one access token for the whole run',
        rateLimits:
          process.env.RATE_LIMITS === undefined
            ? 'raised above the load'
            : 'RATE_LIMITS from the environment',
        loginConnections,
        probeRatePerSecond: PROBE_RATE,
      },
      results: results.map((r) => ({
        case: r.case,
        path: r.path,
        bearer: r.bearer,
        target: r.target,
        requestsPerSecond: round(r.requestsPerSecond, 1),
        latencyP50Ms: round(r.p50Ms, 3),
        latencyP99Ms: round(r.p99Ms, 3),
        latencyMaxMs: round(r.maxMs, 3),
        requests: r.requests,
        non2xx: r.non2xx,
        errors: r.errors,
        errorDetail: r.errorDetail,
        flagged: r.flagged,
        bodyBytes: r.bodyBytes,
      })),
      variants: Object.fromEntries(variants.map((v) => [v, VARIANTS[v].describe])),
      ratios: cases.map((c) => {
        const ratio = ratioOf(results, c.name);
        return {
          case: c.name,
          variant: c.variant,
          serviceOverRawRequestsPerSecond: ratio === null ? null : round(ratio, 3),
          target: c.target ?? null,
        };
      }),
      traceExportsReceived: traceExports,
      redis_outage:
        outage === undefined
          ? null
          : {
              path: '/v1/random?min=1&max=100',
              killedAfterSeconds: round(outage.killedAfterSeconds, 1),
              durationSeconds: duration,
              requestsPerSecond: round(outage.requestsPerSecond, 1),
              latencyP50Ms: round(outage.p50Ms, 3),
              latencyP99Ms: round(outage.p99Ms, 3),
              latencyMaxMs: round(outage.maxMs, 3),
              limiterRedisDeadlineMs: REDIS_DEADLINE_MS,
              non2xx: outage.non2xx,
              errors: outage.errors,
              rateLimitStoreErrors: outage.storeErrors,
              readinessAfter: outage.readiness,
              flagged: outage.flagged,
            },
      login_under_load: {
        login: {
          method: 'POST',
          path: LOGIN_PATH,
          connections: loginLoad.connections,
          durationSeconds: duration + 1,
          requestsPerSecond: round(loginLoad.login.requestsPerSecond, 1),
          latencyP50Ms: round(loginLoad.login.p50Ms, 3),
          latencyP99Ms: round(loginLoad.login.p99Ms, 3),
          latencyMaxMs: round(loginLoad.login.maxMs, 3),
          requests: loginLoad.login.requests,
          non2xx: loginLoad.login.non2xx,
          errors: loginLoad.login.errors,
          errorDetail: loginLoad.login.errorDetail,
          flagged: loginLoad.login.flagged,
        },
        healthLiveBaseline: probeJson(loginLoad.healthBaseline),
        healthLiveUnderLoad: probeJson(loginLoad.healthUnderLoad),
        probe: `sequential GETs, ${PROBE_RATE}/s, one keep-alive connection, for ${duration} s`,
      },
      serviceLog: path.relative(root, logFile),
    };
    const jsonFile = path.join(resultsDir, `${report.date}.json`);
    writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`results: ${path.relative(root, jsonFile)}`);
    const flagged =
      results.filter((r) => r.flagged).length +
      [loginLoad.login, loginLoad.healthBaseline, loginLoad.healthUnderLoad].filter((r) => r.flagged).length;
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
