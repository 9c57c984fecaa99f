// The rules every rendering of the application must keep, each a check that returns its violations: one
// policy for both sources of the manifests, the Kustomize kit (test/deploy/kubernetes-policy.test.ts) and
// the Helm chart (test/deploy/helm.test.ts).
import { isDeepStrictEqual } from 'node:util';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { settings, type SettingName } from '../../src/config/schema.js';
import {
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
  scaled,
  selects,
  type APP_KUSTOMIZATIONS,
  type K8sObject,
  type PodTemplate,
} from './kustomize.js';

export type AppKustomization = (typeof APP_KUSTOMIZATIONS)[number];
export type Check = (objects: K8sObject[]) => string[];

export const APP = 'reliability-api';
export const API_IMAGE = 'ghcr.io/reliability-api/reliability-api';
export const CONFIG_MAP = 'reliability-api-config';
export const SERVICE_ACCOUNT = 'reliability-api';
export const POD_UID = 10001;
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
export const EXTRA_INGRESS_SOURCES: Partial<Record<AppKustomization, Record<string, string>>> = {
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

/** Whether Helm annotations make an object a hook of both pre-install and pre-upgrade. */
function isHelmHookBefore(annotations: Record<string, string>): boolean {
  const hooks = (annotations['helm.sh/hook'] ?? '').split(',').map((h) => h.trim());
  return hooks.includes('pre-install') && hooks.includes('pre-upgrade');
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

export const checks = {
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
    // Kustomize: an Argo CD PreSync hook. Helm: a pre-install and pre-upgrade hook (Argo CD runs those as
    // PreSync when it syncs the chart).
    const helm = a['helm.sh/hook'] !== undefined;
    if (helm) {
      if (!isHelmHookBefore(a)) out.push('the migration is not a Helm pre-install and pre-upgrade hook');
      if (!(a['helm.sh/hook-delete-policy'] ?? '').includes('before-hook-creation'))
        out.push('the migration hook is not replaced on each upgrade');
    } else {
      if (a['argocd.argoproj.io/hook'] !== 'PreSync')
        out.push('the migration is not an Argo CD PreSync hook');
      if (!(a['argocd.argoproj.io/hook-delete-policy'] ?? '').includes('BeforeHookCreation')) {
        out.push('the migration hook is not replaced on each sync');
      }
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
      } else if (helm) {
        // A pre-install hook runs before the release's objects exist: what it reads must be a hook too,
        // of a lower weight, replaced on every upgrade.
        const own = object.metadata.annotations ?? {};
        const weight = (x: Record<string, string>) => Number(x['helm.sh/hook-weight'] ?? 0);
        if (!isHelmHookBefore(own) || weight(own) >= weight(a))
          out.push(`${describeObject(object)} is not a hook that runs before the migration`);
        else if (!(own['helm.sh/hook-delete-policy'] ?? '').includes('before-hook-creation'))
          out.push(`${describeObject(object)} is not replaced on each upgrade`);
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
