// The probe: bench/lib/prober.mjs, sequential GETs at a fixed rate, each timed with performance.now(), in
// a child process pinned to the load core (in the bench's own process it could run on the server's core).
// One request at a time on one keep-alive connection: a stall shows as one long sample (the max), not as
// many.
import path from 'node:path';
import { BenchError } from './common.js';
import { RUN_SLACK_MS, runToEnd } from './processes.js';
import { percentile } from './statistics.js';

// Sequential probes per second.
export const PROBE_RATE = 100;
// A probe slower than this counts as an error (and flags the run) rather than as a latency.
const PROBE_TIMEOUT_MS = 5_000;
const PROBER = path.join(import.meta.dirname, 'prober.mjs');

export interface ProbeResult {
  samples: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  flagged: boolean;
}

export async function probe(url: string, seconds: number): Promise<ProbeResult> {
  const args = [PROBER, url, String(seconds), String(PROBE_RATE), String(PROBE_TIMEOUT_MS)];
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
