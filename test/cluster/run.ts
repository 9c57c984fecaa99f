// npm run chaos: the scale-out rig under steady load, every scenario at full length, a table on stdout
// and the figures as JSON under bench/results/. CHAOS_SHORT=1 runs the CI lengths.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, cleanupOnSignals } from './rig/processes.js';
import { networkFaultsPossible } from './rig/network.js';
import { runScenarios, FULL, SHORT, table } from './suite.js';

cleanupOnSignals();
const why = networkFaultsPossible();
if (why !== undefined) {
  process.stderr.write(`npm run chaos needs root with ip and iptables (network namespaces): ${why}\n`);
  process.exit(2);
}
const timing = process.env.CHAOS_SHORT === '1' ? SHORT : FULL;
try {
  const report = await runScenarios(timing, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${table(report)}\n`);
  const directory = new URL('../../bench/results/', import.meta.url).pathname;
  mkdirSync(directory, { recursive: true });
  const suffix = timing === SHORT ? '-short' : '';
  const file = path.join(directory, `${new Date().toISOString().slice(0, 10)}-chaos${suffix}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)}\n`);
  process.exitCode =
    report.scenarios.every((s) => s.checks.every((c) => c.ok)) && report.writes.every((c) => c.ok) ? 0 : 1;
} finally {
  await cleanup();
}
