// The local stack, deploy/compose/compose.yaml, checked without a Docker engine:
// - validated against the Compose specification's JSON schema, the copy that dclint ships
//   (dclint/schemas/compose.schema.json, kept in step with compose-spec), with ajv; and dclint's own
//   correctness rules (explicit image tags, ports bound to an interface, no duplicate ports or names);
// - the settings the API and its migration get: every name a setting of src/config/schema.ts, and the
//   whole environment, interpolated with .env.example, accepted by loadConfig;
// - secrets only through required variables (`${VAR:?...}`) declared in .env.example, which git commits
//   while it ignores .env;
// - every bind-mounted host path and the build context exist; dependencies wait for health or completion;
//   every image pinned to a version; health checks where the rules below need them, and on every service
//   that keeps running but the listed exceptions;
// - `docker compose config` accepts the file, where Docker Compose is installed (see test/helpers/tools.ts).
// Each describe ends with negative tests: a broken copy must be reported by the same check.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { DCLinter } from 'dclint';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { settings } from '../../src/config/schema.js';
import {
  bindMounts,
  COMPOSE_DIR,
  COMPOSE_FILE,
  envExample,
  environmentOf,
  imageReference,
  interpolate,
  interpolateAll,
  loadCompose,
  variablesIn,
  type ComposeFile,
  type ComposeService,
} from '../helpers/compose.js';
import { REPO_ROOT } from '../helpers/kustomize.js';
import { DOCKER_COMPOSE, DOCKER_COMPOSE_V1, optionalTool } from '../helpers/tools.js';

const text = readFileSync(COMPOSE_FILE, 'utf8');
const compose = loadCompose(text);
const example = envExample();
const clone = (): ComposeFile => structuredClone(compose);

