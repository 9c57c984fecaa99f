// The manifests and the application agree: every variable the pods get is a setting of
// src/config/schema.ts, the ConfigMap passes loadConfig, ports match, and the paths the manifests name
// (probes, metrics, Ingress routes, smoke analysis) answer on the real app.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { settings, type SettingName } from '../../src/config/schema.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import {
  OVERLAYS,
  all,
  componentTemplates,
  containersOf,
  effectiveSetting,
  one,
  podTemplates,
  renderAll,
  requireKubectl,
  scaled,
  type K8sObject,
} from '../helpers/kustomize.js';

const APP = 'reliability-api';
const API_IMAGE = 'ghcr.io/reliability-api/reliability-api';
const RENDERS = ['base', ...OVERLAYS, 'production-canary', 'production-blue-green'] as const;
type Render = (typeof RENDERS)[number];

/** Stand-ins for the values the ExternalSecret provides, valid in staging and production. */
const PLACEHOLDER_SECRETS: Record<string, string> = {
  DATABASE_URL: 'postgres://app@postgres:5432/app',
  REDIS_URL: 'redis://redis:6379',
  RATE_LIMIT_STORAGE_URI: 'redis://redis:6379',
  CIRCUIT_BREAKER_CACHE_URL: 'redis://redis:6379',
  SECRET_KEY: 'k'.repeat(48),
};
/** PostgreSQL's default max_connections, less its superuser_reserved_connections. */
const POSTGRES_CONNECTIONS = 100 - 3;
/** One connection each for the migration Job and the backup CronJob. */
const JOB_CONNECTIONS = 2;
/** A request each Ingress path routes, to ask the real app. */
const INGRESS_SAMPLES: Record<string, string> = {
  '/v1': '/v1/random?min=1&max=6',
  '/docs': '/docs',
  '/openapi.json': '/openapi.json',
};

const isSetting = (name: string): name is SettingName => name in settings;
const isSecret = (name: string) =>
  isSetting(name) && (settings[name] as { secret?: boolean }).secret === true;

/** The containers that run the reliability-api image (the API and its migration). */
function appContainers(objects: K8sObject[]) {
  return podTemplates(objects).flatMap((t) =>
    containersOf(t.spec)
      .filter((c) => c.image?.startsWith(`${API_IMAGE}:`))
      .map((container) => ({ where: `${t.owner}/${container.name}`, container })),
  );
}

function apiContainers(objects: K8sObject[]) {
  return componentTemplates(objects, 'api').flatMap((t) =>
    t.spec.containers.map((container) => ({ where: `${t.owner}/${container.name}`, template: t, container })),
  );
}

/**
 * What the API container sees, secrets replaced by placeholders. Unset settings get their schema default,
 * as loadConfig would give them.
 */
