// The short version of `npm run chaos`: every scale-out scenario at CI lengths (seconds, not minutes),
// asserting the invariants (no failed request where none may fail, no acknowledged write lost, no key
// created twice, the generous time bounds) and printing the table. It needs root, ip, iptables and nginx
// (.ci/run installs them); elsewhere a missing one skips this file with a warning, with CI=true it fails.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { networkFaultsPossible } from './rig/network.js';
import { cleanup } from './rig/processes.js';
import { runScenarios, SHORT, table, type Report } from './suite.js';

function missing(): string | undefined {
  const network = networkFaultsPossible();
  if (network !== undefined) return network;
  if (spawnSync('nginx', ['-v']).status !== 0) return 'nginx is not installed';
  if (spawnSync('redis-server', ['--version']).status !== 0) return 'redis-server is not installed';
  return undefined;
}

const why = missing();
if (why !== undefined) {
  if (process.env.CI === 'true') throw new Error(`the scale-out rig cannot run: ${why}; CI=true requires it`);
  process.stderr.write(`warning: the scale-out rig cannot run (${why}); its scenarios are skipped\n`);
}

describe.skipIf(why !== undefined)('three replicas behind nginx, under load (short scenarios)', () => {
  let report: Report | undefined;
  afterAll(cleanup, 30_000);

  it(
    'keeps every invariant through restarts, a crash and dependency outages',
    { timeout: 240_000 },
    async () => {
      report = await runScenarios(SHORT);
      process.stdout.write(`${table(report)}\n`);
      const broken = [
        ...report.scenarios.flatMap((s) =>
          s.checks.filter((c) => !c.ok).map((c) => `${s.name}: ${c.name}: ${c.detail}`),
        ),
        ...report.writes.filter((c) => !c.ok).map((c) => `writes: ${c.name}: ${c.detail}`),
      ];
      expect(broken).toEqual([]);
      // Every scenario ran and measured something, and the writes were checked.
      expect(report.scenarios.map((s) => s.name)).toHaveLength(7);
      for (const s of report.scenarios) expect(s.summary.requests).toBeGreaterThan(0);
      expect(report.writes.length).toBeGreaterThan(0);
    },
  );
});
