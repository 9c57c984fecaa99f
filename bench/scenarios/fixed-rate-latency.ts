// Latency at a fixed rate, on the service only: GET /v1/random?min=1&max=100 at half the service's measured
// maximum for it (the median req/s of the `single` case on the same runtime), sent by bench/lib/fixed-rate.mjs
// on the load core: evenly spaced, open loop, each latency timed from when its request was due (wrk2's
// method). At a fixed number of connections (the table above) latency only mirrors throughput; at half the
// maximum it shows what a client waits when the server is not saturated. The goal is p99 <= 5 ms.
import path from 'node:path';
import { BenchError } from '../lib/common.js';
import type { LoadSettings } from '../lib/loadgen.js';
import { RUN_SLACK_MS, runToEnd, type Runtime } from '../lib/processes.js';
import { formatTable } from '../lib/report.js';
import { percentile, round } from '../lib/statistics.js';

export const LATENCY_PATH = '/v1/random?min=1&max=100';
/** The case of the comparison whose service req/s is the maximum. */
export const LATENCY_CASE = 'single';
/** The share of that maximum to send. */
export const RATE_SHARE = 0.5;
export const P99_GOAL_MS = 5;
const TIMEOUT_MS = 5_000;
const GENERATOR = path.join(import.meta.dirname, '..', 'lib', 'fixed-rate.mjs');

export interface LatencyResult {
  runtime: Runtime;
  maxRequestsPerSecond: number;
  rate: number;
  connections: number;
  due: number;
  achievedRequestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  /** How late the generator sent its latest request (it should stay well under a millisecond). */
  maxSendLagMs: number;
  meetsGoal: boolean;
  flagged: boolean;
}

export async function fixedRateLatency(
  baseUrl: string,
  runtime: Runtime,
  maxRequestsPerSecond: number,
  settings: LoadSettings,
): Promise<LatencyResult> {
  const { duration, warmup, connections } = settings;
  const rate = Math.max(1, Math.floor(maxRequestsPerSecond * RATE_SHARE));
  process.stdout.write(`  ${LATENCY_PATH} at ${rate} req/s (node ${runtime.version}) ... `);
  const args = [
    GENERATOR,
    `${baseUrl}${LATENCY_PATH}`,
    String(duration),
    String(warmup),
    String(rate),
    String(connections),
    String(TIMEOUT_MS),
  ];
  const out = await runToEnd(
    1,
    process.execPath,
    args,
    (warmup + duration) * 1_000 + TIMEOUT_MS + RUN_SLACK_MS,
  );
  if (out.code !== 0) {
    throw new BenchError(`the fixed-rate generator exited with ${out.code}:\n${out.stderr}${out.stdout}`);
  }
  let r: {
    latencies: number[];
    non2xx: number;
    errors: number;
    due: number;
    completed: number;
    maxSendLagMs: number;
  };
  try {
    r = JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '') as typeof r;
  } catch {
    throw new BenchError(`unexpected fixed-rate generator output:\n${out.stderr}${out.stdout}`);
  }
  const sorted = r.latencies.toSorted((a, b) => a - b);
  const p99Ms = percentile(sorted, 99);
  const result: LatencyResult = {
    runtime,
    maxRequestsPerSecond,
    rate,
    connections,
    due: r.due,
    achievedRequestsPerSecond: r.completed / duration,
    p50Ms: percentile(sorted, 50),
    p99Ms,
    maxMs: sorted.at(-1) ?? Number.NaN,
    non2xx: r.non2xx,
    errors: r.errors,
    maxSendLagMs: r.maxSendLagMs,
    meetsGoal: p99Ms <= P99_GOAL_MS,
    flagged: r.non2xx > 0 || r.errors > 0 || sorted.length === 0,
  };
  console.log(
    `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(2)} ms` +
      (result.flagged ? ` (${r.non2xx} non-2xx, ${r.errors} errors)` : ''),
  );
  return result;
}

export function latencyTable(results: LatencyResult[]): string {
  const header = [
    'node',
    'measured',
    'max req/s',
    'rate',
    'achieved',
    'p50 ms',
    'p99 ms',
    'max ms',
    'goal',
    'notes',
  ];
  const rows = results.map((r) => [
    r.runtime.version,
    `GET ${LATENCY_PATH}`,
    r.maxRequestsPerSecond.toFixed(0),
    String(r.rate),
    r.achievedRequestsPerSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.maxMs.toFixed(2),
    `p99 <= ${P99_GOAL_MS}`,
    [
      r.meetsGoal ? 'met' : 'MISSED',
      r.flagged ? `FLAGGED: ${r.non2xx} non-2xx, ${r.errors} errors` : '',
      r.maxSendLagMs > 1 ? `generator up to ${r.maxSendLagMs.toFixed(1)} ms late` : '',
    ]
      .filter((n) => n !== '')
      .join('; '),
  ]);
  return formatTable(header, rows, new Set([2, 3, 4, 5, 6, 7]));
}

export function latencyJson(results: LatencyResult[], duration: number) {
  return results.map((r) => ({
    node: r.runtime.version,
    path: LATENCY_PATH,
    maxRequestsPerSecond: round(r.maxRequestsPerSecond, 1),
    rateShare: RATE_SHARE,
    rate: r.rate,
    connections: r.connections,
    durationSeconds: duration,
    due: r.due,
    achievedRequestsPerSecond: round(r.achievedRequestsPerSecond, 1),
    latencyP50Ms: round(r.p50Ms, 3),
    latencyP99Ms: round(r.p99Ms, 3),
    latencyMaxMs: round(r.maxMs, 3),
    non2xx: r.non2xx,
    errors: r.errors,
    maxSendLagMs: round(r.maxSendLagMs, 3),
    p99GoalMs: P99_GOAL_MS,
    meetsGoal: r.meetsGoal,
    flagged: r.flagged,
  }));
}
