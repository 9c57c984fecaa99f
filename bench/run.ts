// Load benchmark (`npm run bench`): the built service and a bare node:http baseline, each pinned to core 0,
// loaded by wrk (else autocannon) pinned to core 1. The service runs in variants (rate limiting on the
// memory or the Redis store, tracing on); every case is measured in interleaved pairs (raw, service) and
// reported as the median ratio with its spread, with each server's CPU time per request. The comparison,
// and a fixed-rate latency run, repeat on Node 24 when a binary is available. Then, on the bench's own
// Node.js: a load run through which the limiter's Redis is killed, logins under load while a prober times
// /health/live, and a CPU profile of one case. Prints the tables; writes bench/results/<date>.json and
// profile-<date>.txt, and appends a line to bench/results/history.jsonl.
//
// This is the driver: it reads the settings, starts the servers, runs the scenarios of bench/scenarios/
// and reports; the parts they share are in bench/lib/.
import path from 'node:path';
import { BenchError, intSetting, root } from './lib/common.js';
import { CREDENTIALS_TIMEOUT_MS, LOGIN_TIMEOUT_SECONDS, demoCredentials, login } from './lib/identity.js';
import { chooseGenerator, type LoadSettings } from './lib/loadgen.js';
import { PROBE_RATE } from './lib/probe.js';
import {
  READY_TIMEOUT_MS,
  RUN_SLACK_MS,
  cleanup,
  enablePinning,
  installSignalHandlers,
  isInterrupted,
  startWatchdog,
  stop,
} from './lib/processes.js';
import {
  appendHistory,
  benchReport,
  gitCommit,
  serviceLog,
  sourcesChanged,
  writeResults,
  writeText,
} from './lib/report.js';
import { chooseRuntimes } from './lib/runtimes.js';
import { REDIS_URL, pgliteDir, reachable, serviceSettings, startServers } from './lib/setup.js';
import { profileCase, profileJson, profileText } from './scenarios/cpu-profile.js';
import {
  LATENCY_CASE,
  LATENCY_PATH,
  fixedRateLatency,
  latencyJson,
  latencyTable,
  type LatencyResult,
} from './scenarios/fixed-rate-latency.js';
import {
  PROBE_DELAY_MS,
  PROBE_PATH,
  flaggedRuns,
  loginJson,
  loginTable,
  loginUnderLoad,
  type LoginUnderLoad,
} from './scenarios/login-under-load.js';
import { outageJson, outageTable, redisOutage, type OutageResult } from './scenarios/redis-outage.js';
import {
  CASES,
  comparisonHistory,
  comparisonJson,
  comparisonTable,
  runComparison,
  serviceRequestsPerSecond,
  type Comparison,
} from './scenarios/service-vs-raw.js';

