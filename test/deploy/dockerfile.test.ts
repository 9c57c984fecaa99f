// The container image's contract, read from deploy/docker/Dockerfile with a real Dockerfile parser: stages,
// pinned bases, production dependencies only, a non-root user, probes and signals, labels, and an
// environment that the configuration schema accepts. There is no Docker engine here; the runtime stage
// itself is rehearsed in image-rehearsal.test.ts.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  DockerfileParser,
  From,
  JSONInstruction,
  type Healthcheck,
  type Instruction,
  type PropertyInstruction,
} from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { settings } from '../../src/config/schema.js';

const root = path.resolve(import.meta.dirname, '../..');
const dockerfileText = readFileSync(path.join(root, 'deploy/docker/Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(dockerfileText);

interface Stage {
  from: From;
  name: string | null;
  instructions: Instruction[];
}

const stages: Stage[] = [];
for (const instruction of dockerfile.getInstructions()) {
  if (instruction instanceof From) {
    stages.push({ from: instruction, name: instruction.getBuildStage(), instructions: [] });
  } else {
    stages.at(-1)?.instructions.push(instruction);
  }
}
const final = stages.at(-1)!;

const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.getKeyword() === keyword);
const words = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const runs = (stage: Stage) => of(stage, 'RUN').map((i) => words(i).join(' '));
const flag = (i: Instruction, name: string) =>
  (i as JSONInstruction)
    .getFlags()
    .find((f) => f.getName() === name)
    ?.getValue();
const json = (i: Instruction) => (i as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());
const properties = (stage: Stage, keyword: 'ENV' | 'LABEL' | 'ARG') =>
  new Map(
    of(stage, keyword).flatMap((i) =>
      (i as PropertyInstruction).getProperties().map((p) => [p.getName(), p.getValue() ?? ''] as const),
    ),
  );

/** `${NAME}` or `$NAME` -> NAME; anything else -> undefined. */
const variable = (value: string) => /^\$\{?(\w+)\}?$/.exec(value)?.[1];

describe('Dockerfile stages and base images', () => {
  it('when the image is built, then it goes through deps, build and runtime stages, runtime last', () => {
    expect(stages.map((s) => s.name)).toEqual(['deps', 'build', 'runtime']);
  });

  it('when a stage starts from an image, then the image is node 24 bookworm-slim pinned by digest, never latest', () => {
    const names = new Set<string>();
    for (const { from, name } of stages) {
      const image = from.getImage() ?? '';
      if (names.has(image)) {
        // Builds on an earlier stage of this file.
      } else {
        expect(image, `FROM ${image}`).toMatch(/^node:24\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/);
        expect(from.getImageTag()).not.toBe('latest');
        expect(from.getImageDigest()).toMatch(/^sha256:[0-9a-f]{64}$/);
      }
      if (name) names.add(name);
    }
    // One base for every stage, so a digest refresh cannot leave a stage behind.
    const external = stages.map((s) => s.from.getImage()).filter((i) => !names.has(i ?? ''));
    expect(new Set(external).size).toBe(1);
    expect(dockerfileText).toContain('docker buildx imagetools inspect');
  });

  it('when dependencies are installed, then deps runs npm ci with an npm cache mount and build runs scripts/build.mjs', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    const install = of(deps, 'RUN').find((i) => words(i).join(' ').includes('npm ci'));
    expect(install, 'deps: RUN npm ci').toBeDefined();
    expect(flag(install!, 'mount')).toMatch(/type=cache.*target=\/root\/\.npm/);
    expect(runs(stages.find((s) => s.name === 'build')!)).toContain('node scripts/build.mjs');
  });
});

