// Rehearses the image's runtime stage on this machine, which has no Docker engine: the files the runtime
// stage copies (read from deploy/docker/Dockerfile), its `npm ci --omit=dev`, an app directory the app user
// cannot write, and the image's CMD and HEALTHCHECK run as uid/gid 10001 with the image's environment in
// production mode, against the real PostgreSQL and Redis, with migrations run first as a deploy job would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DockerfileParser,
  From,
  type Healthcheck,
  type Instruction,
  type JSONInstruction,
  type PropertyInstruction,
} from 'dockerfile-ast';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { closedPort, createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/services.js';

const root = path.resolve(import.meta.dirname, '../..');
const APP_UID = 10001;
const ci = process.env.CI === 'true';
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const cannot =
  process.getuid?.() !== 0
    ? 'it must run as root to start the app as uid 10001 (setpriv)'
    : setpriv === undefined
      ? 'setpriv (util-linux) is not installed'
      : undefined;
if (cannot !== undefined && !ci) {
  process.stderr.write(`warning: image rehearsal skipped: ${cannot}\n`);
}

// The runtime stage, as the Dockerfile declares it.
const dockerfile = DockerfileParser.parse(readFileSync(path.join(root, 'deploy/docker/Dockerfile'), 'utf8'));
const runtime: Instruction[] = [];
for (const instruction of dockerfile.getInstructions()) {
  if (instruction instanceof From) runtime.length = 0;
  else runtime.push(instruction);
}
const of = (keyword: string) => runtime.filter((i) => i.getKeyword() === keyword);
const words = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const flag = (i: Instruction, name: string) =>
  (i as JSONInstruction)
    .getFlags()
    .find((f) => f.getName() === name)
    ?.getValue();
const props = (keyword: 'ENV' | 'ARG') =>
  new Map(
    of(keyword).flatMap((i) =>
      (i as PropertyInstruction).getProperties().map((p) => [p.getName(), p.getValue() ?? ''] as const),
    ),
  );
const cmd = (of('CMD').at(-1) as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());
const healthcheck = (() => {
  const args = words(of('HEALTHCHECK').at(-1) as Healthcheck);
  return JSON.parse(args.slice(args.indexOf('CMD') + 1).join(' ')) as string[];
})();
const npmCi = of('RUN')
  .map((i) => words(i).join(' '))
  .flatMap((r) => r.split('&&').map((s) => s.trim()))
  .find((s) => s.startsWith('npm ci'));

/** The image's ENV with build arguments substituted (`--build-arg NAME=value`). */
function imageEnv(buildArgs: Record<string, string>): Record<string, string> {
  const args = props('ARG');
  const env: Record<string, string> = {};
  for (const [name, value] of props('ENV')) {
    env[name] = value.replace(/\$\{?(\w+)\}?/g, (_, ref: string) => buildArgs[ref] ?? args.get(ref) ?? '');
  }
  return env;
}

/** Every path under `dir` with its type, mode, size and mtime: equal snapshots mean nothing was written. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (current: string) => {
    for (const name of readdirSync(current)) {
      const file = path.join(current, name);
      const stat = lstatSync(file);
      out.set(path.relative(dir, file), `${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs}`);
      if (stat.isDirectory()) walk(file);
    }
  };
  walk(dir);
  return out;
}

interface AppProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

describe.skipIf(!inject('postgresAvailable') || !inject('redisAvailable'))('image rehearsal', () => {
  const commit = `rehearsal-${randomBytes(6).toString('hex')}`;
  let base: string;
  let appDir: string;
  let tmpDir: string;
  let database: TestDatabase | undefined;
  let env: Record<string, string>;
  let port: number;
  let server: AppProcess | undefined;
  let before: Map<string, string>;

  /** Runs `node <args>` in the app directory as uid/gid 10001 with no supplementary groups. */
  function asAppUser(args: string[], extraEnv: Record<string, string> = {}): AppProcess {
    const child = spawn(
      setpriv!,
      [`--reuid=${APP_UID}`, `--regid=${APP_UID}`, '--clear-groups', process.execPath, ...args],
      { cwd: appDir, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => output, exited };
  }

  async function toEnd(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 30_000) {
    const running = asAppUser(args, extraEnv);
    const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
    const code = await running.exited;
    clearTimeout(timer);
    return { code, output: running.output() };
  }

  beforeAll(async () => {
    if (cannot !== undefined) return;
    // mkdtemp makes 0700 directories; the app user must be able to traverse to its files.
    base = mkdtempSync(path.join(tmpdir(), 'image-rehearsal-'));
    chmodSync(base, 0o755);
    appDir = path.join(base, 'app');
    tmpDir = path.join(base, 'tmp');
    mkdirSync(appDir, { mode: 0o755 });
    mkdirSync(tmpDir, { mode: 0o700 });
    chownSync(tmpDir, APP_UID, APP_UID);

    // COPY <context files> ./ and COPY --from=build /app/<path> ./<path>: the build stage's outputs are
    // this checkout's, built by the global setup.
    const workdir = words(of('WORKDIR').at(-1)!)[0]!;
    for (const copy of of('COPY')) {
      const [dest, ...sources] = words(copy).reverse();
      const from = flag(copy, 'from');
      for (const source of sources.reverse()) {
        const local =
          from === undefined ? source : path.relative(workdir, source.replace(/^(?!\/)/, `${workdir}/`));
        expect(from === undefined || from === 'build', `COPY --from=${from}`).toBe(true);
        expect(local.startsWith('..'), `COPY ${source} comes from outside the build stage's WORKDIR`).toBe(
          false,
        );
        const target = dest!.endsWith('/')
          ? path.join(appDir, dest!, path.basename(source))
          : path.join(appDir, dest!);
        cpSync(path.join(root, local), target, { recursive: true });
      }
    }

    // RUN npm ci --omit=dev ..., as root like the image build (the npm cache makes it fast).
    expect(npmCi, 'the runtime stage runs npm ci').toBeDefined();
    const [npm, ...npmArgs] = npmCi!.split(/\s+/);
    const installed = spawnSync(npm!, [...npmArgs, '--prefer-offline'], {
      cwd: appDir,
      encoding: 'utf8',
      timeout: 150_000,
    });
    expect(installed.status, `${npmCi}\n${installed.stderr}`).toBe(0);
    expect(existsSync(path.join(appDir, 'node_modules/fastify')), 'production dependencies').toBe(true);
    expect(existsSync(path.join(appDir, 'node_modules/vitest')), 'development dependencies').toBe(false);

    // /app in the image is root's and read-only to the app user; here every write bit goes.
    const locked = spawnSync('chmod', ['-R', 'a-w', appDir], { encoding: 'utf8' });
    expect(locked.status, locked.stderr).toBe(0);
    before = snapshot(appDir);

    database = await createTestDatabase('image');
    port = await closedPort();
    env = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      ...imageEnv({ COMMIT: commit, VERSION: 'rehearsal' }),
      HOME: '/nonexistent',
      TMPDIR: tmpDir,
      SETTINGS_SECRETS_DIR: '/nonexistent',
      HOST: '127.0.0.1',
      PORT: String(port),
      SECRET_KEY: randomBytes(32).toString('base64'),
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      RATE_LIMIT_STORAGE_URI: TEST_REDIS_URL,
      SHUTDOWN_DRAIN_SECONDS: '0',
    };
    expect(env).toMatchObject({ NODE_ENV: 'production', ENVIRONMENT: 'production', APP_COMMIT: commit });

    // The deploy job: the same image, the same user, `migrate up` before the new version serves.
    const [, ...cliArgs] = cmd;
    const migrate = await toEnd([cliArgs[0]!, 'migrate', 'up']);
    expect(migrate.code, migrate.output).toBe(0);
    expect(migrate.output).toContain('applied: 0001_users');

    // CMD ["node", "dist/src/cli/main.js", "serve"], in the WORKDIR.
    expect(cmd[0]).toBe('node');
    server = asAppUser(cliArgs);
    try {
      await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 30_000);
      // Redis connects lazily, so the first probes may say "degraded"; wait (bounded) for both checks.
      const deadline = performance.now() + 10_000;
      let status = '';
      while (status !== 'ready' && performance.now() < deadline) {
        const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
        status = ((await response.json()) as { status: string }).status;
        if (status !== 'ready') await sleep(200);
      }
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${server.output()}`);
    }
  }, 240_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await database?.drop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  beforeEach((context) => {
    if (cannot === undefined) return;
    if (ci) throw new Error(`the image rehearsal cannot run (${cannot}); CI=true requires it`);
    context.skip(cannot);
  });

  it('when the image runs in production, then readiness reports the database and Redis up', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; checks: Record<string, { status: string }> };
    expect(body.status).toBe('ready');
    expect(body.checks.database?.status).toBe('up');
    expect(body.checks.redis?.status).toBe('up');
  });

  it('when asked for its version, then it reports the commit given to the build', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/version`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ commit: commit, node: process.version });
  });

  it('when the process is inspected, then it runs as uid and gid 10001 with no supplementary groups', () => {
    const status = readFileSync(`/proc/${server!.child.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    expect(status).toMatch(/^Gid:\s+10001\s+10001\s+10001\s+10001$/m);
    expect(status).toMatch(/^Groups:\s*$/m);
  });

  it('when the app user tries to write its own code, then it is refused', async () => {
    for (const target of ['probe', 'dist/probe', 'dist/src/cli/main.js']) {
      const attempt = await toEnd([
        '-e',
        "require('node:fs').writeFileSync(process.argv[1], 'x')",
        path.join(appDir, target),
      ]);
      expect(attempt.code, target).not.toBe(0);
      expect(attempt.output).toContain('EACCES');
    }
  });

  it("when Docker runs the image's HEALTHCHECK, then it passes without curl or wget", async () => {
    const [bin, ...args] = healthcheck;
    expect(bin).toBe('node');
    const check = await toEnd(args, {}, 10_000);
    expect(check.code, check.output).toBe(0);
  });

  it('when SIGTERM arrives, then it exits 0, the health check then fails, and the app directory is unchanged', async () => {
    server!.child.kill('SIGTERM');
    const code = await server!.exited;
    expect(code, server!.output()).toBe(0);
    expect(server!.output()).toContain('shutdown: complete');
    const [, ...args] = healthcheck;
    expect((await toEnd(args, {}, 10_000)).code).toBe(1);
    expect(snapshot(appDir)).toEqual(before);
  });
});
