// The Node.js runtimes the servers under test run on: the one running the bench, and Node 24 when a binary
// is available (BENCH_NODE24, else the one `.ci/run` installs in .ci/node24). The load generators always run
// on the bench's own Node.js.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { BenchError, root } from './common.js';
import { currentRuntime, runtimeOf, type Runtime } from './processes.js';

/** Where `.ci/run` installs Node 24 (`npm install --prefix .ci/node24 node@24`). */
export const CI_NODE24 = path.join(root, '.ci', 'node24', 'node_modules', 'node', 'bin', 'node');
const SKIP = new Set(['none', 'off', 'skip', '0', 'false']);

function versionOf(execPath: string): string {
  const out = spawnSync(execPath, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = out.stdout?.trim() ?? '';
  if (out.status !== 0 || !/^v\d+\./.test(version)) {
    throw new BenchError(`${execPath} --version failed: ${out.error?.message ?? out.stderr?.trim() ?? ''}`);
  }
  return version;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The runtimes to run the comparison on, the bench's own first, and a note when Node 24 is left out.
 * BENCH_NODE24: a path to a Node 24 binary, or `none` to leave Node 24 out; unset, .ci/node24's when present.
 */
export function chooseRuntimes(): { runtimes: Runtime[]; note?: string } {
  const own = currentRuntime();
  const setting = process.env.BENCH_NODE24?.trim() ?? '';
  if (SKIP.has(setting.toLowerCase())) {
    return { runtimes: [own], note: `Node 24 left out (BENCH_NODE24=${setting})` };
  }
  let execPath: string;
  if (setting !== '') {
    execPath = path.resolve(setting);
    if (!executable(execPath)) throw new BenchError(`BENCH_NODE24=${setting} is not an executable file`);
  } else if (executable(CI_NODE24)) {
    execPath = CI_NODE24;
  } else {
    return {
      runtimes: [own],
      note:
        `Node 24 left out: BENCH_NODE24 is unset and ${path.relative(root, CI_NODE24)} does not exist ` +
        `(npm install --no-save --prefix .ci/node24 node@24 installs it)`,
    };
  }
  const version = versionOf(execPath);
  if (!version.startsWith('v24.')) {
    throw new BenchError(`${execPath} is Node.js ${version}, not 24 (BENCH_NODE24 names a Node 24 binary)`);
  }
  if (own.version.startsWith('v24.')) {
    return { runtimes: [own], note: `the bench already runs on Node ${own.version}: one runtime` };
  }
  return { runtimes: [own, runtimeOf(execPath, version)] };
}
