// A CPU profile of one case: the service (default configuration) started on its own with `node --cpu-prof`
// into a temporary directory, loaded with GET /v1/random?min=1&max=100 (warm-up and measured run, as in the
// table), stopped with SIGTERM so that Node.js writes the profile on exit; the top functions by self time go
// to bench/results/profile-<date>.txt. The .cpuprofile itself is removed with the temporary directory.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { BenchError } from '../lib/common.js';
import { summarizeProfile, type CpuProfile, type ProfileSummary } from '../lib/cpuprofile.js';
import { load, verify, type LoadSettings } from '../lib/loadgen.js';
import { stop, tempDir, type Runtime } from '../lib/processes.js';
import { formatTable, serviceLog } from '../lib/report.js';
import { pgliteDir, startService } from '../lib/setup.js';

export const PROFILE_PATH = '/v1/random?min=1&max=100';
export const PROFILE_TOP = 15;
// The shutdown closes the database and flushes the log before the profile is written.
const PROFILE_STOP_TIMEOUT_MS = 30_000;

export interface ProfileRun {
  runtime: Runtime;
  requestsPerSecond: number;
  summary: ProfileSummary;
}

export async function profileCase(
  settings: LoadSettings,
  stamp: string,
  runtime: Runtime,
): Promise<ProfileRun> {
  const { generator, duration, warmup, connections } = settings;
  const dir = tempDir('bench-cpuprof-');
  process.stdout.write(`  ${PROFILE_PATH} on the service with --cpu-prof (node ${runtime.version}) ... `);
  const service = await startService(
    serviceLog(stamp, 'profile'),
    pgliteDir(),
    {},
    { runtime, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] },
  );
  let requestsPerSecond: number;
  // The measured run's bounds on CLOCK_MONOTONIC, the clock of the profile's timestamps, so that start-up
  // (migrations, the embedded database) and shutdown stay out of the summary.
  const nowUs = () => Number(process.hrtime.bigint() / 1_000n);
  let window: { fromUs: number; toUs: number };
  try {
    const url = `${service.baseUrl}${PROFILE_PATH}`;
    await verify(url);
    if (warmup > 0) await load(generator, { url }, warmup, connections);
    const fromUs = nowUs();
    requestsPerSecond = (await load(generator, { url }, duration, connections)).requestsPerSecond;
    window = { fromUs, toUs: nowUs() };
  } finally {
    await stop(service.child, PROFILE_STOP_TIMEOUT_MS);
  }
  const pid = service.child.pid;
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: the main thread's is thread 0.
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const file = files.find((f) => f.includes(`.${pid}.0.`)) ?? files[0];
  if (file === undefined) {
    throw new BenchError(
      `the service wrote no .cpuprofile (exit ${service.child.exitCode ?? service.child.signalCode})`,
    );
  }
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
  const summary = summarizeProfile(profile, PROFILE_TOP, window);
  console.log(`${requestsPerSecond.toFixed(0)} req/s under the profiler, ${summary.samples} samples`);
  return { runtime, requestsPerSecond, summary };
}

/** The text of bench/results/profile-<date>.txt. */
export function profileText(
  run: ProfileRun,
  context: { commit: string; startedAt: Date; settings: LoadSettings },
): string {
  const { summary } = run;
  const { generator, duration, warmup, connections } = context.settings;
  const lines = [
    `CPU profile, self time by function (every call path summed), top ${summary.top.length}`,
    `service GET ${PROFILE_PATH} under ${generator}, ${connections} connections, ${warmup} s warm-up + ${duration} s ` +
      `(${run.requestsPerSecond.toFixed(0)} req/s while profiled); node ${run.runtime.version} --cpu-prof`,
    `commit ${context.commit}, ${context.startedAt.toISOString()}`,
    `${summary.samples} of ${summary.totalSamples} samples, ${(summary.durationMs / 1_000).toFixed(1)} s: ` +
      (summary.windowed
        ? 'the measured run only (warm-up, start-up and shutdown left out)'
        : "the process's whole life (start-up and shutdown included; the run's window matched no sample)") +
      `; ${((summary.idleMs / Math.max(summary.durationMs, 1)) * 100).toFixed(1)}% idle`,
    '',
  ];
  const header = ['rank', 'self ms', 'self %', 'function', 'location'];
  const rows = summary.top.map((t, i) => [
    String(i + 1),
    t.selfMs.toFixed(1),
    `${(t.share * 100).toFixed(1)}%`,
    t.functionName,
    t.location,
  ]);
  lines.push(formatTable(header, rows, new Set([0, 1, 2])));
  return `${lines.join('\n')}\n`;
}

export function profileJson(run: ProfileRun, file: string) {
  return {
    node: run.runtime.version,
    path: PROFILE_PATH,
    requestsPerSecond: Math.round(run.requestsPerSecond),
    samples: run.summary.samples,
    totalSamples: run.summary.totalSamples,
    measuredRunOnly: run.summary.windowed,
    file,
    top: run.summary.top.map((t) => ({
      functionName: t.functionName,
      location: t.location,
      selfMs: Math.round(t.selfMs * 10) / 10,
      share: Math.round(t.share * 10_000) / 10_000,
    })),
  };
}