const scratch = mkdtempSync(path.join(tmpdir(), 'compose-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------
// The checks, each returning what it finds wrong, so the negative tests can run them on broken copies.

const require = createRequire(import.meta.url);
const schemaFile = path.join(
  path.dirname(require.resolve('dclint/package.json')),
  'schemas/compose.schema.json',
);
const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
// The specification's `duration` format (e.g. 10s, 1m30s) is the one format the schema names.
ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
// The schema is draft-07 (Ajv's default draft); its `$schema` names the draft by an https URI Ajv does not
// register, so it is dropped before compiling.
const { $schema: draft, ...composeSchema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<
  string,
  unknown
>;
if (!String(draft).includes('draft-07'))
  throw new Error(`${schemaFile}: expected a draft-07 schema, got ${String(draft)}`);
const validateSchema = ajv.compile(composeSchema);

function schemaProblems(file: unknown): string[] {
  if (validateSchema(file)) return [];
  return (validateSchema.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/**
 * dclint's correctness rules. Its style rules (orders of keys, services and ports, quoted ports) are off,
 * and so is no-build-and-image: api and migrate name the image they build, so both run the same one.
 */
const LINT_RULES = {
  'no-build-and-image': 0,
  'require-quotes-in-ports': 0,
  'service-dependencies-alphabetical-order': 0,
  'service-keys-order': 0,
  'service-ports-alphabetical-order': 0,
  'services-alphabetical-order': 0,
  'top-level-properties-order': 0,
  'no-duplicate-container-names': 2,
  'no-duplicate-exported-ports': 2,
  'no-quotes-in-volumes': 2,
  'no-unbound-port-interfaces': 2,
  'no-version-field': 2,
  // Compose v1 rejects the top-level `name:`; the project name comes from COMPOSE_PROJECT_NAME in .env.
  'require-project-name-field': 0,
  'service-container-name-regex': 2,
  'service-image-require-explicit-tag': 2,
} as const;

function lintProblems(source: string): string[] {
  const file = path.join(scratch, `lint-${Math.floor(performance.now() * 1000)}.yaml`);
  writeFileSync(file, source);
  const linter = new DCLinter({ rules: { ...LINT_RULES }, quiet: true, debug: false, exclude: [] });
  const results = linter.lintFiles([file], false) as { messages: { rule: string; message: string }[] }[];
  return results.flatMap((r) => r.messages.map((m) => `${m.rule}: ${m.message}`));
}

/** The services that run this project's code: built from the repository or running its CLI. */
function appServices(file: ComposeFile): [string, ComposeService][] {
  return Object.entries(file.services).filter(([, s]) => {
    const command = [s.command ?? []].flat().join(' ');
    return s.build !== undefined || /src\/cli\/main\.[tj]s/.test(command);
  });
}

const SETTING_NAMES = new Set(Object.keys(settings));

function environmentProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of appServices(file)) {
    // An env_file would hand the container names this file does not show.
    if (service.env_file !== undefined) problems.push(`${name}: env_file hides the settings it passes`);
    for (const key of Object.keys(environmentOf(service))) {
      if (!SETTING_NAMES.has(key)) problems.push(`${name}: ${key} is not a setting of src/config/schema.ts`);
    }
  }
  return problems;
}

/** loadConfig on each app service's environment, interpolated with .env.example's values. */
function configProblems(file: ComposeFile, vars: Record<string, string>): string[] {
  const problems: string[] = [];
  const emptyDir = mkdtempSync(path.join(scratch, 'cwd-'));
  for (const [name, service] of appServices(file)) {
    try {
      const env = interpolateAll(environmentOf(service) as Record<string, string>, vars);
      // No secrets directory: only what the file passes counts.
      loadConfig({ SETTINGS_SECRETS_DIR: emptyDir, ...env }, { cwd: emptyDir });
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  return problems;
}

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|_KEY$/;
const REQUIRED_VARIABLE = /^\$\{[A-Za-z_]\w*:\?[^}]+\}$/;

/** Secrets come only from required variables; a URL's password is one. */
function secretProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(file.services)) {
    for (const [key, value] of Object.entries(environmentOf(service))) {
      if (value === undefined) continue;
      const setting = settings[key as keyof typeof settings] as { secret?: boolean } | undefined;
      const secret = setting?.secret === true || SECRET_NAME.test(key);
      if (!secret) continue;
      const url = /^[a-z][a-z0-9+.-]*:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?/i.exec(value);
      if (url !== null) {
        const password = url[2];
        if (password !== undefined && !REQUIRED_VARIABLE.test(password)) {
          problems.push(`${name}: ${key} has a literal password; use \${VAR:?message}`);
        }
      } else if (!REQUIRED_VARIABLE.test(value)) {
        problems.push(`${name}: ${key} is not a required variable \${VAR:?message}`);
      }
    }
  }
  return problems;
}

/** Every string of the parsed file (comments are not interpolated, so they are not looked at). */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [k, ...stringsOf(v)]);
  }
  return [];
}

/** Every interpolated variable is declared in .env.example or has a default. */
function variableProblems(file: unknown, vars: Record<string, string>): string[] {
  return stringsOf(file)
    .flatMap(variablesIn)
    .filter((v) => !(v.name in vars) && v.operator !== ':-' && v.operator !== '-')
    .map((v) => `\${${v.name}} is not declared in .env.example`);
}

function mountProblems(file: ComposeFile): string[] {
  const problems = bindMounts(file)
    .filter((m) => !existsSync(m.hostPath))
    .map(
      (m) => `${m.service}: bind mount ${m.source} (${path.relative(REPO_ROOT, m.hostPath)}) does not exist`,
    );
  for (const [name, service] of Object.entries(file.services)) {
    if (service.build === undefined) continue;
    const build = typeof service.build === 'string' ? { context: service.build } : service.build;
    const context = path.resolve(COMPOSE_DIR, build.context ?? '.');
    if (!existsSync(context)) problems.push(`${name}: build context ${build.context} does not exist`);
    const dockerfile = path.resolve(context, build.dockerfile ?? 'Dockerfile');
    if (!existsSync(dockerfile)) problems.push(`${name}: Dockerfile ${build.dockerfile} does not exist`);
  }
  return problems;
}

const WAIT_CONDITIONS = new Set(['service_healthy', 'service_completed_successfully']);

function dependencyProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(file.services)) {
    const dependsOn = service.depends_on;
    if (dependsOn === undefined) continue;
    if (Array.isArray(dependsOn)) {
      problems.push(`${name}: depends_on without a condition only waits for the container to start`);
      continue;
    }
    for (const [target, { condition }] of Object.entries(dependsOn)) {
      const dependency = file.services[target];
      if (dependency === undefined) {
        problems.push(`${name}: depends on ${target}, which is not a service`);
        continue;
      }
      if (!WAIT_CONDITIONS.has(condition ?? '')) {
        problems.push(`${name}: depends_on ${target} with condition ${condition}`);
      }
      if (condition === 'service_healthy' && dependency.healthcheck === undefined) {
        problems.push(`${name}: waits for ${target} to be healthy, but ${target} has no healthcheck`);
      }
      if (dependency.profiles !== undefined && service.profiles === undefined) {
        problems.push(
          `${name}: depends on ${target}, which only runs in profiles ${dependency.profiles.join(', ')}`,
        );
      }
    }
  }
  return problems;
}

/** A version tag: a digit after an optional `v` (16.10-bookworm, v3.5.0, 0.1.0), never a moving name. */
const VERSION_TAG = /^v?\d+(\.\d+)*([-.][\w.-]+)?$/;

function imageProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(file.services)) {
    if (service.image === undefined) {
      problems.push(`${name}: no image`);
      continue;
    }
    const { tag } = imageReference(service.image);
    if (tag === undefined || tag === 'latest' || !VERSION_TAG.test(tag)) {
      problems.push(`${name}: image ${service.image} is not pinned to a version`);
    }
  }
  return problems;
}

/**
 * The services that keep running without a healthcheck, each with the reason. Every other service but a
 * one-shot (`restart: 'no'`) has one, so whatever depends on it can wait for it to be healthy; nothing can
 * wait for these (dependencyProblems reports a service_healthy condition on a service without a check).
 */
const WITHOUT_HEALTHCHECK: Record<string, string> = {
  'otel-collector':
    'its image holds the collector binary and CA certificates only (no shell, wget or curl) and the binary has no probe command, so nothing in the container can ask its health_check extension',
};

function healthcheckCoverageProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(file.services)) {
    const checked = service.healthcheck !== undefined && service.healthcheck.disable !== true;
    if (name in WITHOUT_HEALTHCHECK) {
      if (checked) problems.push(`${name}: has a healthcheck, so it is no longer an exception`);
    } else if (!checked && service.restart !== 'no') {
      problems.push(`${name}: keeps running without a healthcheck`);
    }
  }
  for (const name of Object.keys(WITHOUT_HEALTHCHECK)) {
    if (file.services[name] === undefined) problems.push(`${name}: an exception, but not a service`);
  }
  return problems;
}

const healthTest = (service: ComposeService | undefined) =>
  [service?.healthcheck?.test ?? []].flat().join(' ');

