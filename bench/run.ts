// Load benchmark (`npm run bench`): the built service and a bare node:http baseline, each pinned to core 0,
// loaded by wrk (else autocannon) pinned to core 1. The service runs in variants (rate limiting on the
// memory or the Redis store, tracing on), each case next to its own baseline run; then logins under load
// while a prober times /health/live, and a load run through which the limiter's Redis is killed. Prints the
// tables; writes bench/results/<date>.json.
//
// This is the driver: it reads the settings, starts the shared servers, runs the scenarios of
// bench/scenarios/ and reports; the parts they share are in bench/lib/.
import path from 'node:path';
import { BenchError, intSetting, root } from './lib/common.js';
import { CREDENTIALS_TIMEOUT_MS, LOGIN_TIMEOUT_SECONDS, demoCredentials, login } from './lib/identity.js';
import { chooseGenerator, type LoadSettings } from './lib/loadgen.js';
import { PROBE_RATE } from './lib/probe.js';
import {
  READY_TIMEOUT_MS,
  RUN_SLACK_MS,
  TARGETS,
  cleanup,
  enablePinning,
  installSignalHandlers,
  isInterrupted,
  startWatchdog,
} from './lib/processes.js';
import { benchReport, serviceLog, writeResults } from './lib/report.js';
import { REDIS_URL, pgliteDir, reachable, serviceSettings, startServers } from './lib/setup.js';
import {
  PROBE_DELAY_MS,
  PROBE_PATH,
  flaggedRuns,
  loginJson,
  loginTable,
  loginUnderLoad,
} from './scenarios/login-under-load.js';
import { outageJson, outageTable, redisOutage } from './scenarios/redis-outage.js';
import {
  CASES,
  VARIANTS,
  comparisonJson,
  comparisonTable,
  runComparison,
} from './scenarios/service-vs-raw.js';

async function main(): Promise<number> {
  const connections = intSetting('BENCH_CONNECTIONS', 50, 1, 10_000);
  const duration = intSetting('BENCH_DURATION', 10, 1, 600);
  const warmup = intSetting('BENCH_WARMUP', 3, 0, 60);
  const loginConnections = intSetting('BENCH_LOGIN_CONNECTIONS', 16, 1, 1_000);
  const generator = chooseGenerator(process.env.BENCH_LOADGEN?.trim() || 'auto');
  const pinning = enablePinning();
  const settings: LoadSettings = { generator, duration, warmup, connections };

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
  const watchdog = startWatchdog(budgetMs);

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const logFile = serviceLog(stamp);
  const dataDir = pgliteDir();

  console.log(
    `bench: ${generator}${pinning ? ', servers on core 0, load on core 1' : ', no CPU pinning'}; ` +
      `${connections} connections, ${warmup} s warm-up + ${duration} s per run; ` +
      `logins with ${loginConnections} connections, ${PROBE_PATH} probed ${PROBE_RATE}/s`,
  );
  try {
    const servers = await startServers(logFile, dataDir);
    console.log(`service log: ${path.relative(root, logFile)}`);

    const credentials = await demoCredentials(logFile);
    const accessToken = await login(servers.service.baseUrl, credentials);

    const redisUp = await reachable(REDIS_URL);
    if (!redisUp) console.log(`note: ${REDIS_URL} unreachable, the Redis cases are left out`);
    const cases = CASES.filter((c) => c.variant !== 'redis' || redisUp);

    const comparison = await runComparison(settings, { stamp, servers, accessToken, cases });
    const outage = redisUp ? await redisOutage(settings, stamp) : undefined;
    const loginLoad = await loginUnderLoad(servers.service.baseUrl, credentials, {
      ...settings,
      connections: loginConnections,
    });

    console.log(`\n${comparisonTable(comparison.results)}\n`);
    console.log(`Logins under load (service only)\n${loginTable(loginLoad)}\n`);
    if (outage !== undefined) console.log(`Redis killed mid-run (service only)\n${outageTable(outage)}\n`);
    const report = benchReport({
      startedAt,
      pinning,
      generator,
      settings: {
        connections,
        durationSeconds: duration,
        warmupSeconds: warmup,
        loadGenerator: generator,
        ...serviceSettings(),
        loginConnections,
        probeRatePerSecond: PROBE_RATE,
      },
      sections: {
        ...comparisonJson(comparison),
        redis_outage: outageJson(outage, duration),
        login_under_load: loginJson(loginLoad, duration),
      },
      serviceLog: logFile,
    });
    writeResults(`${report.date}.json`, report);
    const flagged = comparison.results.filter((r) => r.flagged).length + flaggedRuns(loginLoad);
    if (flagged > 0)
      console.log(`warning: ${flagged} run(s) had non-2xx responses or errors (FLAGGED above)`);
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
