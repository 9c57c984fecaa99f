// The scenarios in order, on one rig, with the report both `npm run chaos` and the CI test use.
import { execFileSync } from 'node:child_process';
import type { Load } from './rig/load.js';
import { Rig } from './rig/rig.js';
import * as scenario from './scenarios.js';
import { describeSamples, type Check, type ScenarioResult, type Timing } from './scenarios.js';

export const FULL: Timing = { rate: 100, outageSeconds: 10, settleSeconds: 3 };
export const SHORT: Timing = { rate: 60, outageSeconds: 4, settleSeconds: 1 };
const LIMIT = 100;

export interface Report {
  date: string;
  node: string;
  commit: string;
  timing: Timing;
  limit: number;
  scenarios: ScenarioResult[];
  writes: Check[];
}

export async function runScenarios(timing: Timing, log: (line: string) => void = () => {}): Promise<Report> {
  const rig = await Rig.start({ limit: LIMIT, log });
  const loads: Load[] = [];
  const results: ScenarioResult[] = [];
  const steps = [
    scenario.rollingRestart,
    scenario.replicaKilled,
    scenario.postgresStopped,
    scenario.redisKilled,
    scenario.sharedLimit,
    scenario.revocation,
    scenario.networkCut,
  ];
  for (const step of steps) {
    const before = loads.length;
    const result = await step(rig, timing, (load) => loads.push(load));
    const refused = loads.slice(before).flatMap((l) => l.samples.filter((s) => s.outcome === '4xx'));
    if (refused.length > 0) result.notes.push(`other 4xx: ${describeSamples(refused)}`);
    results.push(result);
    log(
      `${result.name}: ${result.checks.map((c) => `${c.ok ? 'ok' : 'FAILED'} ${c.name} (${c.detail})`).join('; ')}`,
    );
  }
  const writes = await scenario.writesKept(rig, loads);
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // Not a checkout.
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    commit,
    timing,
    limit: LIMIT,
    scenarios: results,
    writes,
  };
}

const ms = (n: number) => `${Math.round(n)}`;

export function table(report: Report): string {
  const header = [
    'scenario',
    'requests',
    '2xx',
    '429',
    '503',
    'other 4xx',
    '5xx',
    'socket',
    'timeout',
    'resent',
    'p50 ms',
    'p99 ms',
    'max ms',
    'recovery',
    'invariants',
  ];
  const rows = report.scenarios.map((s) => [
    s.name,
    String(s.summary.requests),
    ...(['2xx', '429', '503', '4xx', '5xx', 'socket', 'timeout'] as const).map((o) =>
      String(s.summary.counts[o]),
    ),
    String(s.summary.retried),
    ms(s.summary.p50),
    ms(s.summary.p99),
    ms(s.summary.max),
    s.recovery === undefined ? '-' : `${ms(s.recovery.ms)} ms (${s.recovery.what})`,
    s.checks.every((c) => c.ok)
      ? 'hold'
      : `FAILED: ${s.checks
          .filter((c) => !c.ok)
          .map((c) => c.name)
          .join('; ')}`,
  ]);
  const lines = [header, ...rows].map((r) => `| ${r.join(' | ')} |`);
  lines.splice(1, 0, `| ${header.map(() => '---').join(' | ')} |`);
  const details = report.scenarios.flatMap((s) => [
    `${s.name}:`,
    ...s.checks.map((c) => `  ${c.ok ? 'ok' : 'FAILED'} ${c.name}: ${c.detail}`),
    ...s.notes.map((n) => `  note: ${n}`),
  ]);
  const writes = report.writes.map((c) => `${c.ok ? 'ok' : 'FAILED'} ${c.name}: ${c.detail}`);
  return [
    `rate ${report.timing.rate} req/s, outages ${report.timing.outageSeconds} s, ${report.node}, ${report.commit}`,
    '',
    ...lines,
    '',
    ...details,
    '',
    ...writes,
  ].join('\n');
}
