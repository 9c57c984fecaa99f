// `npm run bench:workers`: the built service with one worker process against two (WEB_CONCURRENCY), on the
// real PostgreSQL, loaded by wrk. Nothing is pinned: two workers need both cores, so the load generator
// shares them, and its own CPU time is measured and reported beside the service's (a fair reading of the
// ratio needs both). Rounds alternate 1, 2, 1, 2, ... so drift on a shared machine hits both alike; the
// table gives the median and the spread. Writes bench/results/<date>-workers.json.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PATH = '/v1/random?min=1&max=100';
const TICKS = 100; // USER_HZ: /proc reports CPU time in 1/100 s on Linux
const UNLIMITED = { limit: 1_000_000_000, window_seconds: 1, burst: 1_000_000_000 };

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) of `pid` and every process whose parent it is. */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) === pid || Number(fields[1]) === pid)
        ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / TICKS;
}

async function startService(
  workers: number,
  databaseUrl: string,
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: {
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
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/health/ready`)).status === 200) return { child, url };
    } catch {
      // not yet
    }
    await sleep(50);
  }
  throw new Error('service did not become ready');
}

interface Round {
  workers: number;
  requestsPerSecond: number;
  p99Ms: number;
  serviceCpuSeconds: number;
  wrkCpuSeconds: number;
}

function runWrk(url: string): { requestsPerSecond: number; p99Ms: number; wrkCpuSeconds: number } {
  // `times` after wrk prints the CPU time of the shell's children: wrk's own user and system time.
  const out = spawnSync(
    'bash',
    ['-c', `wrk -t2 -c${CONNECTIONS} -d${DURATION_S}s --latency '${url}${PATH}'; times`],
    { encoding: 'utf8' },
  ).stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  const p99Ms = p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : Number.NaN;
  const children = out.trim().split('\n').at(-1)!.split(/\s+/);
  const seconds = (t: string) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  };
  return { requestsPerSecond: rps, p99Ms, wrkCpuSeconds: seconds(children[0]!) + seconds(children[1]!) };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main() {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed (apt-get install wrk)');
  spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const name = `bench_workers_${process.pid}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const rounds: Round[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const workers of [1, 2]) {
        const service = await startService(workers, url.toString());
        // Warm-up: JIT and pools, not measured.
        spawnSync('wrk', ['-t2', `-c${CONNECTIONS}`, '-d3s', `${service.url}${PATH}`]);
        const before = cpuSeconds(service.child.pid!);
        const measured = runWrk(service.url);
        const serviceCpuSeconds = cpuSeconds(service.child.pid!) - before;
        rounds.push({ workers, ...measured, serviceCpuSeconds });
        console.log(
          `round ${round + 1}, ${workers} worker(s): ${Math.round(measured.requestsPerSecond)} req/s, p99 ${measured.p99Ms.toFixed(1)} ms, service CPU ${serviceCpuSeconds.toFixed(1)} s, wrk CPU ${measured.wrkCpuSeconds.toFixed(1)} s over ${DURATION_S} s`,
        );
        service.child.kill('SIGTERM');
        await new Promise((resolve) => service.child.once('exit', resolve));
      }
    }
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
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
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().slice(0, 10)}-workers.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ node: process.version, cpus: os.availableParallelism(), durationSeconds: DURATION_S, connections: CONNECTIONS, rounds, summary }, null, 2)}\n`,
  );
  console.log(`results: ${path.relative(root, file)}`);
}

await main();
