// The image and the Compose stack on a real Docker engine (a private dockerd, scripts/docker/engine.ts),
// with stand-ins for the registry images (scripts/docker/standins.ts). One engine for the whole file: the
// stand-ins and the image are built once. The image runs read-only, without capabilities and with
// no-new-privileges against the Compose PostgreSQL and Redis; then the Compose file itself comes up (api,
// migrate, postgres, redis, prometheus, alertmanager; Jaeger and Grafana have no stand-in) and everything
// is taken down, leaving the host's networking as it was. Run by `npm run test:engine` (.ci/run runs it
// as its own step); with CI=true a machine that cannot run the engine fails it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineMissing, networkState, startEngine, type Engine } from '../../scripts/docker/engine.js';
import { buildImage, megabytes, type BuiltImage } from '../../scripts/docker/image.js';
import { ensureStandins, STANDIN } from '../../scripts/docker/standins.js';
import { COMPOSE_FILE, envExample, loadCompose } from '../helpers/compose.js';
import { REPO_ROOT } from '../helpers/kustomize.js';
import { closedPort } from '../helpers/services.js';

/** The size the image must stay under (docs/deployment.md gives the measured size). */
const IMAGE_BUDGET_MB = 250;
const OVERRIDE = path.join(import.meta.dirname, 'compose.standins.yaml');
const missing = engineMissing();
if (missing !== undefined && process.env.CI === 'true') {
  throw new Error(`CI=true and the Docker engine tests cannot run: ${missing}`);
}
if (missing !== undefined) process.stderr.write(`warning: skipping the Docker engine tests: ${missing}\n`);