async function main(): Promise<number> {
  const connections = intSetting('BENCH_CONNECTIONS', 50, 1, 10_000);
  const duration = intSetting('BENCH_DURATION', 10, 1, 600);
  const warmup = intSetting('BENCH_WARMUP', 3, 0, 60);
  const pairs = intSetting('BENCH_PAIRS', 3, 1, 20);
  const loginConnections = intSetting('BENCH_LOGIN_CONNECTIONS', 16, 1, 1_000);
  const generator = chooseGenerator(process.env.BENCH_LOADGEN?.trim() || 'auto');
  const pinning = enablePinning();
  const settings: LoadSettings = { generator, duration, warmup, connections };
  const { runtimes, note: runtimeNote } = chooseRuntimes();

  // The watchdog bounds the whole run, whatever hangs: per runtime, the start-ups (the service of each
  // variant, the raw server), the demo admin's log line and login, every case (two warm-ups, 2 x pairs
  // measured runs) and the fixed-rate run; on the first runtime also the Redis outage and the logins under
  // load (probe alone; warm-up; logins with the probe); then the profiled service and every shutdown.
  const run = (seconds: number) => seconds * 1_000 + 2 * RUN_SLACK_MS;
  const variants = new Set(CASES.map((c) => c.variant)).size;
  const perRuntime =
    (variants + 1) * READY_TIMEOUT_MS +
    CREDENTIALS_TIMEOUT_MS +
    LOGIN_TIMEOUT_SECONDS * 1_000 +
    CASES.length * (2 * run(warmup) + 2 * pairs * run(duration)) +
    run(warmup + duration + 5);
  const budgetMs =
    runtimes.length * perRuntime +
    READY_TIMEOUT_MS +
    run(warmup + duration) + // Redis outage
    (2 * duration + 1 + warmup) * 1_000 +
    PROBE_DELAY_MS +
    3 * RUN_SLACK_MS + // logins under load
    READY_TIMEOUT_MS +
    2 * run(warmup + duration) + // the profile
    60_000;
  const watchdog = startWatchdog(budgetMs);

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');

  console.log(
    `bench: ${generator}${pinning ? ', servers on core 0, load on core 1' : ', no CPU pinning'}; ` +
      `${connections} connections, per case ${warmup} s warm-up then ${pairs} pair(s) of ${duration} s runs ` +
      `(raw, service); servers on ${runtimes.map((r) => `node ${r.version}`).join(' and ')}; ` +
      `logins with ${loginConnections} connections, ${PROBE_PATH} probed ${PROBE_RATE}/s`,
  );
  if (runtimeNote !== undefined) console.log(`note: ${runtimeNote}`);
  try {
    const redisUp = await reachable(REDIS_URL);
    if (!redisUp) console.log(`note: ${REDIS_URL} unreachable, the Redis cases are left out`);
    const cases = CASES.filter((c) => c.variant !== 'redis' || redisUp);

    const comparisons: Comparison[] = [];
    const latencies: LatencyResult[] = [];
    let outage: OutageResult | undefined;
    let loginLoad: LoginUnderLoad | undefined;
    const primaryLog = serviceLog(stamp);
    for (const [index, runtime] of runtimes.entries()) {
      const primary = index === 0;
      const logFile = primary ? primaryLog : serviceLog(stamp, runtime.tag);
      console.log(`\nnode ${runtime.version} (${runtime.execPath})`);
      const servers = await startServers(logFile, pgliteDir(), runtime);
      console.log(`service log: ${path.relative(root, logFile)}`);
      const credentials = await demoCredentials(logFile);
      const accessToken = await login(servers.service.baseUrl, credentials);
      const comparison = await runComparison(settings, {
        stamp,
        runtime,
        servers,
        accessToken,
        cases,
        pairs,
        logPrefix: primary ? '' : `${runtime.tag}-`,
      });
      comparisons.push(comparison);
      const max = serviceRequestsPerSecond(comparison, LATENCY_CASE);
      if (max !== undefined && max > 0) {
        latencies.push(await fixedRateLatency(servers.service.baseUrl, runtime, max, settings));
      }
      if (primary) {
        outage = redisUp ? await redisOutage(settings, stamp) : undefined;
        loginLoad = await loginUnderLoad(servers.service.baseUrl, credentials, {
          ...settings,
          connections: loginConnections,
        });
      }
      // Stopped before the next runtime's: nothing of this one runs on core 0 while that one is measured.
      await Promise.all([stop(servers.service.child), stop(servers.raw.child)]);
    }
    console.log('\nCPU profile');
    const profile = await profileCase(settings, stamp, runtimes[0]!);

    for (const comparison of comparisons) console.log(`\n${comparisonTable(comparison)}`);
    console.log(`\nFixed-rate latency (service only)\n${latencyTable(latencies)}\n`);
    if (loginLoad !== undefined) console.log(`Logins under load (service only)\n${loginTable(loginLoad)}\n`);
    if (outage !== undefined) console.log(`Redis killed mid-run (service only)\n${outageTable(outage)}\n`);

    const commit = gitCommit();
    const date = startedAt.toISOString().slice(0, 10);
    const text = profileText(profile, { commit, startedAt, settings });
    console.log(text.split('\n').slice(0, 12).join('\n'));
    const profileFile = path.relative(root, writeText(`profile-${date}.txt`, text));
    const report = benchReport({
      startedAt,
      pinning,
      generator,
      settings: {
        connections,
        durationSeconds: duration,
        warmupSeconds: warmup,
        pairs,
        loadGenerator: generator,
        runtimes: runtimes.map((r) => r.version),
        ...serviceSettings(),
        loginConnections,
        probeRatePerSecond: PROBE_RATE,
      },
      sections: {
        runtimes: comparisons.map(comparisonJson),
        fixed_rate_latency: latencyJson(latencies, duration),
        redis_outage: outageJson(outage, duration),
        login_under_load: loginLoad === undefined ? null : loginJson(loginLoad, duration),
        cpu_profile: profileJson(profile, profileFile),
      },
      serviceLog: primaryLog,
    });
    writeResults(`${report.date}.json`, report);
    appendHistory({
      date: startedAt.toISOString(),
      commit,
      sourcesChanged: sourcesChanged(),
      node: runtimes.map((r) => r.version),
      loadGenerator: generator,
      settings: { connections, durationSeconds: duration, warmupSeconds: warmup, pairs },
      cases: comparisons.flatMap(comparisonHistory),
      fixedRateLatency: latencies.map((l) => ({
        node: l.runtime.version,
        path: LATENCY_PATH,
        rate: l.rate,
        p50Ms: Number(l.p50Ms.toFixed(3)),
        p99Ms: Number(l.p99Ms.toFixed(3)),
        maxMs: Number(l.maxMs.toFixed(3)),
        meetsGoal: l.meetsGoal,
        flagged: l.flagged,
      })),
      profile: profileFile,
    });
    const flaggedCases = comparisons.flatMap((c) => c.results).filter((r) => r.flagged).length;
    const flaggedOther =
      (loginLoad === undefined ? 0 : flaggedRuns(loginLoad)) + latencies.filter((l) => l.flagged).length;
    if (flaggedCases > 0) {
      console.log(`warning: ${flaggedCases} case(s) flagged (noisy, or non-2xx responses or errors)`);
    }
    if (flaggedOther > 0)
      console.log(`warning: ${flaggedOther} other run(s) had non-2xx responses or errors`);
    return 0;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

installSignalHandlers();

// After a signal the handler installed above owns the exit (and its code); main() only unwinds.
main().then(
  (code) => {
    if (!isInterrupted()) process.exit(code);
  },
  async (error: unknown) => {
    if (isInterrupted()) return;
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!(error instanceof BenchError) && error instanceof Error && error.stack) {
      process.stderr.write(`${error.stack}\n`);
    }
    await cleanup();
    process.exit(1);
  },
);
