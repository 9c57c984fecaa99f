// The report: table formatting for the console, and what goes to bench/results (the service logs, the JSON
// results with the machine and commit they came from, the history of every run, the profile summaries).
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resultsDir, root } from './common.js';
import type { LoadGenerator } from './loadgen.js';
import { clockTicks } from './processes.js';
import { round } from './statistics.js';

export function formatTable(header: string[], rows: string[][], numeric: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const format = (row: string[]) =>
    row
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(format)].join('\n');
}

/** The `notes` cell of a run with non-2xx answers or socket errors. */
export const flagNote = (r: { flagged: boolean; non2xx: number; errors: number }) =>
  r.flagged ? `FLAGGED: ${r.non2xx} non-2xx, ${r.errors} errors` : '';

/** bench/results/<stamp>-service[-<variant>].log (git ignores them); creates bench/results. */
export function serviceLog(stamp: string, variant?: string): string {
  mkdirSync(resultsDir, { recursive: true });
  return path.join(resultsDir, `${stamp}-service${variant === undefined ? '' : `-${variant}`}.log`);
}

export function gitCommit(): string {
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : 'unknown';
}

/** Whether the service's sources differ from the commit (then the commit alone does not say what ran). */
export function sourcesChanged(): boolean | null {
  const git = spawnSync('git', ['status', '--porcelain', '--', 'src', 'migrations', 'package-lock.json'], {
    cwd: root,
    encoding: 'utf8',
  });
  return git.status === 0 ? git.stdout.trim() !== '' : null;
}

/** The JSON results of `npm run bench`: when, which commit, which machine and settings, then the sections. */
export function benchReport(options: {
  startedAt: Date;
  pinning: boolean;
  generator: LoadGenerator;
  settings: Record<string, unknown>;
  sections: Record<string, unknown>;
  serviceLog: string;
}) {
  const { startedAt, pinning, generator, settings, sections, serviceLog } = options;
  const cpus = os.cpus();
  return {
    date: startedAt.toISOString().slice(0, 10),
    startedAt: startedAt.toISOString(),
    commit: gitCommit(),
    machine: {
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      cpuCount: cpus.length,
      totalMemoryBytes: os.totalmem(),
      totalMemoryGiB: round(os.totalmem() / 1024 ** 3, 1),
      platform: os.platform(),
      arch: os.arch(),
      osRelease: os.release(),
      node: process.version,
      clockTicksPerSecond: clockTicks(),
      taskset: pinning,
      wrk: generator === 'wrk',
    },
    settings,
    ...sections,
    serviceLog: path.relative(root, serviceLog),
  };
}

/** Writes bench/results/<fileName> (pretty JSON) and prints its path. */
export function writeResults(fileName: string, data: unknown): void {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, fileName);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`results: ${path.relative(root, file)}`);
}

/** Writes bench/results/<fileName> as it is and prints its path. */
export function writeText(fileName: string, text: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, fileName);
  writeFileSync(file, text);
  console.log(`written: ${path.relative(root, file)}`);
  return file;
}

export const HISTORY_FILE = path.join(resultsDir, 'history.jsonl');

/** Appends one line of JSON to bench/results/history.jsonl (one per run, never rewritten). */
export function appendHistory(entry: unknown): void {
  mkdirSync(resultsDir, { recursive: true });
  appendFileSync(HISTORY_FILE, `${JSON.stringify(entry)}\n`);
  console.log(`history: appended to ${path.relative(root, HISTORY_FILE)}`);
}
