// `npm run bench:workers`: the built service with one worker process against two (WEB_CONCURRENCY), on the
// real PostgreSQL, loaded by wrk. Nothing is pinned: two workers need both cores, so the load generator
// shares them, and its own CPU time is measured and reported beside the service's (a fair reading of the
// ratio needs both). Rounds alternate 1, 2, 1, 2, ... so drift on a shared machine hits both alike; the
// table gives the median and the spread. Writes bench/results/<date>-workers.json.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { root } from './lib/common.js';
import { wrkWithCpuTime } from './lib/loadgen.js';
import { cpuSeconds, freePort, spawnService, stop } from './lib/processes.js';
import { writeResults } from './lib/report.js';
import { createDatabase } from './lib/setup.js';
import { median } from './lib/statistics.js';

const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PATH = '/v1/random?min=1&max=100';
const UNLIMITED = { limit: 1_000_000_000, window_seconds: 1, burst: 1_000_000_000 };

/** The service with `workers` worker processes on `databaseUrl`; its stdout dropped, its stderr inherited. */
async function startService(workers: number, databaseUrl: string) {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ENVIRONMENT: 'test',
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    WEB_CONCURRENCY: String(workers),
    LOG_LEVEL: 'info',
    SHUTDOWN_DRAIN_SECONDS: '0',
    RATE_LIMITS: JSON.stringify({ api: { anonymous: UNLIMITED } }),
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  };
  return spawnService({ port, env, pollMs: 50 });
}

interface Round {
  workers: number;
  requestsPerSecond: number;
  p99Ms: number;
  serviceCpuSeconds: number;
  wrkCpuSeconds: number;
}

async function main() {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed (apt-get install wrk)');
  spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const database = await createDatabase(POSTGRES_URL, `bench_workers_${process.pid}`);
  const rounds: Round[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const workers of [1, 2]) {
        const service = await startService(workers, database.url);
        // Warm-up: JIT and pools, not measured.
        spawnSync('wrk', ['-t2', `-c${CONNECTIONS}`, '-d3s', `${service.baseUrl}${PATH}`]);
        const before = cpuSeconds(service.child.pid!);
        const run = wrkWithCpuTime(`${service.baseUrl}${PATH}`, {
          threads: 2,
          connections: CONNECTIONS,
          seconds: DURATION_S,
        });
        const serviceCpuSeconds = cpuSeconds(service.child.pid!) - before;
        const measured = {
          requestsPerSecond: run.measurement.requestsPerSecond,
          p99Ms: run.measurement.p99Ms,
          wrkCpuSeconds: run.cpuSeconds,
        };
        rounds.push({ workers, ...measured, serviceCpuSeconds });
        console.log(
          `round ${round + 1}, ${workers} worker(s): ${Math.round(measured.requestsPerSecond)} req/s, p99 ${measured.p99Ms.toFixed(1)} ms, service CPU ${serviceCpuSeconds.toFixed(1)} s, wrk CPU ${measured.wrkCpuSeconds.toFixed(1)} s over ${DURATION_S} s`,
        );
        await stop(service.child);
      }
    }
  } finally {
    await database.drop();
  }
  const summary = [1, 2].map((workers) => {
    const mine = rounds.filter((r) => r.workers === workers);
    const rps = mine.map((r) => r.requestsPerSecond);
    return {
      workers,
      medianRequestsPerSecond: Math.round(median(rps)),
      spread: [Math.round(Math.min(...rps)), Math.round(Math.max(...rps))],
      medianP99Ms: median(mine.map((r) => r.p99Ms)),
      medianServiceCores: median(mine.map((r) => r.serviceCpuSeconds / DURATION_S)),
      medianWrkCores: median(mine.map((r) => r.wrkCpuSeconds / DURATION_S)),
    };
  });
  console.log('\n| workers | req/s (median) | spread | p99 ms | service CPU (cores) | wrk CPU (cores) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const s of summary)
    console.log(
      `| ${s.workers} | ${s.medianRequestsPerSecond} | ${s.spread[0]}-${s.spread[1]} | ${s.medianP99Ms.toFixed(1)} | ${s.medianServiceCores.toFixed(2)} | ${s.medianWrkCores.toFixed(2)} |`,
    );
  console.log(
    `\n2 workers / 1 worker: ${(summary[1]!.medianRequestsPerSecond / summary[0]!.medianRequestsPerSecond).toFixed(2)}x on ${os.availableParallelism()} cores (wrk shares them)`,
  );
  writeResults(`${new Date().toISOString().slice(0, 10)}-workers.json`, {
    node: process.version,
    cpus: os.availableParallelism(),
    durationSeconds: DURATION_S,
    connections: CONNECTIONS,
    rounds,
    summary,
  });
}

await main();