interface Json {
  [key: string]: unknown;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
) {
  const started = performance.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function getJson(url: string): Promise<{ status: number; body: Json } | undefined> {
  try {
    const answer = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return { status: answer.status, body: (await answer.json()) as Json };
  } catch {
    return undefined;
  }
}

describe.skipIf(missing !== undefined)(
  'the image and the Compose stack on a Docker engine',
  { timeout: 300_000 },
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'engine-test-'));
    const project = `relapi${randomBytes(3).toString('hex')}`;
    const compose = loadCompose();
    const imageTag = compose.services.api!.image!;
    const network = `${project}_default`;
    const secrets = {
      POSTGRES_PASSWORD: randomBytes(16).toString('hex'),
      SECRET_KEY: randomBytes(32).toString('hex'),
    };
    let networkBefore: ReturnType<typeof networkState>;
    let engine: Engine;
    let image: BuiltImage;
    let standins: Record<string, number>;
    const ports: Record<string, number> = {};

    const composeRun = (args: string[], timeoutMs = 180_000) => {
      const result = spawnSync(
        'docker-compose',
        [
          '-p',
          project,
          '--env-file',
          path.join(work, 'compose.env'),
          '-f',
          COMPOSE_FILE,
          '-f',
          OVERRIDE,
          ...args,
        ],
        { env: engine.env, encoding: 'utf8', timeout: timeoutMs },
      );
      if (result.status !== 0) {
        throw new Error(
          `docker-compose ${args.join(' ')} exited ${result.status}:\n${result.stderr}${result.stdout}`,
        );
      }
      return result.stdout;
    };
    const containerOf = (service: string) => composeRun(['ps', '-a', '-q', service]).trim();
    const inspect = (container: string, format: string) =>
      engine.docker(['inspect', '--format', format, container]).trim();

    beforeAll(async () => {
      networkBefore = networkState();
      engine = await startEngine(path.join(work, 'engine'));
      standins = ensureStandins(engine, path.join(work, 'standins'));
      image = buildImage(engine, { tag: imageTag, nodeImage: STANDIN.node });
      // Every variable of .env.example, with fresh secrets and free host ports (the host's own PostgreSQL
      // and Redis hold 5432 and 6379).
      const env: Record<string, string> = { ...envExample(), ...secrets, COMPOSE_PROJECT_NAME: project };
      for (const name of Object.keys(env).filter((n) => n.endsWith('_HOST_PORT'))) {
        ports[name] = await closedPort();
        env[name] = String(ports[name]);
      }
      writeFileSync(
        path.join(work, 'compose.env'),
        Object.entries(env)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
      );
    }, 900_000);

    afterAll(async () => {
      try {
        // dockerd stops whatever a failed test left running before it exits.
        if (engine !== undefined) await engine.stop();
        // The engine is gone and the host's networking is what it was before it started.
        if (networkBefore !== undefined) expect(networkState()).toEqual(networkBefore);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }, 120_000);

    it('when the image is built, then it stays within its size budget', () => {
      process.stdout.write(
        `image ${image.tag}: ${megabytes(image.bytes)} MB (budget ${IMAGE_BUDGET_MB} MB), built in ${image.seconds} s; stand-ins built: ${JSON.stringify(standins)}\n`,
      );
      expect(megabytes(image.bytes)).toBeLessThanOrEqual(IMAGE_BUDGET_MB);
      expect(inspect(image.tag, '{{.Config.User}}')).toBe('10001:10001');
    });

    it('when the image runs read-only without capabilities against the Compose PostgreSQL and Redis, then it serves, is healthy and stops cleanly', async () => {
      composeRun(['up', '-d', '--no-build', 'migrate']);
      const migrate = containerOf('migrate');
      await until('migrate exits', 120_000, () =>
        inspect(migrate, '{{.State.Status}}') === 'exited' ? true : undefined,
      );
      expect(inspect(migrate, '{{.State.ExitCode}}')).toBe('0');

      const port = await closedPort();
      const container = engine
        .docker([
          'run',
          '-d',
          '--name',
          `${project}-smoke`,
          '--network',
          network,
          '--read-only',
          '--tmpfs',
          '/tmp',
          '--cap-drop',
          'ALL',
          '--security-opt',
          'no-new-privileges:true',
          '-p',
          `127.0.0.1:${port}:8000`,
          '-e',
          `DATABASE_URL=postgres://reliability:${secrets.POSTGRES_PASSWORD}@postgres:5432/reliability`,
          '-e',
          'REDIS_URL=redis://redis:6379/0',
          '-e',
          'RATE_LIMIT_STORAGE_URI=redis://redis:6379/0',
          '-e',
          `SECRET_KEY=${secrets.SECRET_KEY}`,
          '-e',
          'HOST=0.0.0.0',
          '-e',
          'ANONYMOUS_ACCESS=true',
          '-e',
          'MIGRATE_ON_START=false',
          imageTag,
        ])
        .trim();
      const base = `http://127.0.0.1:${port}`;
      const ready = await until('ready', 60_000, async () => {
        const answer = await getJson(`${base}/health/ready`);
        return answer?.status === 200 ? answer : undefined;
      });
      expect(ready.status).toBe(200);
      const draw = await getJson(`${base}/v1/random?min=1&max=6`);
      expect(draw?.status).toBe(200);
      const value = (draw!.body as { value?: number }).value;
      expect(Number.isInteger(value) && value! >= 1 && value! <= 6, JSON.stringify(draw!.body)).toBe(true);

      const uid = engine.docker([
        'exec',
        container,
        'node',
        '-e',
        'process.stdout.write(`${process.getuid()}:${process.getgid()}`)',
      ]);
      expect(uid).toBe('10001:10001');
      // The root filesystem is read-only: only /tmp (a tmpfs) and the /data volume can be written.
      const write = engine.tryDocker([
        'exec',
        container,
        'node',
        '-e',
        "require('fs').writeFileSync('/app/x','')",
      ]);
      expect(write.status).not.toBe(0);
      expect(write.stderr).toMatch(/EROFS|read-only/);
      // ... and the DATA_DIR volume is the app user's.
      engine.docker(['exec', container, 'node', '-e', "require('fs').writeFileSync('/data/probe','')"]);
      // No shell or package manager in the image: only what the service runs.
      for (const tool of ['/bin/sh', '/usr/bin/apt-get', '/usr/local/bin/npm'])
        expect(engine.tryDocker(['exec', container, tool, '--version']).status, tool).not.toBe(0);
      expect(
        inspect(
          container,
          '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}',
        ),
      ).toBe('true [ALL] [no-new-privileges:true]');

      const healthyAfter = await until('HEALTHCHECK healthy', 60_000, () =>
        inspect(container, '{{.State.Health.Status}}') === 'healthy' ? performance.now() : undefined,
      );
      expect(healthyAfter).toBeGreaterThan(0);

      const grace = 30;
      const stopping = performance.now();
      engine.docker(['stop', '-t', String(grace), container], { timeoutMs: (grace + 10) * 1000 });
      const stoppedInS = (performance.now() - stopping) / 1000;
      expect(inspect(container, '{{.State.ExitCode}}')).toBe('0');
      expect(stoppedInS).toBeLessThan(grace);
      const logs = engine.tryDocker(['logs', container]);
      const lines = logs.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Json);
      expect(lines.some((l) => String(l.msg).includes('ready') || String(l.msg).includes('listening'))).toBe(
        true,
      );
      process.stdout.write(
        `image smoke: ready, draw ${value}, uid 10001, healthy, docker stop exit 0 in ${stoppedInS.toFixed(1)} s\n`,
      );
      engine.docker(['rm', container]);
    });

    it('when the Compose file comes up, then migrate exits 0, the API is healthy and Prometheus scrapes it and loads the rules', async () => {
      composeRun(['up', '-d', '--no-build', 'api', 'prometheus']);
      const api = containerOf('api');
      await until('api healthy', 120_000, () =>
        inspect(api, '{{.State.Health.Status}}') === 'healthy' ? true : undefined,
      );
      expect(inspect(containerOf('migrate'), '{{.State.ExitCode}}')).toBe('0');
      const answer = await getJson(`http://127.0.0.1:${ports.API_HOST_PORT}/v1/random?min=1&max=6`);
      expect(answer?.status).toBe(200);

      const prometheus = `http://127.0.0.1:${ports.PROMETHEUS_HOST_PORT}`;
      const target = await until('the API target up', 90_000, async () => {
        const targets = await getJson(`${prometheus}/api/v1/targets`);
        const active = ((targets?.body.data as Json | undefined)?.activeTargets ?? []) as Json[];
        return active.find((t) => (t.labels as Json).job === 'reliability-api' && t.health === 'up');
      });
      expect(target.scrapeUrl).toBe('http://api:8000/metrics');

      // Every rule group of the shipped rule files is loaded.
      const rulesDir = path.join(REPO_ROOT, 'deploy/monitoring/prometheus/rules');
      const shipped = readdirSync(rulesDir).flatMap(
        (f) => (parse(readFileSync(path.join(rulesDir, f), 'utf8')) as { groups: { name: string }[] }).groups,
      );
      const rules = await getJson(`${prometheus}/api/v1/rules`);
      const loaded = ((rules?.body.data as Json).groups as Json[]).map((g) => g.name);
      expect(loaded.sort()).toEqual(shipped.map((g) => g.name).sort());
      const managers = await until('Alertmanager discovered', 30_000, async () => {
        const found = await getJson(`${prometheus}/api/v1/alertmanagers`);
        const active = ((found?.body.data as Json | undefined)?.activeAlertmanagers ?? []) as Json[];
        return active.length > 0 ? active : undefined;
      });
      expect(managers).toHaveLength(1);

      composeRun(['down', '--volumes', '--timeout', '40'], 120_000);
      expect(engine.docker(['ps', '-a', '-q']).trim()).toBe('');
    });
  },
);