function environmentOf(objects: K8sObject[]): Record<string, string> {
  const [api] = apiContainers(objects);
  if (api === undefined) throw new Error('no API container');
  const env: Record<string, string> = { SETTINGS_SECRETS_DIR: '/nonexistent' };
  for (const name of Object.keys(settings) as SettingName[]) {
    const fromSecret = api.container.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef !== undefined;
    const value = fromSecret ? PLACEHOLDER_SECRETS[name] : effectiveSetting(objects, api.container, name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** nginx size syntax: bytes, or k/m/g in powers of 1024. */
function nginxBytes(size: string): number {
  const match = /^(\d+)([kKmMgG]?)$/.exec(size);
  if (match === null) throw new Error(`not an nginx size: ${size}`);
  const power = ' kmg'.indexOf((match[2] || ' ').toLowerCase());
  return Number(match[1]) * 1024 ** power;
}

// ---------------------------------------------------------------------------------------------------
// Checks: each returns one line per violation.

const checks = {
  configMapKeys: (objects: K8sObject[]) =>
    all(objects, 'ConfigMap').flatMap((cm) =>
      Object.keys(cm.data ?? {})
        .filter((key) => !isSetting(key))
        .map((key) => `ConfigMap/${cm.metadata.name}: ${key} is not a setting of src/config/schema.ts`),
    ),

  envNames: (objects: K8sObject[]) =>
    appContainers(objects).flatMap(({ where, container }) =>
      (container.env ?? []).flatMap((e) => {
        if (!isSetting(e.name)) return [`${where}: ${e.name} is not a setting of src/config/schema.ts`];
        if (e.valueFrom?.secretKeyRef !== undefined && !isSecret(e.name)) {
          return [`${where}: ${e.name} is read from a Secret but is not a secret setting`];
        }
        return [];
      }),
    ),

  loadsConfig: (objects: K8sObject[]) => {
    try {
      const config = loadConfig(environmentOf(objects), { cwd: '/nonexistent' });
      const out: string[] = [];
      if (config.ENVIRONMENT !== 'staging' && config.ENVIRONMENT !== 'production') {
        out.push(`ENVIRONMENT is ${config.ENVIRONMENT}`);
      }
      if (config.MIGRATE_ON_START) out.push('the pods would migrate on start');
      if (config.HOST !== '0.0.0.0' && config.HOST !== '::')
        out.push(`HOST ${config.HOST} is not reachable by probes`);
      return out;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.issues.map((i) => `${i.key}: ${i.message}`);
    }
  },

  ports: (objects: K8sObject[]) =>
    apiContainers(objects).flatMap(({ where, template, container }) => {
      const port = effectiveSetting(objects, container, 'PORT');
      const http = container.ports?.find((p) => p.name === 'http')?.containerPort;
      const out: string[] = [];
      if (String(http) !== port) out.push(`${where}: container port ${http} is not PORT ${port}`);
      const scraped = template.annotations['prometheus.io/port'];
      if (scraped !== port) out.push(`${where}: prometheus.io/port ${scraped} is not PORT ${port}`);
      return out;
    }),

  bodyLimit: (objects: K8sObject[]) => {
    const [api] = apiContainers(objects);
    const limit = Number(effectiveSetting(objects, api!.container, 'BODY_LIMIT_BYTES'));
    return all(objects, 'Ingress').flatMap((ingress) => {
      const size = ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '1m';
      return nginxBytes(size) < limit
        ? [
            `Ingress/${ingress.metadata.name}: nginx refuses bodies of ${size} that BODY_LIMIT_BYTES ${limit} accepts`,
          ]
        : [];
    });
  },

  connectionBudget: (objects: K8sObject[]) => {
    const [api] = apiContainers(objects);
    const pool = Number(effectiveSetting(objects, api!.container, 'DB_POOL_SIZE'));
    const max = one(objects, 'HorizontalPodAutoscaler', APP).spec!.maxReplicas;
    const surgeSetting = one(objects, 'Deployment', APP).spec?.strategy?.rollingUpdate?.maxSurge ?? '25%';
    const surge = scaled(surgeSetting, max, 'up');
    const total = (max + surge) * pool + JOB_CONNECTIONS;
    return total > POSTGRES_CONNECTIONS
      ? [
          `(${max} + ${surge}) pods x DB_POOL_SIZE ${pool} + ${JOB_CONNECTIONS} = ${total} > ${POSTGRES_CONNECTIONS} connections`,
        ]
      : [];
  },

  probesAnswer: async (app: TestApp['app'], objects: K8sObject[]) => {
    const out: string[] = [];
    for (const { where, container } of apiContainers(objects)) {
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
        const path = container[probe]?.httpGet?.path;
        if (path === undefined) continue;
        const { statusCode } = await app.inject({ url: path });
        if (statusCode !== 200) out.push(`${where}: ${probe} ${path} answers ${statusCode}`);
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: configuration in sync with the app', () => {
  let rendered: Record<Render, K8sObject[]>;
  let t: TestApp;
  beforeAll(async () => {
    rendered = renderAll(RENDERS);
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t?.app.close();
  });

  describe.each(RENDERS)('%s', (name) => {
    const objects = () => rendered[name];

    it('every ConfigMap key is a setting of src/config/schema.ts', () => {
      expect(checks.configMapKeys(objects())).toEqual([]);
    });
    it('every variable the app containers set is a setting, and those read from a Secret are secret settings', () => {
      expect(checks.envNames(objects())).toEqual([]);
    });
    it('the ConfigMap, with the secrets in place, passes loadConfig for a deployed environment', () => {
      expect(checks.loadsConfig(objects())).toEqual([]);
    });
    it('the container port and the scrape port equal the ConfigMap PORT', () => {
      expect(checks.ports(objects())).toEqual([]);
    });
    it('the SLO targets the pods report equal the objectives the shipped rules derive from (the setting defaults)', () => {
      const data = one(objects(), 'ConfigMap', `${APP}-config`).data!;
      expect([data.SLO_TARGET_SUCCESS_RATIO, data.SLO_TARGET_P99_LATENCY_SECONDS]).toEqual([
        settings.SLO_TARGET_SUCCESS_RATIO.default,
        settings.SLO_TARGET_P99_LATENCY_SECONDS.default,
      ]);
    });
    it('nginx accepts every body that BODY_LIMIT_BYTES accepts', () => {
      expect(checks.bodyLimit(objects())).toEqual([]);
    });
    it('at the HPA maximum plus a surge pod, the pools, the migration and the backup fit in PostgreSQL’s connections', () => {
      expect(checks.connectionBudget(objects())).toEqual([]);
    });
    it('the probe paths answer 200 on the real app', async () => {
      expect(await checks.probesAnswer(t.app, objects())).toEqual([]);
    });
  });

  describe('on the real app', () => {
    it('the metrics path of the scrape annotations and the ServiceMonitor answers with Prometheus text', async () => {
      const paths = new Set([
        ...componentTemplates(rendered.base, 'api').map((tp) => tp.annotations['prometheus.io/path']),
        ...all(rendered.base, 'ServiceMonitor').flatMap((m) => m.spec.endpoints?.map((e) => e.path) ?? []),
      ]);
      expect([...paths]).toEqual(['/metrics']);
      const response = await t.app.inject({ url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
    });

    it('every path the Ingress routes has a sample request, and each answers without an error', async () => {
      for (const name of RENDERS) {
        for (const path of all(rendered[name], 'Ingress').flatMap(
          (i) => i.spec?.rules?.flatMap((r) => r.http?.paths ?? []) ?? [],
        )) {
          const sample = INGRESS_SAMPLES[path.path ?? '/'];
          expect(sample, `a sample request for Ingress path ${path.path}`).toBeDefined();
          const { statusCode } = await t.app.inject({ url: sample! });
          expect(statusCode, sample).toBeLessThan(400);
        }
      }
    });

    it('the smoke analysis URLs answer, with values their success conditions accept', async () => {
      const template = one(rendered['production-blue-green'], 'AnalysisTemplate', 'reliability-api-smoke');
      const metrics = template.spec.metrics;
      expect(metrics.length).toBeGreaterThan(0);
      for (const metric of metrics) {
        const web = metric.provider.web!;
        const url = new URL(web.url.replace(/\{\{args\.[\w-]+\}\}/g, 'x'));
        const response = await t.app.inject({ url: `${url.pathname}${url.search}` });
        expect(response.statusCode, web.url).toBe(200);
        const field = /^\{\$\.(\w+)\}$/.exec(web.jsonPath ?? '')?.[1];
        expect(field, web.jsonPath).toBeDefined();
        const result: unknown = response.json<Record<string, unknown>>()[field!];
        // The conditions use only comparisons, || and &&, which mean the same in Argo Rollouts' expression
        // language and in JavaScript.
        const condition = metric.successCondition ?? '';
        expect(condition).toMatch(/^[\w\s."=<>|&!]+$/);
        // eslint-disable-next-line @typescript-eslint/no-implied-eval
        const accepts = new Function('result', `return ${condition};`) as (r: unknown) => boolean;
        expect(accepts(result), `${condition} with result ${JSON.stringify(result)}`).toBe(true);
      }
    });
  });

  describe('the checks catch the faults they guard against', () => {
    const api = (objects: K8sObject[]) =>
      one(objects, 'Deployment', APP).spec!.template.spec!.containers.find((c) => c.name === 'api')!;
    const data = (objects: K8sObject[]) => one(objects, 'ConfigMap', `${APP}-config`).data!;
    const broken = (mutate: (objects: K8sObject[]) => void) => {
      const objects = structuredClone(rendered.production);
      mutate(objects);
      return objects;
    };

    it('when the ConfigMap has a misspelt key, then it is reported', () => {
      const objects = broken((o) => (data(o).DATABSE_POOL = '5'));
      expect(checks.configMapKeys(objects)).toEqual([
        'ConfigMap/reliability-api-config: DATABSE_POOL is not a setting of src/config/schema.ts',
      ]);
    });

    it('when a container sets a variable that is not a setting, then it is reported', () => {
      const objects = broken((o) => api(o).env!.push({ name: 'NODE_ENV', value: 'production' }));
      expect(checks.envNames(objects)).toContainEqual(
        expect.stringMatching(/api: NODE_ENV is not a setting/),
      );
    });

    it('when a non-secret setting is read from a Secret, then it is reported', () => {
      const objects = broken((o) =>
        api(o).env!.push({
          name: 'LOG_LEVEL',
          valueFrom: { secretKeyRef: { name: 'reliability-api-secrets', key: 'LOG_LEVEL' } },
        }),
      );
      expect(checks.envNames(objects)).toContainEqual(
        expect.stringMatching(/LOG_LEVEL is read from a Secret/),
      );
    });

    it('when a ConfigMap value is invalid, then loadConfig’s message is reported', () => {
      const objects = broken((o) => (data(o).LOG_LEVEL = 'loud'));
      expect(checks.loadsConfig(objects)).toEqual([expect.stringMatching(/^LOG_LEVEL: /)]);
    });

    it('when the container port differs from PORT, then it is reported', () => {
      const objects = broken((o) => (api(o).ports![0]!.containerPort = 8080));
      expect(checks.ports(objects)).toEqual([expect.stringMatching(/container port 8080 is not PORT 8000/)]);
    });

    it('when BODY_LIMIT_BYTES exceeds the nginx body size, then it is reported', () => {
      const objects = broken((o) => (data(o).BODY_LIMIT_BYTES = String(8 * 1024 * 1024)));
      expect(checks.bodyLimit(objects)).toEqual([expect.stringMatching(/nginx refuses bodies of 1m/)]);
    });

    it('when the pools outgrow PostgreSQL, then it is reported', () => {
      const objects = broken((o) => (data(o).DB_POOL_SIZE = '10'));
      expect(checks.connectionBudget(objects)).toEqual([
        '(15 + 1) pods x DB_POOL_SIZE 10 + 2 = 162 > 97 connections',
      ]);
    });

    it('when a probe names a path the app does not serve, then its answer is reported', async () => {
      const objects = broken((o) => (api(o).livenessProbe!.httpGet!.path = '/healthz'));
      expect(await checks.probesAnswer(t.app, objects)).toEqual([
        expect.stringMatching(/livenessProbe \/healthz answers 404/),
      ]);
    });
  });
});
