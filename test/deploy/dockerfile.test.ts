// The container image's contract, read from deploy/docker/Dockerfile with a real Dockerfile parser: stages,
// pinned bases, production dependencies only, a non-root user, probes and signals, labels, and an
// environment that the configuration schema accepts. test/engine/stack.test.ts builds and runs the image
// on a real Docker engine.
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
/** ARGs before the first FROM: the only variables a FROM line may use. */
const globalArgs = new Map<string, string>();
for (const instruction of dockerfile.getInstructions()) {
  if (instruction instanceof From) {
    stages.push({ from: instruction, name: instruction.getBuildStage(), instructions: [] });
  } else if (stages.length === 0 && instruction.getKeyword() === 'ARG') {
    for (const p of (instruction as PropertyInstruction).getProperties())
      globalArgs.set(p.getName(), p.getValue() ?? '');
  } else {
    stages.at(-1)?.instructions.push(instruction);
  }
}
/** The image a FROM line names once its `${ARG}` is replaced with the global ARG's default. */
const baseOf = (from: From) => {
  const image = from.getImage() ?? '';
  const name = variable(image);
  return name === undefined ? image : (globalArgs.get(name) ?? image);
};
const final = stages.at(-1)!;
const stage = (name: string) => stages.find((s) => s.name === name)!;

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
    expect(stages.map((s) => s.name)).toEqual(['deps', 'build', 'modules', 'rootfs', 'runtime']);
  });

  it('when a stage starts from an image, then the image is node 24 bookworm-slim pinned by digest, never latest', () => {
    const names = new Set<string>();
    for (const { from, name } of stages) {
      const image = baseOf(from);
      if (names.has(image)) {
        // Builds on an earlier stage of this file.
      } else if (name === 'runtime' && image === 'scratch') {
        // The runtime starts empty and gets its root filesystem from the rootfs stage.
      } else {
        expect(image, `FROM ${image}`).toMatch(/^node:24\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/);
      }
      if (name) names.add(name);
    }
    // One base for every stage, so a digest refresh cannot leave a stage behind: every FROM that does not
    // build on a stage names the NODE_IMAGE build argument, whose default is that pinned image.
    const external = stages
      .map((s) => s.from.getImage() ?? '')
      .filter((i) => !names.has(i) && i !== 'scratch');
    expect(new Set(external)).toEqual(new Set(['${NODE_IMAGE}']));
    expect(dockerfileText).toContain('docker buildx imagetools inspect');
    // The engine's built-in frontend builds it: no `# syntax=` line (it would pull a frontend image).
    expect(dockerfileText).not.toMatch(/^#\s*syntax\s*=/m);
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
  it('when production dependencies are installed, then it is npm ci --omit=dev, pruned, and nothing else installs', () => {
    const npm = runs(stage('modules')).filter((r) => /\bnpm\b/.test(r));
    expect(npm).toHaveLength(1);
    expect(npm[0]).toMatch(/\bnpm ci\b/);
    expect(npm[0]).toContain('--omit=dev');
    expect(npm[0]).not.toMatch(/\bnpm (install|i)\b/);
    // Type declarations, source maps and Markdown are deleted; licence files stay.
    for (const pattern of ["-name '*.d.ts'", "-name '*.map'", "-iname '*.md'", "! -iname 'licen[cs]e*'"])
      expect(npm[0]).toContain(pattern);
    for (const other of ['rootfs', 'runtime']) expect(runs(stage(other)).join('\n')).not.toMatch(/\bnpm\b/);
  });

  it('when the runtime is assembled, then it is FROM scratch with only node, its libraries, tini and the users', () => {
    expect(final.from.getImage()).toBe('scratch');
    // No RUN: the runtime has no shell to run one with.
    expect(of(final, 'RUN')).toEqual([]);
    const rootfs = runs(stage('rootfs')).join('\n');
    expect(rootfs).toContain('cp /usr/local/bin/node "$r/usr/local/bin/node"');
    expect(rootfs).toMatch(
      /ldd \/usr\/local\/bin\/node; find \/app\/node_modules -name '\*\.node' -exec ldd/,
    );
    // The filesystem is tried before it is shipped: node starts inside it.
    expect(rootfs).toContain('chroot "$r" /usr/local/bin/node');
    expect(rootfs).not.toMatch(/\bcp\b[^\n]*\/bin\/(ba|da)?sh\b/);
  });

  it('when files are copied in, then only the root filesystem, package.json, the lockfile, the pruned modules and dist/ arrive, owned by root', () => {
    const copies = of(final, 'COPY').map((i) => ({ from: flag(i, 'from'), args: words(i) }));
    expect(copies).toEqual([
      { from: 'rootfs', args: ['/rootfs/', '/'] },
      { from: undefined, args: ['package.json', 'package-lock.json', './'] },
      { from: 'modules', args: ['/app/node_modules', './node_modules'] },
      { from: 'build', args: ['/app/dist', './dist'] },
    ]);
    for (const i of [...of(final, 'COPY'), ...of(final, 'ADD')]) {
      expect(flag(i, 'chown'), 'COPY --chown would let the app user write its own code').toBeUndefined();
    }
    expect(of(final, 'ADD')).toEqual([]);
    expect(of(final, 'WORKDIR').map(words)).toEqual([['/app']]);
    expect(runs(final).join('\n')).not.toMatch(/chown[^\n]*\/app|chmod[^\n]*\/app/);
  });

  it('when the container runs, then it runs as uid and gid 10001, which has no shell or home directory', () => {
    const users = of(final, 'USER').map((i) => words(i).join(' '));
    expect(users).toEqual(['10001:10001']);
    const setup = runs(stage('rootfs')).join('\n');
    expect(setup).toContain("'app:x:10001:10001:app:/nonexistent:/usr/sbin/nologin'");
    expect(setup).toContain("'app:x:10001:'");
    expect(setup).toMatch(/> "\$r\/etc\/passwd"/);
    expect(setup).toMatch(/> "\$r\/etc\/group"/);
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
    const everything = [...stages.flatMap(runs), command.join(' ')].join('\n');
    expect(everything).not.toMatch(/\b(curl|wget)\b/);
  });

  it('when a signal arrives, then tini is PID 1 (the static build, from apt) and node serves the built CLI', () => {
    const entrypoint = of(final, 'ENTRYPOINT').at(-1)!;
    expect(entrypoint).toBeInstanceOf(JSONInstruction);
    const [init, ...initArgs] = json(entrypoint);
    expect(init).toMatch(/(^|\/)tini$/);
    expect(initArgs).toContain('--');
    expect(runs(stage('rootfs')).join('\n')).toMatch(/apt-get install [^\n]*\btini=/);
    expect(runs(stage('rootfs')).join('\n')).toContain(`cp /usr/bin/tini-static "$r${init}"`);
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
    // An image FROM scratch has no PATH of its own.
    expect(env.get('PATH')).toBe('/usr/local/bin:/usr/bin');
    for (const [name, raw] of env) {
      if (name === 'NODE_ENV' || name === 'PATH') continue;
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
    expect(runs(stage('rootfs')).join('\n')).toMatch(
      new RegExp(`install -d -o 10001 -g 10001 -m 0?7[0-5]{2} "\\$r${dataDir!.replace('/', '\\/')}"`),
    );
    expect(runs(stage('rootfs')).join('\n')).toContain('install -d -m 1777 "$r/tmp"');
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
