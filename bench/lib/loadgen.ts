// Load generators: wrk (one thread, pinned to the load core) or, when it is not installed, autocannon (a
// child Node.js process), their output parsed into one Measurement. wrk takes a request's method and body
// only from a Lua script, written to the scratch directory.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { BenchError, root } from './common.js';
import { RUN_SLACK_MS, commandExists, runToEnd, scratch } from './processes.js';

export interface Measurement {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  errorDetail: Record<string, number>;
}

export interface LoadRequest {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Seconds before the generator gives up on a response and counts an error; the generator's default else. */
  timeoutSeconds?: number;
}

export type LoadGenerator = 'wrk' | 'autocannon';

/** What a scenario's load runs share: the generator, and each run's length and connections. */
export interface LoadSettings {
  generator: LoadGenerator;
  /** Seconds measured per run. */
  duration: number;
  /** Seconds of discarded warm-up before each run. */
  warmup: number;
  connections: number;
}

/** The generator BENCH_LOADGEN asks for: `wrk`, `autocannon`, or `auto` (wrk when it is installed). */
export function chooseGenerator(requested: string): LoadGenerator {
  if (!['auto', 'wrk', 'autocannon'].includes(requested)) {
    throw new BenchError(`BENCH_LOADGEN must be auto, wrk or autocannon, got "${requested}"`);
  }
  const hasWrk = commandExists('wrk');
  if (requested === 'wrk' && !hasWrk) throw new BenchError('BENCH_LOADGEN=wrk but wrk is not installed');
  return requested === 'autocannon' || !hasWrk ? 'autocannon' : 'wrk';
}

/** Fails unless the URL answers 200; returns the body size so the JSON shows the baseline is comparable. */
export async function verify(url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  const body = await response.arrayBuffer();
  if (response.status !== 200) throw new BenchError(`GET ${url} answered ${response.status}, expected 200`);
  return body.byteLength;
}

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

/** The Measurement in the output of `wrk --latency`. */
export function parseWrk(output: string): Measurement {
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

/** One load run on core 1, bounded by its duration plus RUN_SLACK_MS. */
export async function load(
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

/**
 * A GET load run of wrk, unpinned and synchronous, with wrk's own CPU seconds (user + system): `times`
 * after wrk prints the CPU time of the shell's children. For bench:workers, where wrk shares the cores.
 */
export function wrkWithCpuTime(
  url: string,
  { threads, connections, seconds }: { threads: number; connections: number; seconds: number },
): { measurement: Measurement; cpuSeconds: number } {
  const out = spawnSync(
    'bash',
    ['-c', `wrk -t${threads} -c${connections} -d${seconds}s --latency '${url}'; times`],
    { encoding: 'utf8' },
  ).stdout;
  const children = out.trim().split('\n').at(-1)!.split(/\s+/);
  const time = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  };
  return { measurement: parseWrk(out), cpuSeconds: time(children[0]!) + time(children[1]!) };
}
