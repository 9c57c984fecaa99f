// The rules the rendered manifests must keep, each a check that returns its violations, run on the base,
// both overlays and both Argo Rollouts variants. The last block breaks a copy of the base in the ways each
// check guards against and asserts that the check reports it, so no check passes vacuously.
import { existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { beforeAll, describe, expect, it } from 'vitest';
import { settings, type SettingName } from '../../src/config/schema.js';
import {
  APP_KUSTOMIZATIONS,
  REPO_ROOT,
  all,
  componentTemplates,
  containersOf,
  describeObject,
  effectiveSetting,
  find,
  one,
  podTemplates,
  preStopSeconds,
  quantity,
  renderAll,
  requireKubectl,
  scaled,
  selects,
  type K8sObject,
  type PodTemplate,
} from '../helpers/kustomize.js';

type AppKustomization = (typeof APP_KUSTOMIZATIONS)[number];
type Check = (objects: K8sObject[]) => string[];

const APP = 'reliability-api';
const API_IMAGE = 'ghcr.io/reliability-api/reliability-api';
const CONFIG_MAP = 'reliability-api-config';
const SERVICE_ACCOUNT = 'reliability-api';
const POD_UID = 10001;
/** The secrets the API reads; each comes from the Secret the ExternalSecret produces. */
const API_SECRETS = [
  'DATABASE_URL',
  'REDIS_URL',
  'RATE_LIMIT_STORAGE_URI',
  'CIRCUIT_BREAKER_CACHE_URL',
  'SECRET_KEY',
];
/** The non-secret settings the ConfigMap sets. */
const CONFIG_KEYS = [
  'ENVIRONMENT',
  'LOG_LEVEL',
  'PORT',
  'HOST',
  'SHUTDOWN_DRAIN_SECONDS',
  'SHUTDOWN_TIMEOUT_SECONDS',
  'MIGRATE_ON_START',
  'DB_POOL_SIZE',
  'CORS_ALLOW_ORIGINS',
  'TRUST_PROXY',
  'BODY_LIMIT_BYTES',
];
const PROBE_PATHS = {
  startupProbe: '/health/startup',
  livenessProbe: '/health/live',
  readinessProbe: '/health/ready',
} as const;
/** Paths that must stay inside the cluster. */
const INTERNAL_PATHS = [
  '/metrics',
  '/health',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/ready',
  '/version',
];
/** Who may open connections to the API pods: namespace -> the app.kubernetes.io/name of the pods. */
const INGRESS_SOURCES: Record<string, string> = {
  'ingress-nginx': 'ingress-nginx',
  monitoring: 'prometheus',
};
/** The blue-green variant also lets the Argo Rollouts controller run its smoke analysis. */
const EXTRA_INGRESS_SOURCES: Partial<Record<AppKustomization, Record<string, string>>> = {
  'production-blue-green': { 'argo-rollouts': 'argo-rollouts' },
};
/**
 * Where each component may connect to, besides DNS: PostgreSQL, Redis, the OTLP collector, Prometheus
 * (/v1/slo) and HTTPS (the public randomness beacon, the triage LLM).
 */
const EGRESS_PORTS: Record<string, number[]> = {
  api: [5432, 6379, 4317, 4318, 9090, 443],
  migrate: [5432],
  backup: [5432],
};
const MIGRATE_COMMAND = ['node', 'dist/src/cli/main.js', 'migrate', 'up'];

// ---------------------------------------------------------------------------------------------------
// Helpers

const apiTemplates = (objects: K8sObject[]) => componentTemplates(objects, 'api');
const jobTemplates = (objects: K8sObject[]) =>
  podTemplates(objects).filter((t) => t.labels['app.kubernetes.io/component'] !== 'api');

function each(
  templates: PodTemplate[],
  fn: (template: PodTemplate, container: IContainer, where: string) => string | string[] | undefined,
): string[] {
  return templates.flatMap((t) =>
    containersOf(t.spec).flatMap((c) => {
      const found = fn(t, c, `${t.owner}/${c.name}`);
      return found === undefined ? [] : Array.isArray(found) ? found : [found];
    }),
  );
}

function httpPort(container: IContainer): number | undefined {
  return container.ports?.find((p) => p.name === 'http')?.containerPort;
}

function imageProblem(image: string | undefined): string | undefined {
  if (image === undefined) return 'has no image';
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return undefined;
  const name = image.slice(image.lastIndexOf('/') + 1);
  const colon = name.lastIndexOf(':');
  if (colon === -1) return `image ${image} has no tag`;
  const tag = name.slice(colon + 1);
  if (tag === 'latest') return `image ${image} uses the latest tag`;
  if (!/^v?\d+(\.\d+)*([.+-][\w.+-]+)?$/.test(tag)) return `image ${image}: tag ${tag} is not a version`;
  return undefined;
}

/** Whether an Ingress path would route `url` (networking.k8s.io/v1 path matching). */
function routes(path: { path?: string; pathType: string }, url: string): boolean {
  const p = path.path ?? '/';
  if (path.pathType === 'Exact') return url === p;
  if (p === '/') return true;
  const prefix = p.endsWith('/') ? p.slice(0, -1) : p;
  return url === prefix || url.startsWith(`${prefix}/`);
}

/** The HPA minimum of the workload running the API pods, else the Deployment's replicas. */
function minimumReplicas(objects: K8sObject[]): number {
  const hpa = find(objects, 'HorizontalPodAutoscaler', APP);
  return hpa?.spec?.minReplicas ?? one(objects, 'Deployment', APP).spec?.replicas ?? 1;
}

function allowedDisruptions(
  spec: { minAvailable?: number | string | null; maxUnavailable?: number | string | null },
  replicas: number,
): number {
  if (spec.minAvailable !== undefined && spec.minAvailable !== null) {
    return replicas - scaled(spec.minAvailable, replicas, 'up');
  }
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
    return Math.min(replicas, scaled(spec.maxUnavailable, replicas, 'up'));
  }
  return replicas;
}

// ---------------------------------------------------------------------------------------------------
// Checks: each returns one line per violation.

