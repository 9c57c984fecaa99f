// Transpiles src/ and migrations/ to dist/ with esbuild (one file in, one file out; no bundling, so
// dependencies resolve from node_modules as usual). Type checking is `npm run typecheck`'s job.
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const sources = ['src', 'migrations'];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return walk(file);
    return file.endsWith('.ts') && !file.endsWith('.d.ts') ? [file] : [];
  });
}

rmSync(path.join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: sources.flatMap((dir) => walk(path.join(root, dir))),
  outdir: path.join(root, 'dist'),
  outbase: root,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
writeFileSync(path.join(root, 'dist', '.build-stamp'), `${new Date().toISOString()}\n`);
