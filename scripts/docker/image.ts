// `npm run image`: builds deploy/docker/Dockerfile on a real Docker engine on a machine that has no Docker
// service and no registry access (this project's CI machines): a private engine (engine.ts) whose data root
// is kept in .cache/engine, so stand-in base images (standins.ts) and build layers are reused by the next
// run. The Dockerfile is the one users build; only NODE_IMAGE names the local stand-in of the pinned node
// image. With a registry, `npm run docker:build` is the plain `docker build`.
//
//   npm run image                       # build reliability-api:<version>, print its size
//   npm run image -- --save image.tar   # and write it with `docker save`
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEngine, type Engine } from './engine.js';
import { ensureStandins, STANDIN } from './standins.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface BuiltImage {
  tag: string;
  seconds: number;
  bytes: number;
}

/** Builds the project's Dockerfile on `engine` and tags it; `nodeImage` overrides the NODE_IMAGE default. */
export function buildImage(
  engine: Engine,
  options: { tag: string; nodeImage?: string; version?: string; commit?: string },
): BuiltImage {
  const version =
    options.version ??
    (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const args = ['build', '-f', 'deploy/docker/Dockerfile', '-t', options.tag];
  args.push('--build-arg', `VERSION=${version}`, '--build-arg', `COMMIT=${options.commit ?? 'local'}`);
  if (options.nodeImage !== undefined) args.push('--build-arg', `NODE_IMAGE=${options.nodeImage}`);
  const started = performance.now();
  engine.docker(['--log-level', 'error', ...args, ROOT], { timeoutMs: 900_000 });
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  const bytes = Number(engine.docker(['image', 'inspect', '--format', '{{.Size}}', options.tag]).trim());
  return { tag: options.tag, seconds, bytes };
}

export const megabytes = (bytes: number) => Math.round(bytes / 1e5) / 10;

async function main() {
  const { values } = parseArgs({ options: { save: { type: 'string' }, tag: { type: 'string' } } });
  const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const tag = values.tag ?? `reliability-api:${version}`;
  const engine = await startEngine(path.join(ROOT, '.cache/engine'), { keepData: true });
  try {
    const took = ensureStandins(engine, path.join(ROOT, '.cache/engine/work'), ['node']);
    for (const [name, seconds] of Object.entries(took))
      if (seconds > 0) console.log(`stand-in ${name} built in ${seconds} s`);
    const built = buildImage(engine, { tag, nodeImage: STANDIN.node, version, commit });
    console.log(`${built.tag}: ${megabytes(built.bytes)} MB, built in ${built.seconds} s`);
    if (values.save !== undefined) {
      engine.docker(['save', '-o', path.resolve(values.save), tag], { timeoutMs: 300_000 });
      console.log(`saved to ${values.save} (docker load -i ${values.save})`);
    }
  } finally {
    await engine.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