const checks = {
  deploymentStrategy: (objects) => {
    const spec = one(objects, 'Deployment', APP).spec;
    const update = spec?.strategy?.rollingUpdate;
    const out: string[] = [];
    if (spec?.strategy?.type !== 'RollingUpdate')
      out.push(`strategy is ${spec?.strategy?.type}, not RollingUpdate`);
    if (update?.maxUnavailable !== 0) out.push(`maxUnavailable is ${update?.maxUnavailable}, not 0`);
    if (update?.maxSurge !== 1) out.push(`maxSurge is ${update?.maxSurge}, not 1`);
    if (spec?.minReadySeconds !== 10) out.push(`minReadySeconds is ${spec?.minReadySeconds}, not 10`);
    if (spec?.revisionHistoryLimit !== 5)
      out.push(`revisionHistoryLimit is ${spec?.revisionHistoryLimit}, not 5`);
    return out;
  },

  imageTags: (objects) =>
    each(podTemplates(objects), (_t, c, where) => {
      const problem = imageProblem(c.image);
      return problem === undefined ? undefined : `${where}: ${problem}`;
    }),

  apiImage: (objects) => {
    const images = [...apiTemplates(objects), ...componentTemplates(objects, 'migrate')].flatMap((t) =>
      t.spec.containers.map((c) => ({ where: `${t.owner}/${c.name}`, image: c.image ?? '' })),
    );
    const out = images
      .filter(({ image }) => !image.startsWith(`${API_IMAGE}:`))
      .map(({ where, image }) => `${where}: image ${image} is not ${API_IMAGE}`);
    if (new Set(images.map((i) => i.image)).size > 1) {
      out.push(`the API and the migration run different images: ${images.map((i) => i.image).join(', ')}`);
    }
    return out;
  },

  probePaths: (objects) =>
    each(apiTemplates(objects), (_t, c, where) =>
      Object.entries(PROBE_PATHS).flatMap(([probe, path]) => {
        const get = c[probe as keyof typeof PROBE_PATHS]?.httpGet;
        if (get === undefined) return [`${where}: no ${probe} with httpGet`];
        const out: string[] = [];
        if (get.path !== path) out.push(`${where}: ${probe} probes ${get.path}, not ${path}`);
        if (get.port !== 'http' && get.port !== httpPort(c))
          out.push(`${where}: ${probe} probes port ${get.port}`);
        return out;
      }),
    ),

  probeTiming: (objects) =>
    each(apiTemplates(objects), (_t, c, where) => {
      const out: string[] = [];
      const startup = c.startupProbe;
      const window = (startup?.failureThreshold ?? 3) * (startup?.periodSeconds ?? 10);
      if (window < 60 || window > 90)
        out.push(`${where}: the startup probe allows ${window} s, not about 60 s`);
      if (c.readinessProbe?.periodSeconds !== 5) {
        out.push(`${where}: readiness is probed every ${c.readinessProbe?.periodSeconds} s, not 5 s`);
      }
      return out;
    }),

  preStop: (objects) =>
    each(apiTemplates(objects), (_t, c, where) => {
      const seconds = preStopSeconds(c);
      return seconds === undefined || seconds <= 0 ? `${where}: no preStop sleep before SIGTERM` : undefined;
    }),

  shutdownBudget: (objects) =>
    each(apiTemplates(objects), (t, c, where) => {
      const grace = t.spec.terminationGracePeriodSeconds ?? 30;
      const preStop = preStopSeconds(c) ?? 0;
      const drain = Number(effectiveSetting(objects, c, 'SHUTDOWN_DRAIN_SECONDS'));
      const timeout = Number(effectiveSetting(objects, c, 'SHUTDOWN_TIMEOUT_SECONDS'));
      const budget = preStop + drain + timeout;
      return grace > budget
        ? undefined
        : `${where}: terminationGracePeriodSeconds ${grace} does not exceed preStop ${preStop} + drain ${drain} + shutdown timeout ${timeout} = ${budget}`;
    }),

  resources: (objects) =>
    each(podTemplates(objects), (_t, c, where) =>
      (['cpu', 'memory'] as const).flatMap((resource) => {
        const request = c.resources?.requests?.[resource];
        const limit = c.resources?.limits?.[resource];
        if (request === undefined || limit === undefined)
          return [`${where}: no ${resource} request and limit`];
        return quantity(limit) < quantity(request)
          ? [`${where}: ${resource} limit ${limit} < request ${request}`]
          : [];
      }),
    ),

  scrapeAnnotations: (objects) =>
    each(apiTemplates(objects), (t, c, where) => {
      const a = t.annotations;
      const expected = {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(httpPort(c)),
        'prometheus.io/path': '/metrics',
      };
      return Object.entries(expected)
        .filter(([k, v]) => a[k] !== v)
        .map(([k, v]) => `${where}: annotation ${k} is ${a[k]}, not ${v}`);
    }),

  nonRoot: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const pod = t.spec.securityContext ?? {};
      const own = c.securityContext ?? {};
      const uid = own.runAsUser ?? pod.runAsUser;
      const gid = own.runAsGroup ?? pod.runAsGroup;
      const out: string[] = [];
      if ((own.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(`${where}: runAsNonRoot is not true`);
      if (uid === undefined || uid === 0) out.push(`${where}: runs as user ${uid ?? "the image's"}`);
      if (gid === undefined || gid === 0) out.push(`${where}: runs as group ${gid ?? "the image's"}`);
      if (pod.fsGroup === 0) out.push(`${where}: fsGroup is 0`);
      return out;
    }),

  podIdentity: (objects) => {
    return podTemplates(objects).flatMap((t) => {
      const pod = t.spec.securityContext ?? {};
      return (['runAsUser', 'runAsGroup', 'fsGroup'] as const)
        .filter((k) => pod[k] !== POD_UID)
        .map((k) => `${t.owner}: ${k} is ${pod[k]}, not ${POD_UID}`);
    });
  },

  seccomp: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const type = c.securityContext?.seccompProfile?.type ?? t.spec.securityContext?.seccompProfile?.type;
      return type === 'RuntimeDefault'
        ? undefined
        : `${where}: seccomp profile is ${type}, not RuntimeDefault`;
    }),

  containerHardening: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const sc = c.securityContext ?? {};
      const out: string[] = [];
      if (sc.readOnlyRootFilesystem !== true) out.push(`${where}: root filesystem is writable`);
      if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: privilege escalation is allowed`);
      if (sc.privileged === true) out.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL'))
        out.push(`${where}: capabilities are not all dropped`);
      if ((sc.capabilities?.add ?? []).length > 0)
        out.push(`${where}: adds capabilities ${sc.capabilities?.add?.join(', ')}`);
      if (t.spec.hostNetwork === true || t.spec.hostPID === true || t.spec.hostIPC === true) {
        out.push(`${t.owner}: shares a host namespace`);
      }
      return out;
    }),

  tmpVolume: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const mount = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      const volume = t.spec.volumes?.find((v) => v.name === mount?.name);
      return volume?.emptyDir === undefined ? `${where}: no emptyDir mounted at /tmp` : undefined;
    }),

  topologySpread: (objects) => {
    return apiTemplates(objects).flatMap((t) =>
      ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']
        .filter(
          (key) =>
            !(t.spec.topologySpreadConstraints ?? []).some(
              (c) => c.topologyKey === key && c.maxSkew >= 1 && selects(c.labelSelector, t.labels),
            ),
        )
        .map((key) => `${t.owner}: replicas are not spread across ${key}`),
    );
  },

  serviceAccount: (objects) => {
    const out = podTemplates(objects).flatMap((t) => [
      ...(t.spec.serviceAccountName === SERVICE_ACCOUNT
        ? []
        : [`${t.owner}: service account ${t.spec.serviceAccountName}`]),
      ...(t.spec.automountServiceAccountToken === false
        ? []
        : [`${t.owner}: mounts a service account token`]),
    ]);
    const account = find(objects, 'ServiceAccount', SERVICE_ACCOUNT);
    if (account === undefined) out.push(`no ServiceAccount/${SERVICE_ACCOUNT}`);
    else if (account.automountServiceAccountToken !== false)
      out.push(`ServiceAccount/${SERVICE_ACCOUNT} mounts its token`);
    return out;
  },

  secretSources: (objects) => {
    const isSecret = (name: string) =>
      name in settings && (settings[name as SettingName] as { secret?: boolean }).secret === true;
    const produced = new Map(
      all(objects, 'ExternalSecret').map((e) => [
        e.spec?.target?.name ?? e.metadata.name,
        (e.spec?.data ?? []).map((d) => d.secretKey),
      ]),
    );
    const out = all(objects, 'ConfigMap').flatMap((cm) =>
      Object.keys(cm.data ?? {})
        .filter(isSecret)
        .map((key) => `${describeObject(cm)} holds the secret ${key}`),
    );
    out.push(
      ...each(podTemplates(objects), (_t, c, where) =>
        (c.env ?? [])
          .filter((e) => isSecret(e.name))
          .flatMap((e) => {
            const ref = e.valueFrom?.secretKeyRef;
            if (ref === undefined) return [`${where}: ${e.name} is not read from a Secret`];
            const keys = produced.get(ref.name ?? '');
            if (keys === undefined)
              return [`${where}: ${e.name} reads Secret ${ref.name}, which no ExternalSecret produces`];
            return keys.includes(ref.key)
              ? []
              : [`${where}: ${e.name} reads key ${ref.key}, which the ExternalSecret does not set`];
          }),
      ),
    );
    out.push(
      ...each(apiTemplates(objects), (_t, c, where) =>
        API_SECRETS.filter(
          (name) => c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef === undefined,
        ).map((name) => `${where}: ${name} is not set from the Secret`),
      ),
    );
    return out;
  },

  externalSecret: (objects) => {
    const secrets = all(objects, 'ExternalSecret');
    if (secrets.length === 0) return ['no ExternalSecret'];
    return secrets.flatMap((e) => {
      const out: string[] = [];
      const where = describeObject(e);
      if (e.apiVersion !== 'external-secrets.io/v1beta1')
        out.push(`${where}: apiVersion ${String(e.apiVersion)}`);
      const store = e.spec?.secretStoreRef;
      if (store?.kind !== 'ClusterSecretStore' || store.name !== 'platform-secrets') {
        out.push(`${where}: store is ${store?.kind}/${store?.name}, not ClusterSecretStore/platform-secrets`);
      }
      for (const d of e.spec?.data ?? [])
        if (!d.remoteRef.key) out.push(`${where}: ${d.secretKey} has no remote key`);
      return out;
    });
  },

  noCommittedSecret: (objects) =>
    objects.filter((o) => o.kind === 'Secret').map((o) => `${describeObject(o)} is committed`),

  configMap: (objects) => {
    const out = each(apiTemplates(objects), (_t, c, where) =>
      (c.envFrom ?? []).some((s) => s.configMapRef?.name === CONFIG_MAP)
        ? undefined
        : `${where}: no envFrom ConfigMap ${CONFIG_MAP}`,
    );
    const data = find(objects, 'ConfigMap', CONFIG_MAP)?.data;
    if (data === undefined) return [...out, `no ConfigMap/${CONFIG_MAP}`];
    out.push(...CONFIG_KEYS.filter((k) => !(k in data)).map((k) => `${CONFIG_MAP} does not set ${k}`));
    if (data.MIGRATE_ON_START !== 'false')
      out.push(`${CONFIG_MAP}: MIGRATE_ON_START is ${data.MIGRATE_ON_START}, not false`);
    out.push(
      ...each(apiTemplates(objects), (_t, c, where) =>
        effectiveSetting(objects, c, 'METRICS_PORT') === undefined
          ? undefined
          : `${where}: METRICS_PORT is set`,
      ),
    );
    return out;
  },

  services: (objects) => {
    const api = apiTemplates(objects);
    const jobs = jobTemplates(objects);
    const out: string[] = [];
    const main = find(objects, 'Service', APP);
    if (main === undefined) return [`no Service/${APP}`];
    if ((main.spec?.type ?? 'ClusterIP') !== 'ClusterIP') out.push(`Service/${APP} is ${main.spec?.type}`);
    if (!(main.spec?.ports ?? []).some((p) => p.port === 80 && p.targetPort === 'http')) {
      out.push(`Service/${APP} does not map port 80 to http`);
    }
    for (const service of all(objects, 'Service')) {
      const where = describeObject(service);
      const selector = { matchLabels: service.spec?.selector ?? {} };
      for (const t of api) if (!selects(selector, t.labels)) out.push(`${where} does not select ${t.owner}`);
      for (const t of jobs)
        if (selects(selector, t.labels)) out.push(`${where} selects the pods of ${t.owner}`);
      for (const port of service.spec?.ports ?? []) {
        for (const t of api) {
          const target = port.targetPort;
          const served = t.spec.containers.some((c) =>
            (c.ports ?? []).some((p) =>
              typeof target === 'string' ? p.name === target : p.containerPort === target,
            ),
          );
          if (!served) out.push(`${where}: target port ${target} is not a port of ${t.owner}`);
        }
      }
    }
    return out;
  },

  ingress: (objects) => {
    const ingresses = all(objects, 'Ingress');
    if (ingresses.length === 0) return ['no Ingress'];
    return ingresses.flatMap((ingress) => {
      const where = describeObject(ingress);
      const a = ingress.metadata.annotations ?? {};
      const spec = ingress.spec ?? {};
      const out: string[] = [];
      if (spec.ingressClassName !== 'nginx') out.push(`${where}: ingress class ${spec.ingressClassName}`);
      if (!a['cert-manager.io/cluster-issuer'])
        out.push(`${where}: no cert-manager.io/cluster-issuer annotation`);
      for (const key of ['limit-rps', 'limit-connections']) {
        if (!/^[1-9]\d*$/.test(a[`nginx.ingress.kubernetes.io/${key}`] ?? ''))
          out.push(`${where}: no nginx ${key} limit`);
      }
      const tlsHosts = (spec.tls ?? []).filter((t) => t.secretName).flatMap((t) => t.hosts ?? []);
      for (const rule of spec.rules ?? []) {
        if (rule.host === undefined || !tlsHosts.includes(rule.host))
          out.push(`${where}: host ${rule.host} has no TLS`);
        for (const path of rule.http?.paths ?? []) {
          const backend = path.backend.service;
          const service = backend === undefined ? undefined : find(objects, 'Service', backend.name);
          if (service === undefined)
            out.push(`${where}: ${path.path} routes to a missing Service ${backend?.name}`);
          else if (
            !(service.spec?.ports ?? []).some(
              (p) => p.name === backend?.port?.name || p.port === backend?.port?.number,
            )
          ) {
            out.push(`${where}: ${path.path} routes to a port ${backend?.name} does not have`);
          }
          for (const url of INTERNAL_PATHS)
            if (routes(path, url)) out.push(`${where}: ${path.path} exposes ${url}`);
        }
      }
      return out;
    });
  },

  autoscaler: (objects) => {
    const hpas = all(objects, 'HorizontalPodAutoscaler');
    if (hpas.length === 0) return ['no HorizontalPodAutoscaler'];
    return hpas.flatMap((hpa) => {
      const where = describeObject(hpa);
      const spec = hpa.spec!;
      const out: string[] = [];
      const ref = spec.scaleTargetRef;
      const target = objects.find(
        (o) => o.kind === ref.kind && o.metadata.name === ref.name && o.apiVersion === ref.apiVersion,
      );
      if (target === undefined)
        out.push(`${where}: scales a missing ${ref.apiVersion} ${ref.kind}/${ref.name}`);
      else if (target.kind === 'Deployment' && (target.spec as { replicas?: number }).replicas === 0) {
        out.push(`${where}: scales a Deployment kept at zero replicas`);
      }
      if ((spec.minReplicas ?? 1) < 2) out.push(`${where}: minReplicas ${spec.minReplicas} < 2`);
      if (spec.maxReplicas < (spec.minReplicas ?? 1)) out.push(`${where}: maxReplicas < minReplicas`);
      for (const [resource, utilization] of [
        ['cpu', 70],
        ['memory', 80],
      ] as const) {
        const metric = spec.metrics?.find((m) => m.type === 'Resource' && m.resource?.name === resource);
        if (
          metric?.resource?.target.type !== 'Utilization' ||
          metric.resource.target.averageUtilization !== utilization
        ) {
          out.push(`${where}: does not target ${utilization}% ${resource} utilization`);
        }
      }
      const down = spec.behavior?.scaleDown;
      if ((down?.stabilizationWindowSeconds ?? 0) < 300)
        out.push(`${where}: scale-down stabilization under 300 s`);
      const up = spec.behavior?.scaleUp?.policies ?? [];
      if (up.length === 0) out.push(`${where}: scale-up is not bounded by policies`);
      for (const p of up) {
        const bounded = p.periodSeconds >= 60 && (p.type === 'Percent' ? p.value <= 100 : p.value <= 4);
        if (!bounded)
          out.push(`${where}: scale-up policy ${p.type} ${p.value} per ${p.periodSeconds} s is not bounded`);
      }
      return out;
    });
  },

  disruptionBudget: (objects) => {
    const pdbs = all(objects, 'PodDisruptionBudget');
    if (pdbs.length === 0) return ['no PodDisruptionBudget'];
    const replicas = minimumReplicas(objects);
    return pdbs.flatMap((pdb) => {
      const where = describeObject(pdb);
      const out: string[] = [];
      for (const t of apiTemplates(objects))
        if (!selects(pdb.spec?.selector, t.labels)) out.push(`${where} does not cover ${t.owner}`);
      for (const t of jobTemplates(objects))
        if (selects(pdb.spec?.selector, t.labels)) out.push(`${where} covers ${t.owner}`);
      const allowed = allowedDisruptions(pdb.spec ?? {}, replicas);
      if (allowed < 1)
        out.push(`${where}: at ${replicas} replicas no pod may be evicted, so node drains block`);
      if (replicas - allowed < 1) out.push(`${where}: at ${replicas} replicas every pod may be evicted`);
      return out;
    });
  },

  networkPolicy: (objects, extraSources: Record<string, string> = {}) => {
    const sources = { ...INGRESS_SOURCES, ...extraSources };
    const policies = all(objects, 'NetworkPolicy');
    return podTemplates(objects).flatMap((t) => {
      const component = t.labels['app.kubernetes.io/component'] ?? '?';
      const mine = policies.filter((p) => selects(p.spec?.podSelector, t.labels));
      const out: string[] = [];
      for (const type of ['Ingress', 'Egress'] as const) {
        if (!mine.some((p) => (p.spec?.policyTypes ?? ['Ingress']).includes(type)))
          out.push(`${t.owner}: ${type.toLowerCase()} is not restricted`);
      }
      for (const rule of mine.flatMap((p) => p.spec?.ingress ?? [])) {
        if (component !== 'api') {
          out.push(`${t.owner}: accepts connections`);
          continue;
        }
        if ((rule.from ?? []).length === 0) out.push(`${t.owner}: accepts connections from anywhere`);
        for (const peer of rule.from ?? []) {
          const namespace = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
          const pods = peer.podSelector?.matchLabels?.['app.kubernetes.io/name'];
          if (peer.ipBlock !== undefined)
            out.push(`${t.owner}: accepts connections from ${peer.ipBlock.cidr}`);
          else if (namespace === undefined || !(namespace in sources))
            out.push(`${t.owner}: accepts connections from namespace ${namespace ?? 'any'}`);
          else if (pods !== sources[namespace])
            out.push(`${t.owner}: accepts connections from any pod of ${namespace}`);
        }
        const ports = rule.ports ?? [];
        if (ports.length === 0 || ports.some((p) => p.port !== 8000 || (p.protocol ?? 'TCP') !== 'TCP')) {
          out.push(`${t.owner}: accepts connections on ports other than 8000/TCP`);
        }
      }
      const allowed = EGRESS_PORTS[component] ?? [];
      const open = new Set<string>();
      for (const rule of mine.flatMap((p) => p.spec?.egress ?? [])) {
        if ((rule.ports ?? []).length === 0) out.push(`${t.owner}: may connect on any port`);
        for (const p of rule.ports ?? []) {
          const port = `${p.port}/${p.protocol ?? 'TCP'}`;
          open.add(port);
          if (p.port === 53) {
            const dns =
              (rule.to ?? []).length > 0 &&
              (rule.to ?? []).every(
                (peer) =>
                  peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system' &&
                  peer.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns',
              );
            if (!dns) out.push(`${t.owner}: port 53 is open to more than kube-dns`);
          } else if (
            typeof p.port !== 'number' ||
            !allowed.includes(p.port) ||
            (p.protocol ?? 'TCP') !== 'TCP'
          ) {
            out.push(`${t.owner}: may connect to ${port}`);
          }
        }
      }
      for (const needed of ['53/UDP', '53/TCP', ...allowed.map((p) => `${p}/TCP`)]) {
        if (!open.has(needed)) out.push(`${t.owner}: cannot reach ${needed}`);
      }
      return out;
    });
  },

  migrationJob: (objects) => {
    const job = find(objects, 'Job', 'reliability-api-migrate');
    if (job === undefined) return ['no Job/reliability-api-migrate'];
    const out: string[] = [];
    const a = job.metadata.annotations ?? {};
    if (a['argocd.argoproj.io/hook'] !== 'PreSync') out.push('the migration is not an Argo CD PreSync hook');
    if (!(a['argocd.argoproj.io/hook-delete-policy'] ?? '').includes('BeforeHookCreation')) {
      out.push('the migration hook is not replaced on each sync');
    }
    const spec = job.spec!;
    if (spec.backoffLimit === undefined || spec.backoffLimit > 3)
      out.push(`backoffLimit ${spec.backoffLimit}`);
    if (spec.ttlSecondsAfterFinished === undefined) out.push('no ttlSecondsAfterFinished');
    if (spec.activeDeadlineSeconds === undefined) out.push('no activeDeadlineSeconds');
    if (spec.template.spec?.restartPolicy !== 'Never')
      out.push(`restartPolicy ${spec.template.spec?.restartPolicy}`);
    const [container] = spec.template.spec?.containers ?? [];
    const command = [...(container?.command ?? []), ...(container?.args ?? [])];
    if (!isDeepStrictEqual(command, MIGRATE_COMMAND)) out.push(`runs ${command.join(' ')}`);
    const api = one(objects, 'Deployment', APP).spec?.template.spec?.containers.find((c) => c.name === 'api');
    if (
      !isDeepStrictEqual(container?.envFrom, api?.envFrom) ||
      !isDeepStrictEqual(container?.env, api?.env)
    ) {
      out.push('the migration is not configured like the API');
    }
    // What the Job needs must be appliable before the first sync (docs/kubernetes.md, "First sync").
    const secretNames = new Set(
      (container?.env ?? []).map((e) => e.valueFrom?.secretKeyRef?.name).filter(Boolean),
    );
    const needed = [
      find(objects, 'ServiceAccount', spec.template.spec?.serviceAccountName ?? ''),
      ...(container?.envFrom ?? []).map((s) => find(objects, 'ConfigMap', s.configMapRef?.name ?? '')),
      ...all(objects, 'ExternalSecret').filter((e) =>
        secretNames.has(e.spec?.target?.name ?? e.metadata.name),
      ),
    ];
    for (const object of needed) {
      if (object === undefined) out.push('the migration needs an object the kit does not render');
      else if (object.metadata.labels?.['app.kubernetes.io/component'] !== 'config') {
        out.push(`${describeObject(object)} is not labelled app.kubernetes.io/component=config`);
      }
    }
    return out;
  },

  backup: (objects) => {
    const cron = find(objects, 'CronJob', 'reliability-api-backup');
    if (cron === undefined) return ['no CronJob/reliability-api-backup'];
    const out: string[] = [];
    if (cron.spec?.concurrencyPolicy !== 'Forbid')
      out.push(`concurrencyPolicy ${cron.spec?.concurrencyPolicy}`);
    const pod = cron.spec?.jobTemplate.spec?.template.spec;
    const [container] = pod?.containers ?? [];
    if (!/^(docker\.io\/(library\/)?)?postgres:\d/.test(container?.image ?? '')) {
      out.push(`image ${container?.image} is not a versioned postgres image`);
    }
    const script = [...(container?.command ?? []), ...(container?.args ?? [])].join(' ');
    if (!script.includes('pg_dump -Fc')) out.push('does not run pg_dump -Fc');
    const mount = container?.volumeMounts?.find((m) => {
      const claim = pod?.volumes?.find((v) => v.name === m.name)?.persistentVolumeClaim?.claimName;
      return claim !== undefined && find(objects, 'PersistentVolumeClaim', claim) !== undefined;
    });
    if (mount === undefined || mount.readOnly === true)
      out.push('writes to no PersistentVolumeClaim of the kit');
    else if (!script.includes(`${mount.mountPath}/`))
      out.push(`the dump is not written under ${mount.mountPath}`);
    if (container?.env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef === undefined) {
      out.push('DATABASE_URL is not read from the Secret');
    }
    return out;
  },

  monitoring: (objects) => {
    const out: string[] = [];
    const service = one(objects, 'Service', APP);
    const monitors = all(objects, 'ServiceMonitor');
    if (monitors.length === 0) out.push('no ServiceMonitor');
    for (const monitor of monitors) {
      const where = describeObject(monitor);
      if (!selects(monitor.spec.selector, service.metadata.labels ?? {}))
        out.push(`${where} does not select Service/${APP}`);
      for (const endpoint of monitor.spec.endpoints ?? []) {
        if (!(service.spec?.ports ?? []).some((p) => p.name === endpoint.port))
          out.push(`${where}: no Service port ${endpoint.port}`);
        if (endpoint.path !== '/metrics') out.push(`${where}: scrapes ${endpoint.path}`);
      }
      const job =
        monitor.spec.jobLabel === undefined
          ? service.metadata.name
          : service.metadata.labels?.[monitor.spec.jobLabel];
      if (job !== APP) out.push(`${where}: scraped series get job="${job}", not job="${APP}"`);
    }
    const alerts = all(objects, 'PrometheusRule').flatMap(
      (r) => r.spec.groups?.flatMap((g) => g.rules ?? []) ?? [],
    );
    const down = alerts.find((r) => /^up\{job="reliability-api"\}\s*==\s*0$/.test(String(r.expr).trim()));
    if (down === undefined) return [...out, 'no alert on up{job="reliability-api"} == 0'];
    if (!down.for) out.push(`${down.alert}: no "for"`);
    if (!['critical', 'warning', 'info'].includes(down.labels?.severity ?? ''))
      out.push(`${down.alert}: no severity`);
    for (const key of ['summary', 'description', 'runbook_url']) {
      if (!down.annotations?.[key]) out.push(`${down.alert}: no ${key}`);
    }
    return out;
  },

  labels: (objects) => {
    const expected = { 'app.kubernetes.io/name': APP, 'app.kubernetes.io/part-of': APP };
    const missing = (labels: Record<string, string> | undefined) =>
      Object.entries(expected)
        .filter(([k, v]) => labels?.[k] !== v)
        .map(([k]) => k);
    return [
      ...objects.flatMap((o) => missing(o.metadata.labels).map((k) => `${describeObject(o)}: no label ${k}`)),
      ...podTemplates(objects).flatMap((t) => missing(t.labels).map((k) => `${t.owner} pods: no label ${k}`)),
    ];
  },
} satisfies Record<string, (objects: K8sObject[], ...rest: never[]) => string[]>;

// ---------------------------------------------------------------------------------------------------

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: policy', () => {
  let rendered: Record<AppKustomization, K8sObject[]>;
  beforeAll(() => {
    rendered = renderAll(APP_KUSTOMIZATIONS);
  });

  describe.each(APP_KUSTOMIZATIONS)('%s', (name) => {
    const objects = () => rendered[name];

    it('rolling updates never take a serving pod away: maxUnavailable 0, maxSurge 1, 10 s minReady, 5 revisions', () => {
      expect(checks.deploymentStrategy(objects())).toEqual([]);
    });
    it('every image has an explicit version tag, never latest', () => {
      expect(checks.imageTags(objects())).toEqual([]);
    });
    it('the API and its migration run the same reliability-api image', () => {
      expect(checks.apiImage(objects())).toEqual([]);
    });
    it("probes use the app's paths on the http port", () => {
      expect(checks.probePaths(objects())).toEqual([]);
    });
    it('the startup probe allows about 60 s and readiness is probed every 5 s', () => {
      expect(checks.probeTiming(objects())).toEqual([]);
    });
    it('a preStop sleep runs before SIGTERM', () => {
      expect(checks.preStop(objects())).toEqual([]);
    });
    it('terminationGracePeriodSeconds exceeds preStop + drain + shutdown timeout', () => {
      expect(checks.shutdownBudget(objects())).toEqual([]);
    });
    it('every container has CPU and memory requests and limits, limits at least the requests', () => {
      expect(checks.resources(objects())).toEqual([]);
    });
    it('API pods carry the Prometheus scrape annotations for /metrics on the http port', () => {
      expect(checks.scrapeAnnotations(objects())).toEqual([]);
    });
    it('no container runs as root', () => {
      expect(checks.nonRoot(objects())).toEqual([]);
    });
    it(`pods run as user, group and fsGroup ${POD_UID}`, () => {
      expect(checks.podIdentity(objects())).toEqual([]);
    });
    it('pods use the RuntimeDefault seccomp profile', () => {
      expect(checks.seccomp(objects())).toEqual([]);
    });
    it('containers have a read-only root filesystem, no privilege escalation and no capabilities', () => {
      expect(checks.containerHardening(objects())).toEqual([]);
    });
    it('every container has an emptyDir at /tmp', () => {
      expect(checks.tmpVolume(objects())).toEqual([]);
    });
    it('API replicas spread across nodes and zones', () => {
      expect(checks.topologySpread(objects())).toEqual([]);
    });
    it('pods run as the reliability-api service account and no token is mounted', () => {
      expect(checks.serviceAccount(objects())).toEqual([]);
    });
    it('secret settings come only from the Secret the ExternalSecret produces', () => {
      expect(checks.secretSources(objects())).toEqual([]);
    });
    it('the ExternalSecret reads the platform ClusterSecretStore, one remote key per setting', () => {
      expect(checks.externalSecret(objects())).toEqual([]);
    });
    it('no Secret is committed', () => {
      expect(checks.noCommittedSecret(objects())).toEqual([]);
    });
    it('non-secret settings come from the ConfigMap; migrations are off in the pods; METRICS_PORT is unset', () => {
      expect(checks.configMap(objects())).toEqual([]);
    });
    it('Services are ClusterIP on port 80 to http and never select migration or backup pods', () => {
      expect(checks.services(objects())).toEqual([]);
    });
    it('the Ingress serves TLS through nginx with rate limits and keeps probes and metrics internal', () => {
      expect(checks.ingress(objects())).toEqual([]);
    });
    it('the autoscaler targets 70% CPU and 80% memory, scales up bounded and down slowly', () => {
      expect(checks.autoscaler(objects())).toEqual([]);
    });
    it('the disruption budget keeps a pod serving and never blocks a drain at the minimum scale', () => {
      expect(checks.disruptionBudget(objects())).toEqual([]);
    });
    it('network policies allow only ingress-nginx and Prometheus in, and only DNS, PostgreSQL, Redis, OTLP, Prometheus and HTTPS out', () => {
      expect(checks.networkPolicy(objects(), EXTRA_INGRESS_SOURCES[name])).toEqual([]);
    });
    it('the migration Job is a PreSync hook running `migrate up` with the API configuration', () => {
      expect(checks.migrationJob(objects())).toEqual([]);
    });
    it('the backup CronJob runs pg_dump -Fc from a pinned postgres image onto a volume, never twice at once', () => {
      expect(checks.backup(objects())).toEqual([]);
    });
    it('the ServiceMonitor scrapes /metrics and the instance-down alert names job reliability-api', () => {
      expect(checks.monitoring(objects())).toEqual([]);
    });
    it('every object and pod carries the app.kubernetes.io labels', () => {
      expect(checks.labels(objects())).toEqual([]);
    });
  });

  describe('base', () => {
    it('is namespace-less', () => {
      expect(rendered.base.filter((o) => o.metadata.namespace !== undefined).map(describeObject)).toEqual([]);
    });

    it('runs 2 replicas, autoscaled between 2 and 10', () => {
      expect(one(rendered.base, 'Deployment', APP).spec?.replicas).toBe(2);
      const hpa = one(rendered.base, 'HorizontalPodAutoscaler', APP).spec!;
      expect([hpa.minReplicas, hpa.maxReplicas]).toEqual([2, 10]);
    });

    it('the ServiceMonitor and the PrometheusRule are monitoring.coreos.com/v1', () => {
      const kinds = rendered.base
        .filter((o) => o.apiVersion === 'monitoring.coreos.com/v1')
        .map((o) => o.kind);
      expect(kinds.sort()).toEqual(['PrometheusRule', 'ServiceMonitor']);
    });

    // The rules themselves (and their runbooks) are checked in depth by test/deploy/monitoring.test.ts.
    it('the runbook of every alert is a file of docs/runbooks named after the alert', () => {
      const alerts = all(rendered.base, 'PrometheusRule')
        .flatMap((r) => r.spec.groups?.flatMap((g) => g.rules ?? []) ?? [])
        .filter((r) => r.alert !== undefined);
      expect(alerts.length).toBeGreaterThan(0);
      for (const { alert, annotations } of alerts) {
        expect(annotations?.runbook_url).toBe(
          `https://github.com/reliability-api/reliability-api/blob/main/docs/runbooks/${alert}.md`,
        );
        expect(existsSync(`${REPO_ROOT}docs/runbooks/${alert}.md`), `docs/runbooks/${alert}.md`).toBe(true);
      }
    });
  });

  describe('the checks catch the faults they guard against', () => {
    const api = (objects: K8sObject[]) => one(objects, 'Deployment', APP).spec!.template.spec!;
    const apiContainer = (objects: K8sObject[]) => api(objects).containers.find((c) => c.name === 'api')!;
    const config = (objects: K8sObject[]) => one(objects, 'ConfigMap', CONFIG_MAP).data!;
    const policy = (objects: K8sObject[]) => one(objects, 'NetworkPolicy', APP).spec!;

    const faults: { fault: string; check: Check; report: RegExp; mutate: (objects: K8sObject[]) => void }[] =
      [
        {
          fault: 'an image is tagged latest',
          check: checks.imageTags,
          report: /Deployment\/reliability-api\/api: image .* uses the latest tag/,
          mutate: (o) => (apiContainer(o).image = `${API_IMAGE}:latest`),
        },
        {
          fault: 'an image has no tag',
          check: checks.imageTags,
          report: /backup\/pg-dump: image docker.io\/library\/postgres has no tag/,
          mutate: (o) => {
            one(
              o,
              'CronJob',
              'reliability-api-backup',
            ).spec!.jobTemplate.spec!.template.spec!.containers[0]!.image = 'docker.io/library/postgres';
          },
        },
        {
          fault: 'the migration runs another image than the API',
          check: checks.apiImage,
          report: /different images/,
          mutate: (o) =>
            (one(o, 'Job', 'reliability-api-migrate').spec!.template.spec!.containers[0]!.image =
              `${API_IMAGE}:0.0.9`),
        },
        {
          fault: 'the readinessProbe is removed',
          check: checks.probePaths,
          report: /no readinessProbe/,
          mutate: (o) => delete apiContainer(o).readinessProbe,
        },
        {
          fault: 'liveness probes the readiness path (a database outage would restart every pod)',
          check: checks.probePaths,
          report: /livenessProbe probes \/health\/ready, not \/health\/live/,
          mutate: (o) => (apiContainer(o).livenessProbe!.httpGet!.path = '/health/ready'),
        },
        {
          fault: 'the startup probe allows only 10 s',
          check: checks.probeTiming,
          report: /startup probe allows 10 s/,
          mutate: (o) => (apiContainer(o).startupProbe!.failureThreshold = 5),
        },
        {
          fault: 'the preStop hook is removed',
          check: checks.preStop,
          report: /no preStop sleep/,
          mutate: (o) => delete apiContainer(o).lifecycle,
        },
        {
          fault: 'the grace period is the default 30 s',
          check: checks.shutdownBudget,
          report:
            /terminationGracePeriodSeconds 30 does not exceed preStop 5 \+ drain 5 \+ shutdown timeout 25 = 35/,
          mutate: (o) => delete api(o).terminationGracePeriodSeconds,
        },
        {
          fault: 'the ConfigMap raises SHUTDOWN_TIMEOUT_SECONDS past the grace period',
          check: checks.shutdownBudget,
          report: /shutdown timeout 60 = 70/,
          mutate: (o) => (config(o).SHUTDOWN_TIMEOUT_SECONDS = '60'),
        },
        {
          fault: 'the ConfigMap drops SHUTDOWN_DRAIN_SECONDS (the schema default applies)',
          check: checks.shutdownBudget,
          report: /drain 5 \+ shutdown timeout 40 = 50/,
          mutate: (o) => {
            delete config(o).SHUTDOWN_DRAIN_SECONDS;
            config(o).SHUTDOWN_TIMEOUT_SECONDS = '40';
          },
        },
        {
          fault: 'a memory limit is missing',
          check: checks.resources,
          report: /api: no memory request and limit/,
          mutate: (o) => delete apiContainer(o).resources!.limits!.memory,
        },
        {
          fault: 'a limit is below its request',
          check: checks.resources,
          report: /cpu limit 100m < request 250m/,
          mutate: (o) => (apiContainer(o).resources!.limits!.cpu = '100m'),
        },
        {
          fault: 'the scrape annotation names another port',
          check: checks.scrapeAnnotations,
          report: /prometheus.io\/port is 9100, not 8000/,
          mutate: (o) =>
            (one(o, 'Deployment', APP).spec!.template.metadata!.annotations!['prometheus.io/port'] = '9100'),
        },
        {
          fault: 'a container sets runAsUser 0',
          check: checks.nonRoot,
          report: /api: runs as user 0/,
          mutate: (o) => (apiContainer(o).securityContext!.runAsUser = 0),
        },
        {
          fault: 'a container turns runAsNonRoot off',
          check: checks.nonRoot,
          report: /api: runAsNonRoot is not true/,
          mutate: (o) => (apiContainer(o).securityContext!.runAsNonRoot = false),
        },
        {
          fault: "the pod leaves the user to the image's",
          check: checks.nonRoot,
          report: /runs as user the image's/,
          mutate: (o) => delete api(o).securityContext!.runAsUser,
        },
        {
          fault: 'the pod runs as another uid',
          check: checks.podIdentity,
          report: /runAsUser is 1000, not 10001/,
          mutate: (o) => (api(o).securityContext!.runAsUser = 1000),
        },
        {
          fault: 'seccomp is Unconfined',
          check: checks.seccomp,
          report: /seccomp profile is Unconfined/,
          mutate: (o) => (apiContainer(o).securityContext!.seccompProfile = { type: 'Unconfined' }),
        },
        {
          fault: 'privilege escalation is allowed',
          check: checks.containerHardening,
          report: /privilege escalation is allowed/,
          mutate: (o) => (apiContainer(o).securityContext!.allowPrivilegeEscalation = true),
        },
        {
          fault: 'the root filesystem is writable and NET_ADMIN is added',
          check: checks.containerHardening,
          report: /adds capabilities NET_ADMIN/,
          mutate: (o) => {
            apiContainer(o).securityContext!.readOnlyRootFilesystem = false;
            apiContainer(o).securityContext!.capabilities!.add = ['NET_ADMIN'];
          },
        },
        {
          fault: 'the /tmp volume is removed',
          check: checks.tmpVolume,
          report: /api: no emptyDir mounted at \/tmp/,
          mutate: (o) => (apiContainer(o).volumeMounts = []),
        },
        {
          fault: 'the zone spread constraint is removed',
          check: checks.topologySpread,
          report: /not spread across topology.kubernetes.io\/zone/,
          mutate: (o) => (api(o).topologySpreadConstraints = api(o).topologySpreadConstraints!.slice(0, 1)),
        },
        {
          fault: 'the pod mounts a service account token',
          check: checks.serviceAccount,
          report: /Deployment\/reliability-api: mounts a service account token/,
          mutate: (o) => (api(o).automountServiceAccountToken = true),
        },
        {
          fault: 'SECRET_KEY moves into the ConfigMap',
          check: checks.secretSources,
          report: /holds the secret SECRET_KEY/,
          mutate: (o) => (config(o).SECRET_KEY = 'x'.repeat(40)),
        },
        {
          fault: 'DATABASE_URL is a literal value',
          check: checks.secretSources,
          report: /DATABASE_URL is not read from a Secret/,
          mutate: (o) =>
            (apiContainer(o).env![0] = { name: 'DATABASE_URL', value: 'postgres://app:pw@db/app' }),
        },
        {
          fault: 'a secret key the ExternalSecret does not set is read',
          check: checks.secretSources,
          report: /reads key REDIS_URI, which the ExternalSecret does not set/,
          mutate: (o) => (apiContainer(o).env![1]!.valueFrom!.secretKeyRef!.key = 'REDIS_URI'),
        },
        {
          fault: 'the ExternalSecret reads another store',
          check: checks.externalSecret,
          report: /not ClusterSecretStore\/platform-secrets/,
          mutate: (o) =>
            (one(o, 'ExternalSecret', 'reliability-api-secrets').spec!.secretStoreRef = {
              kind: 'SecretStore',
              name: 'local',
            }),
        },
        {
          fault: 'a Secret is committed',
          check: checks.noCommittedSecret,
          report: /Secret\/reliability-api-secrets is committed/,
          mutate: (o) =>
            o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'reliability-api-secrets' } }),
        },
        {
          fault: 'the serving pods would migrate on start',
          check: checks.configMap,
          report: /MIGRATE_ON_START is true, not false/,
          mutate: (o) => (config(o).MIGRATE_ON_START = 'true'),
        },
        {
          fault: 'METRICS_PORT is set',
          check: checks.configMap,
          report: /METRICS_PORT is set/,
          mutate: (o) => (config(o).METRICS_PORT = '9100'),
        },
        {
          fault: 'the Service selects by name only (and so the Job pods)',
          check: checks.services,
          report: /Service\/reliability-api selects the pods of Job\/reliability-api-migrate/,
          mutate: (o) => (one(o, 'Service', APP).spec!.selector = { 'app.kubernetes.io/name': APP }),
        },
        {
          fault: 'the Ingress routes everything under /',
          check: checks.ingress,
          report: /\/ exposes \/metrics/,
          mutate: (o) => (one(o, 'Ingress', APP).spec!.rules![0]!.http!.paths[0]!.path = '/'),
        },
        {
          fault: 'the Ingress loses its rate limit',
          check: checks.ingress,
          report: /no nginx limit-rps limit/,
          mutate: (o) =>
            delete one(o, 'Ingress', APP).metadata.annotations!['nginx.ingress.kubernetes.io/limit-rps'],
        },
        {
          fault: 'scale-up may grow tenfold a minute',
          check: checks.autoscaler,
          report: /scale-up policy Percent 1000 per 60 s is not bounded/,
          mutate: (o) =>
            (one(o, 'HorizontalPodAutoscaler', APP).spec!.behavior!.scaleUp!.policies![0]!.value = 1000),
        },
        {
          fault: 'the autoscaler scales a Deployment that does not exist',
          check: checks.autoscaler,
          report: /scales a missing apps\/v1 Deployment\/reliability-ap1/,
          mutate: (o) =>
            (one(o, 'HorizontalPodAutoscaler', APP).spec!.scaleTargetRef.name = 'reliability-ap1'),
        },
        {
          fault: 'the disruption budget requires every pod at the minimum scale',
          check: checks.disruptionBudget,
          report: /at 2 replicas no pod may be evicted/,
          mutate: (o) => (one(o, 'PodDisruptionBudget', APP).spec!.minAvailable = 2),
        },
        {
          fault: 'an egress rule has no ports',
          check: checks.networkPolicy,
          report: /Deployment\/reliability-api: may connect on any port/,
          mutate: (o) => policy(o).egress!.push({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }),
        },
        {
          fault: 'ingress is opened to the internet',
          check: checks.networkPolicy,
          report: /accepts connections from 0.0.0.0\/0/,
          mutate: (o) =>
            policy(o).ingress!.push({ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ port: 8000 }] }),
        },
        {
          fault: 'Prometheus peers are widened to every pod of the monitoring namespace',
          check: checks.networkPolicy,
          report: /accepts connections from any pod of monitoring/,
          mutate: (o) => delete policy(o).ingress![1]!.from![0]!.podSelector,
        },
        {
          fault: 'the jobs policy is removed',
          check: checks.networkPolicy,
          report: /CronJob\/reliability-api-backup: egress is not restricted/,
          mutate: (o) =>
            o.splice(o.indexOf(one(o, 'NetworkPolicy', 'reliability-api-jobs') as unknown as K8sObject), 1),
        },
        {
          fault: 'the migration loses its PreSync hook',
          check: checks.migrationJob,
          report: /not an Argo CD PreSync hook/,
          mutate: (o) =>
            delete one(o, 'Job', 'reliability-api-migrate').metadata.annotations!['argocd.argoproj.io/hook'],
        },
        {
          fault: 'the migration runs another command',
          check: checks.migrationJob,
          report: /runs node dist\/src\/cli\/main.js migrate down/,
          mutate: (o) =>
            (one(o, 'Job', 'reliability-api-migrate').spec!.template.spec!.containers[0]!.args![3] = 'down'),
        },
        {
          fault: 'the ConfigMap loses its bootstrap label',
          check: checks.migrationJob,
          report: /ConfigMap\/reliability-api-config is not labelled/,
          mutate: (o) =>
            delete one(o, 'ConfigMap', CONFIG_MAP).metadata.labels!['app.kubernetes.io/component'],
        },
        {
          fault: 'backups may overlap',
          check: checks.backup,
          report: /concurrencyPolicy Allow/,
          mutate: (o) => (one(o, 'CronJob', 'reliability-api-backup').spec!.concurrencyPolicy = 'Allow'),
        },
        {
          fault: 'the ServiceMonitor scrapes another path',
          check: checks.monitoring,
          report: /scrapes \/stats/,
          mutate: (o) => (one(o, 'ServiceMonitor', APP).spec.endpoints[0]!.path = '/stats'),
        },
        {
          fault: 'an object loses its part-of label',
          check: checks.labels,
          report: /PodDisruptionBudget\/reliability-api: no label app.kubernetes.io\/part-of/,
          mutate: (o) =>
            delete one(o, 'PodDisruptionBudget', APP).metadata.labels!['app.kubernetes.io/part-of'],
        },
      ];

    it.each(faults)('when $fault, then it is reported', ({ check, mutate, report }) => {
      const objects = structuredClone(rendered.base);
      expect(check(objects)).toEqual([]);
      mutate(objects);
      expect(check(objects)).toContainEqual(expect.stringMatching(report));
    });
  });
});