describe('runtime stage', () => {
  it('when production dependencies are installed, then it is npm ci --omit=dev and nothing installs dev dependencies', () => {
    const npm = runs(final).filter((r) => /\bnpm\b/.test(r));
    expect(npm.length).toBeGreaterThan(0);
    for (const command of npm) {
      expect(command).toMatch(/\bnpm ci\b/);
      expect(command).toContain('--omit=dev');
      expect(command).not.toMatch(/\bnpm (install|i)\b/);
    }
  });

  it('when files are copied in, then only package.json, the lockfile and the built dist/ arrive, owned by root', () => {
    const copies = of(final, 'COPY').map((i) => ({ from: flag(i, 'from'), args: words(i) }));
    expect(copies).toEqual([
      { from: undefined, args: ['package.json', 'package-lock.json', './'] },
      { from: 'build', args: ['/app/dist', './dist'] },
    ]);
    for (const i of [...of(final, 'COPY'), ...of(final, 'ADD')]) {
      expect(flag(i, 'chown'), 'COPY --chown would let the app user write its own code').toBeUndefined();
    }
    expect(of(final, 'ADD')).toEqual([]);
    expect(of(final, 'WORKDIR').map(words)).toEqual([['/app']]);
    expect(runs(final).join('\n')).not.toMatch(/chown[^\n]*\/app|chmod[^\n]*\/app/);
  });

  it('when the container runs, then it runs as uid and gid 10001, created without a shell or home directory', () => {
    const users = of(final, 'USER').map((i) => words(i).join(' '));
    expect(users.at(-1)).toMatch(/^10001(:10001)?$/);
    const setup = runs(final).join('\n');
    expect(setup).toMatch(/groupadd [^\n]*(--gid|-g) 10001/);
    expect(setup).toMatch(/useradd [^\n]*(--uid|-u) 10001/);
    expect(setup).toMatch(/useradd [^\n]*(--no-create-home|-M)\b/);
    expect(setup).toMatch(/useradd [^\n]*(--shell|-s) \/usr\/sbin\/nologin/);
    // USER comes after every RUN: nothing in the final image was created by the app user.
    const lastRun = of(final, 'RUN').at(-1)!.getRange().start.line;
    expect(of(final, 'USER').at(-1)!.getRange().start.line).toBeGreaterThan(lastRun);
  });

  it('when the container is probed, then HEALTHCHECK uses node fetch on /health/live, never curl or wget', () => {
    const [healthcheck, ...more] = of(final, 'HEALTHCHECK') as Healthcheck[];
    expect(healthcheck).toBeDefined();
    expect(more).toEqual([]);
    expect(healthcheck!.getSubcommand()?.getValue()).toBe('CMD');
    const args = words(healthcheck!);
    const command = JSON.parse(args.slice(args.indexOf('CMD') + 1).join(' ')) as string[];
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain('/health/live');
    expect(command.join(' ')).toContain('process.env.PORT');
    const everything = [...runs(final), command.join(' ')].join('\n');
    expect(everything).not.toMatch(/\b(curl|wget)\b/);
  });

  it('when a signal arrives, then tini is PID 1 (installed from apt) and node serves the built CLI', () => {
    const entrypoint = of(final, 'ENTRYPOINT').at(-1)!;
    expect(entrypoint).toBeInstanceOf(JSONInstruction);
    const [init, ...initArgs] = json(entrypoint);
    expect(init).toMatch(/(^|\/)tini$/);
    expect(initArgs).toContain('--');
    expect(runs(final).join('\n')).toMatch(/apt-get install [^\n]*\btini\b/);
    const cmd = json(of(final, 'CMD').at(-1)!);
    expect(cmd).toEqual(['node', 'dist/src/cli/main.js', 'serve']);
    // The global setup has built dist/: the path the image runs is one the build produces.
    expect(existsSync(path.join(root, cmd[1]!))).toBe(true);
    const stop = of(final, 'STOPSIGNAL').map(words);
    expect(stop.every(([s]) => s === 'SIGTERM')).toBe(true);
  });

  it('when the image is labelled, then the OCI source, version and revision come from build arguments', () => {
    const args = properties(final, 'ARG');
    const labels = properties(final, 'LABEL');
    expect(variable(labels.get('org.opencontainers.image.version') ?? '')).toBe('VERSION');
    expect(variable(labels.get('org.opencontainers.image.revision') ?? '')).toBe('COMMIT');
    const source = variable(labels.get('org.opencontainers.image.source') ?? '');
    expect(source).toBeDefined();
    for (const name of ['VERSION', 'COMMIT', source!]) expect(args.has(name), `ARG ${name}`).toBe(true);
    expect(variable(properties(final, 'ENV').get('APP_COMMIT') ?? '')).toBe('COMMIT');
  });

  it('when the port is exposed, then it is the PORT default of the configuration schema', () => {
    const exposed = of(final, 'EXPOSE').flatMap(words);
    expect(exposed).toEqual([settings.PORT.default]);
    expect(properties(final, 'ENV').get('PORT')).toBe(settings.PORT.default);
  });

  it('when the environment is set, then every name is a setting (or NODE_ENV) and every value passes its schema', () => {
    const env = properties(final, 'ENV');
    const args = properties(final, 'ARG');
    expect(Object.fromEntries(env)).toMatchObject({
      NODE_ENV: 'production',
      ENVIRONMENT: 'production',
      PORT: '8000',
      DATA_DIR: '/data',
    });
    for (const [name, raw] of env) {
      if (name === 'NODE_ENV') continue;
      expect(Object.keys(settings), `ENV ${name} is not a setting`).toContain(name);
      const ref = variable(raw);
      const value = ref === undefined ? raw : (args.get(ref) ?? '');
      const parsed = settings[name as keyof typeof settings].schema.safeParse(value);
      expect(parsed.success, `ENV ${name}=${value}`).toBe(true);
    }
  });

  it('when the app writes, then the only writable place besides /tmp is the DATA_DIR volume, owned by 10001', () => {
    const dataDir = properties(final, 'ENV').get('DATA_DIR');
    const volumes = of(final, 'VOLUME').flatMap((i) => (i instanceof JSONInstruction ? json(i) : words(i)));
    expect(volumes).toEqual([dataDir]);
    expect(runs(final).join('\n')).toMatch(
      new RegExp(`install -d -o 10001 -g 10001 -m 0?7[0-5]{2} ${dataDir!.replace('/', '\\/')}\\b`),
    );
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(path.join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('when the build context is sent, then secrets, local state, tests and build output stay out', () => {
    for (const required of [
      '.git',
      '.env',
      '.env.*',
      'node_modules',
      'dist',
      'coverage',
      'data',
      'test',
      'bench/results',
      '.ci/node24',
    ]) {
      expect(patterns, `.dockerignore needs ${required}`).toContain(required);
    }
  });

  it('when a stage copies from the context, then the source exists and no ignore pattern excludes it', () => {
    // Docker's matching, reduced to what this file uses: `*` within a path segment, a match on a directory
    // excludes everything below it, and `!` re-includes.
    const escape = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    const toRegExp = (p: string) => {
      const body = p
        .replace(/^\/+/, '')
        .split('**')
        .map((part) =>
          part
            .split('*')
            .map((s) => s.split('?').map(escape).join('[^/]'))
            .join('[^/]*'),
        )
        .join('.*');
      return new RegExp(`^${body}(/.*)?$`);
    };
    const ignored = (file: string) =>
      patterns.reduce(
        (excluded, p) => (toRegExp(p.replace(/^!/, '')).test(file) ? !p.startsWith('!') : excluded),
        false,
      );
    expect(ignored('.env.production')).toBe(true);
    expect(ignored('test/unit/config.test.ts')).toBe(true);

    const sources = stages.flatMap((stage) =>
      of(stage, 'COPY')
        .filter((i) => flag(i, 'from') === undefined)
        .flatMap((i) => words(i).slice(0, -1)),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(path.join(root, source)), `COPY ${source}: no such file`).toBe(true);
      expect(ignored(source), `COPY ${source} is excluded by .dockerignore`).toBe(false);
    }
  });
});
