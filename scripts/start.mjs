// `npm start`: build when dist/ is missing or older than any source file, then serve.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');

function newest(dir) {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    const stat = statSync(file);
    latest = Math.max(latest, stat.isDirectory() ? newest(file) : stat.mtimeMs);
  }
  return latest;
}

const sourcesTime = Math.max(newest(path.join(root, 'src')), newest(path.join(root, 'migrations')));
if (!existsSync(stamp) || statSync(stamp).mtimeMs < sourcesTime) {
  const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// Run the CLI in this process (not a child) so signals from npm, a terminal or an orchestrator reach it.
const main = path.join(root, 'dist', 'src', 'cli', 'main.js');
const args = process.argv.slice(2);
process.argv = [process.argv[0], main, ...(args.length > 0 ? args : ['serve'])];
await import(pathToFileURL(main).href);
