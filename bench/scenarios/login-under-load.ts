// Logins under load, on the service only: wrk/autocannon logs in over and over while the prober times
// /health/live; before it, the prober alone gives the baseline. Not a ratio: the raw server has no password
// hashing to compare with.
import { setTimeout as sleep } from 'node:timers/promises';
import { LOGIN_PATH, LOGIN_TIMEOUT_SECONDS, type Credentials } from '../lib/identity.js';
import { load, type LoadRequest, type LoadSettings, type Measurement } from '../lib/loadgen.js';
import { PROBE_RATE, probe, type ProbeResult } from '../lib/probe.js';
import { flagNote, formatTable } from '../lib/report.js';
import { round } from '../lib/statistics.js';

export const PROBE_PATH = '/health/live';
// The prober starts this long after the login load, and the login load lasts one second longer than the
// probe, so that every probe is sent while logins run (both generators need a moment to start).
export const PROBE_DELAY_MS = 500;

export interface LoginUnderLoad {
  connections: number;
  login: Measurement & { flagged: boolean };
  healthBaseline: ProbeResult;
  healthUnderLoad: ProbeResult;
}

export async function loginUnderLoad(
  baseUrl: string,
  credentials: Credentials,
  settings: LoadSettings,
): Promise<LoginUnderLoad> {
  const { generator, duration, warmup, connections } = settings;
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

/** The login run and the two probes that flagged (non-2xx answers or errors). */
export const flaggedRuns = (l: LoginUnderLoad) =>
  [l.login, l.healthBaseline, l.healthUnderLoad].filter((r) => r.flagged).length;

export function loginTable(l: LoginUnderLoad): string {
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

/** The `login_under_load` section of the JSON results; `duration` is the probes' length in seconds. */
export function loginJson(l: LoginUnderLoad, duration: number) {
  return {
    login: {
      method: 'POST',
      path: LOGIN_PATH,
      connections: l.connections,
      durationSeconds: duration + 1,
      requestsPerSecond: round(l.login.requestsPerSecond, 1),
      latencyP50Ms: round(l.login.p50Ms, 3),
      latencyP99Ms: round(l.login.p99Ms, 3),
      latencyMaxMs: round(l.login.maxMs, 3),
      requests: l.login.requests,
      non2xx: l.login.non2xx,
      errors: l.login.errors,
      errorDetail: l.login.errorDetail,
      flagged: l.login.flagged,
    },
    healthLiveBaseline: probeJson(l.healthBaseline),
    healthLiveUnderLoad: probeJson(l.healthUnderLoad),
    probe: `sequential GETs, ${PROBE_RATE}/s, one keep-alive connection, for ${duration} s`,
  };
}