function healthcheckProblems(file: ComposeFile): string[] {
  const problems: string[] = [];
  const expectations: [string, RegExp][] = [
    ['postgres', /\bpg_isready\b/],
    ['redis', /\bredis-cli\b.*\bping\b/],
    ['api', /\/health\/(ready|live)\b/],
  ];
  for (const [name, pattern] of expectations) {
    const service = file.services[name];
    if (service?.healthcheck === undefined || service.healthcheck.disable === true) {
      problems.push(`${name}: no healthcheck`);
    } else if (!pattern.test(healthTest(service))) {
      problems.push(`${name}: healthcheck ${healthTest(service)} does not match ${pattern}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------

describe('compose.yaml against the Compose specification', () => {
  it('when the file is validated against the compose-spec JSON schema, then it conforms', () => {
    expect(schemaProblems(compose)).toEqual([]);
  });

  it('when dclint checks it, then images have explicit tags, ports are bound to an interface and nothing is duplicated', () => {
    expect(lintProblems(text)).toEqual([]);
  });

  it('when the project is started, then .env names it and it has the services of the whole system', () => {
    // No top-level name (Compose v1 rejects it): COMPOSE_PROJECT_NAME, which v1 and v2 both read.
    expect(compose.name).toBeUndefined();
    expect(example.COMPOSE_PROJECT_NAME).toBe('reliability-api');
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'alertmanager',
        'api',
        'api-dev',
        'grafana',
        'jaeger',
        'loki',
        'migrate',
        'otel-collector',
        'postgres',
        'prometheus',
        'redis',
      ].sort(),
    );
  });

  it('when Docker Compose is installed, then `docker compose config` accepts the file', (context) => {
    if (!optionalTool(DOCKER_COMPOSE)) return context.skip();
    const result = spawnSync(
      'docker',
      ['compose', '-f', COMPOSE_FILE, '--profile', 'dev', 'config', '--quiet'],
      {
        encoding: 'utf8',
        env: { ...process.env, ...example },
        timeout: 30_000,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('when Compose v1 is installed, then `docker-compose config` accepts the file', (context) => {
    if (!optionalTool(DOCKER_COMPOSE_V1)) return context.skip();
    const result = spawnSync(
      'docker-compose',
      ['-f', COMPOSE_FILE, '--profile', 'dev', 'config', '--quiet'],
      { encoding: 'utf8', env: { ...process.env, ...example }, timeout: 30_000 },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // And a file v1 cannot read is refused: the check can fail.
    const broken = path.join(scratch, 'v1-name.yaml');
    writeFileSync(broken, `name: reliability-api\n${text}`);
    const refused = spawnSync('docker-compose', ['-f', broken, 'config', '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, ...example },
      cwd: COMPOSE_DIR,
      timeout: 30_000,
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("'name' does not match any of the regexes");
  });

  it('when a copy breaks the specification or the lint rules, then both checks report it', () => {
    const broken = clone();
    (broken.services.api as Record<string, unknown>).restart = 'sometimes';
    (broken.services.api as Record<string, unknown>).helthcheck = {};
    const problems = schemaProblems(broken).join('\n');
    expect(problems).toContain('/services/api');
    expect(schemaProblems({ ...clone(), version: 3 })).not.toEqual([]);

    const unpinned = text.replace('image: redis:7.4.6-bookworm', 'image: redis:latest');
    expect(unpinned).not.toBe(text);
    expect(lintProblems(unpinned).join('\n')).toContain('service-image-require-explicit-tag');
    const exposed = text.replace('127.0.0.1:${REDIS_HOST_PORT:-6379}:6379', '6379:6379');
    expect(lintProblems(exposed).join('\n')).toContain('no-unbound-port-interfaces');
  });
});

describe('the settings the API gets', () => {
  it('when the API, its migration or the dev server start, then every variable they get is a setting', () => {
    expect(
      appServices(compose)
        .map(([name]) => name)
        .sort(),
    ).toEqual(['api', 'api-dev', 'migrate']);
    expect(environmentProblems(compose)).toEqual([]);
  });

  it('when their environment is interpolated with .env.example, then loadConfig accepts it', () => {
    expect(configProblems(compose, example)).toEqual([]);
  });

  it('when the API and the migration run, then they share one image, one build and the same connection settings', () => {
    const { api, migrate } = compose.services;
    expect(migrate!.image).toBe(api!.image);
    expect(migrate!.build).toEqual(api!.build);
    const shared = ['ENVIRONMENT', 'DATABASE_URL', 'REDIS_URL', 'RATE_LIMIT_STORAGE_URI', 'SECRET_KEY'];
    for (const key of shared) expect(environmentOf(migrate!)[key], key).toBe(environmentOf(api!)[key]);
    expect(environmentOf(api!).MIGRATE_ON_START).toBe('false');
  });

  it('when the API sends traces and logs, then it sends OTLP over HTTP to the collector, which the host port reaches too', () => {
    // test/deploy/logging.test.ts checks the collector's configuration: what it receives, where it sends.
    for (const name of ['api', 'migrate', 'api-dev']) {
      expect(environmentOf(compose.services[name]!).OTLP_ENDPOINT, name).toBe('http://otel-collector:4318');
    }
    expect(environmentOf(compose.services.api!).OTEL_LOGS_EXPORTER).toBe('otlp');
    const collector = compose.services['otel-collector']!;
    expect(imageReference(collector.image!).name).toBe('otel/opentelemetry-collector-contrib');
    expect(collector.ports).toEqual(['127.0.0.1:${OTLP_HOST_PORT:-4318}:4318']);
    // Jaeger takes OTLP from the collector and publishes only its UI.
    const jaeger = compose.services.jaeger!;
    expect(imageReference(jaeger.image!).name).toBe('jaegertracing/all-in-one');
    expect(environmentOf(jaeger).COLLECTOR_OTLP_ENABLED).toBe('true');
    expect(jaeger.ports).toEqual(['127.0.0.1:${JAEGER_UI_HOST_PORT:-16686}:16686']);
    // The API does not wait for the collector: its exporter drops what it cannot send.
    const dependsOnCollector = Object.entries(compose.services).filter(
      ([, s]) => !Array.isArray(s.depends_on) && s.depends_on?.['otel-collector'] !== undefined,
    );
    expect(dependsOnCollector.map(([name]) => name)).toEqual([]);
  });

  it('when the API is published, then it listens on the PORT the host port maps to', () => {
    const api = compose.services.api!;
    const port = environmentOf(api).PORT ?? settings.PORT.default;
    expect(api.ports).toContain(`127.0.0.1:\${API_HOST_PORT:-${port}}:${port}`);
    expect(example.API_HOST_PORT).toBe(String(port));
  });

  it('when a copy passes an unknown variable or an env_file, or an invalid value, then the checks report it', () => {
    const broken = clone();
    (broken.services.api!.environment as Record<string, string>).DATABSE_URL = 'postgres://x';
    broken.services.migrate!.env_file = '../../.env';
    const problems = environmentProblems(broken).join('\n');
    expect(problems).toContain('api: DATABSE_URL is not a setting');
    expect(problems).toContain('migrate: env_file');

    const invalid = clone();
    (invalid.services.migrate!.environment as Record<string, string>).DB_POOL_SIZE = 'lots';
    expect(configProblems(invalid, example).join('\n')).toContain(
      'migrate: invalid configuration: DB_POOL_SIZE',
    );
    const shortKey = configProblems(compose, { ...example, SECRET_KEY: 'short' }).join('\n');
    expect(shortKey).toContain('api: invalid configuration: SECRET_KEY');
  });
});

describe('secrets', () => {
  it('when a secret is passed, then it comes from a required variable, never a literal', () => {
    expect(secretProblems(compose)).toEqual([]);
    const secrets = Object.values(compose.services).flatMap((s) =>
      Object.entries(environmentOf(s)).filter(([key]) => SECRET_NAME.test(key)),
    );
    expect(secrets.length).toBeGreaterThanOrEqual(3);
  });

  it('when Compose interpolates, then every variable is declared in .env.example and a missing one stops it', () => {
    expect(variableProblems(compose, example)).toEqual([]);
    const used = new Set(
      stringsOf(compose)
        .flatMap(variablesIn)
        .map((v) => v.name),
    );
    // .env.example also sets COMPOSE_PROJECT_NAME, read by Compose itself rather than interpolated.
    expect([...used, 'COMPOSE_PROJECT_NAME'].sort()).toEqual(Object.keys(example).sort());
    const withoutPassword = { ...example, POSTGRES_PASSWORD: '' };
    expect(() => interpolateAll(compose, withoutPassword)).toThrow(/POSTGRES_PASSWORD/);
  });

  it('when the repository is committed, then .env.example is tracked and .env is ignored', () => {
    const ignored = (file: string) =>
      spawnSync('git', ['check-ignore', '--quiet', '--no-index', file], { cwd: REPO_ROOT }).status === 0;
    expect(ignored('.env')).toBe(true);
    expect(ignored('deploy/compose/.env')).toBe(true);
    expect(ignored('.env.example')).toBe(false);
  });

  it('when a copy holds a literal secret or an undeclared variable, then the checks report it', () => {
    const broken = clone();
    (broken.services.api!.environment as Record<string, string>).SECRET_KEY =
      'hunter2-hunter2-hunter2-hunter2-x';
    (broken.services.postgres!.environment as Record<string, string>).POSTGRES_PASSWORD = 'postgres';
    (broken.services.migrate!.environment as Record<string, string>).DATABASE_URL =
      'postgres://reliability:postgres@postgres:5432/reliability';
    const problems = secretProblems(broken).join('\n');
    expect(problems).toContain('api: SECRET_KEY');
    expect(problems).toContain('postgres: POSTGRES_PASSWORD');
    expect(problems).toContain('migrate: DATABASE_URL has a literal password');
    expect(variableProblems({ x: '${UNDECLARED:?set it}' }, example)).toEqual([
      '${UNDECLARED} is not declared in .env.example',
    ]);
    expect(interpolate('$${NOT_A_VARIABLE}', {})).toBe('${NOT_A_VARIABLE}');
  });
});

describe('mounts, dependencies, images and health checks', () => {
  it('when host paths are bind-mounted, then each exists in the repository (resolved from deploy/compose)', () => {
    expect(bindMounts(compose).length).toBeGreaterThan(0);
    expect(mountProblems(compose)).toEqual([]);
  });

  it('when the monitoring services start, then they mount the monitoring configuration at the paths it is written for', () => {
    const mounted = (service: string) =>
      bindMounts(compose)
        .filter((m) => m.service === service)
        .map((m) => [path.relative(REPO_ROOT, m.hostPath), m.target]);
    expect(mounted('prometheus')).toEqual([
      ['deploy/monitoring/prometheus/prometheus.yml', '/etc/prometheus/prometheus.yml'],
      ['deploy/monitoring/prometheus/rules', '/etc/prometheus/rules'],
    ]);
    expect(mounted('alertmanager')).toEqual([
      ['deploy/monitoring/alertmanager/alertmanager.yml', '/etc/alertmanager/alertmanager.yml'],
    ]);
    expect(mounted('grafana')).toEqual([
      ['deploy/monitoring/grafana/provisioning', '/etc/grafana/provisioning'],
      ['deploy/monitoring/grafana/dashboards', '/var/lib/grafana/dashboards'],
    ]);
    expect(mounted('otel-collector')).toEqual([
      ['deploy/monitoring/otel-collector/otel-collector.compose.yaml', '/etc/otelcol-contrib/config.yaml'],
    ]);
    expect(compose.services['otel-collector']!.command).toEqual([
      '--config=/etc/otelcol-contrib/config.yaml',
    ]);
    expect(mounted('loki')).toEqual([['deploy/monitoring/loki/loki.yaml', '/etc/loki/loki.yaml']]);
    expect(compose.services.loki!.command).toEqual(['-config.file=/etc/loki/loki.yaml']);
    // Loki's chunks and index (under /loki, loki.yaml) survive a restart in a named volume.
    expect(compose.services.loki!.volumes).toContainEqual({
      type: 'volume',
      source: 'loki-data',
      target: '/loki',
    });
    expect(Object.keys(compose.volumes ?? {})).toContain('loki-data');
    for (const mount of bindMounts(compose).filter((m) => m.service !== 'api-dev')) {
      const spec = compose.services[mount.service]!.volumes!.find(
        (v) => typeof v !== 'string' && v.source === mount.source,
      );
      expect(typeof spec === 'object' && spec.read_only, `${mount.service}: ${mount.source} read-only`).toBe(
        true,
      );
    }
    const files = ['prometheus.yml', 'alertmanager.yml', 'otel-collector.compose.yaml', 'loki.yaml'];
    for (const mount of bindMounts(compose).filter((m) => files.includes(path.basename(m.source)))) {
      if (existsSync(mount.hostPath)) expect(statSync(mount.hostPath).isFile(), mount.source).toBe(true);
    }
  });

  it('when the monitoring configuration names a service, then it is a Compose service at the port it listens on', () => {
    const monitoring = (file: string) =>
      parse(readFileSync(path.join(REPO_ROOT, 'deploy/monitoring', file), 'utf8'));
    const ports: Record<string, string> = {
      api: environmentOf(compose.services.api!).PORT ?? settings.PORT.default,
      prometheus: '9090',
      alertmanager: '9093',
      jaeger: '16686',
      loki: '3100',
      grafana: '3000',
      localhost: '9090',
    };
    const prometheus = monitoring('prometheus/prometheus.yml') as {
      scrape_configs: { static_configs?: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const targets = [
      ...prometheus.scrape_configs.flatMap((c) => (c.static_configs ?? []).flatMap((s) => s.targets)),
      ...prometheus.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((s) => s.targets)),
    ];
    expect(targets).toContain(`api:${ports.api}`);
    for (const target of targets) {
      const [host, port] = target.split(':') as [string, string];
      if (host !== 'localhost') expect(Object.keys(compose.services), target).toContain(host);
      expect(port, target).toBe(ports[host]);
    }
    const datasourceFiles = readdirSync(
      path.join(REPO_ROOT, 'deploy/monitoring/grafana/provisioning/datasources'),
    );
    expect(datasourceFiles.sort()).toEqual(['jaeger.yml', 'loki.yml', 'prometheus.yml']);
    for (const file of datasourceFiles) {
      const datasources = monitoring(`grafana/provisioning/datasources/${file}`) as {
        datasources: { url: string }[];
      };
      for (const { url } of datasources.datasources) {
        const { hostname, port } = new URL(url);
        expect(Object.keys(compose.services), url).toContain(hostname);
        expect(port, url).toBe(ports[hostname]);
      }
    }
    // The collector sends to Jaeger's OTLP/gRPC port and Loki's HTTP port, both Compose services.
    const collector = monitoring('otel-collector/otel-collector.compose.yaml') as {
      exporters: Record<string, { endpoint: string }>;
    };
    const endpoints = Object.values(collector.exporters).map((e) => e.endpoint);
    expect(endpoints.sort()).toEqual(['http://loki:3100/otlp', 'jaeger:4317']);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['jaeger', 'loki']));
    const dashboards = monitoring('grafana/provisioning/dashboards/dashboards.yml') as {
      providers: { options: { path: string } }[];
    };
    const mounted = bindMounts(compose).find((m) => m.source.endsWith('grafana/dashboards'))!;
    expect(dashboards.providers.map((p) => p.options.path)).toEqual([mounted.target]);
  });

  it('when a service depends on another, then it waits for health or successful completion', () => {
    expect(dependencyProblems(compose)).toEqual([]);
    expect(compose.services.api!.depends_on).toEqual({
      migrate: { condition: 'service_completed_successfully' },
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
  });

  it('when migrations run, then a one-shot service applies them with the built CLI and exits', () => {
    const migrate = compose.services.migrate!;
    expect(migrate.command).toEqual(['node', 'dist/src/cli/main.js', 'migrate', 'up']);
    expect(migrate.restart).toBe('no');
    expect(migrate.healthcheck).toBeUndefined();
    // The global setup has built dist/: the CLI path exists in the image the same way.
    expect(existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js'))).toBe(true);
  });

  it('when an image is pulled, then it is pinned to a version: PostgreSQL 16, Redis 7 and the monitoring stack', () => {
    expect(imageProblems(compose)).toEqual([]);
    const image = (name: string) => compose.services[name]!.image!;
    expect(image('postgres')).toMatch(/^postgres:16\.\d+(-[\w.]+)?$/);
    expect(image('redis')).toMatch(/^redis:7\.\d+\.\d+(-[\w.]+)?$/);
    expect(image('prometheus')).toMatch(/^prom\/prometheus:v[23]\.\d+\.\d+$/);
    expect(image('alertmanager')).toMatch(/^prom\/alertmanager:v\d+\.\d+\.\d+$/);
    expect(image('jaeger')).toMatch(/^jaegertracing\/all-in-one:\d+\.\d+\.\d+$/);
    expect(image('grafana')).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(image('otel-collector')).toMatch(/^otel\/opentelemetry-collector-contrib:0\.\d+\.\d+$/);
    // 3.x: TSDB, schema v13 and OTLP ingestion (deploy/monitoring/loki/loki.yaml).
    expect(image('loki')).toMatch(/^grafana\/loki:3\.\d+\.\d+$/);
  });

  it('when the stack runs, then PostgreSQL, Redis and the API have health checks that probe them', () => {
    expect(healthcheckProblems(compose)).toEqual([]);
  });

  it('when a service keeps running, then it has a healthcheck, the collector alone excepted for a stated reason', () => {
    expect(healthcheckCoverageProblems(compose)).toEqual([]);
    expect(Object.keys(WITHOUT_HEALTHCHECK)).toEqual(['otel-collector']);
    // Loki's probe is the readiness endpoint, with wget from the busybox its 3.5 image carries.
    expect(healthTest(compose.services.loki)).toBe('CMD wget -q -O /dev/null http://127.0.0.1:3100/ready');
    expect(compose.services.grafana!.depends_on).toMatchObject({ loki: { condition: 'service_healthy' } });
  });

  it('when the dev profile runs, then a Node 24 container serves the mounted source with tsx watch', () => {
    const dev = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('dev'));
    expect(dev.map(([name]) => name)).toEqual(['api-dev']);
    const [, service] = dev[0]!;
    // The same base image as deploy/docker/Dockerfile.
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'deploy/docker/Dockerfile'), 'utf8');
    expect(service.image).toMatch(/^node:24\.\d+\.\d+-[\w.-]+@sha256:[0-9a-f]{64}$/);
    expect(dockerfile).toContain(`ARG NODE_IMAGE=${service.image}\n`);
    expect([service.command].flat().join(' ')).toContain('npx tsx watch src/cli/main.ts serve');
    expect(bindMounts(compose).filter((m) => m.service === 'api-dev')).toEqual([
      { service: 'api-dev', source: '../..', hostPath: REPO_ROOT.replace(/\/$/, ''), target: '/app' },
    ]);
    const ports = (service.ports ?? []).filter((p): p is string => typeof p === 'string');
    expect(ports.some((p) => p.endsWith(':8000') && !p.includes(':8000:'))).toBe(true);
  });

  it('when a copy breaks mounts, dependencies, images or health checks, then the checks report it', () => {
    const broken = clone();
    broken.services.prometheus!.volumes![0] = {
      type: 'bind',
      source: '../monitoring/prometheus/prometheus.yaml',
      target: '/etc/prometheus/prometheus.yml',
    };
    broken.services.api!.build = { context: '../..', dockerfile: 'Dockerfile' };
    expect(mountProblems(broken).join('\n')).toMatch(
      /prometheus: bind mount .*prometheus\.yaml[\s\S]*api: Dockerfile/,
    );

    broken.services.api!.depends_on = {
      migrate: { condition: 'service_started' },
      postgres: { condition: 'service_healthy' },
    };
    broken.services.grafana!.depends_on = ['prometheus'];
    delete broken.services.postgres!.healthcheck;
    broken.services.migrate!.depends_on = { 'api-dev': { condition: 'service_healthy' } };
    const dependencies = dependencyProblems(broken).join('\n');
    expect(dependencies).toContain('api: depends_on migrate with condition service_started');
    expect(dependencies).toContain('grafana: depends_on without a condition');
    expect(dependencies).toContain('api: waits for postgres to be healthy, but postgres has no healthcheck');
    expect(dependencies).toContain('migrate: depends on api-dev, which only runs in profiles dev');

    broken.services.redis!.image = 'redis';
    broken.services.grafana!.image = 'grafana/grafana:latest';
    broken.services.jaeger!.image = 'jaegertracing/all-in-one:stable';
    expect(imageProblems(broken)).toEqual([
      'redis: image redis is not pinned to a version',
      'jaeger: image jaegertracing/all-in-one:stable is not pinned to a version',
      'grafana: image grafana/grafana:latest is not pinned to a version',
    ]);

    broken.services.redis!.healthcheck = { test: ['CMD', 'true'] };
    broken.services.api!.healthcheck = { disable: true };
    expect(healthcheckProblems(broken)).toEqual([
      'postgres: no healthcheck',
      'redis: healthcheck CMD true does not match /\\bredis-cli\\b.*\\bping\\b/',
      'api: no healthcheck',
    ]);

    const coverage = clone();
    delete coverage.services.loki!.healthcheck;
    coverage.services['otel-collector']!.healthcheck = { test: ['CMD', '/otelcol-contrib', '--version'] };
    expect(healthcheckCoverageProblems(coverage)).toEqual([
      'otel-collector: has a healthcheck, so it is no longer an exception',
      'loki: keeps running without a healthcheck',
    ]);
    delete coverage.services['otel-collector'];
    expect(healthcheckCoverageProblems(coverage)).toContain(
      'otel-collector: an exception, but not a service',
    );
    // Waiting for the collector to be healthy could never end.
    const waiting = clone();
    waiting.services.api!.depends_on = {
      ...(waiting.services.api!.depends_on as Record<string, { condition?: string }>),
      'otel-collector': { condition: 'service_healthy' },
    };
    expect(dependencyProblems(waiting)).toContain(
      'api: waits for otel-collector to be healthy, but otel-collector has no healthcheck',
    );
  });
});
