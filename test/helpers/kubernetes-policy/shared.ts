// What the policy modules share: the names and numbers the checks hold the manifests to, and the helpers
// they read the manifests with. Imported by every module of the policy, it imports none of them.
import type { IContainer } from 'kubernetes-models/v1/Container';
import {
  componentTemplates,
  containersOf,
  find,
  one,
  podTemplates,
  scaled,
  type APP_KUSTOMIZATIONS,
  type K8sObject,
  type PodTemplate,
} from '../kustomize.js';

export type AppKustomization = (typeof APP_KUSTOMIZATIONS)[number];
export type Check = (objects: K8sObject[]) => string[];
/** A policy module's checks: each returns one line per violation. */
export type CheckSet = Record<string, (objects: K8sObject[], ...rest: never[]) => string[]>;

export const APP = 'reliability-api';
export const API_IMAGE = 'ghcr.io/reliability-api/reliability-api';
export const CONFIG_MAP = 'reliability-api-config';
export const SERVICE_ACCOUNT = 'reliability-api';
export const POD_UID = 10001;
/** The secrets the API reads; each comes from the Secret the ExternalSecret produces. */
export const API_SECRETS = [
  'DATABASE_URL',
  'REDIS_URL',
  'RATE_LIMIT_STORAGE_URI',
  'CIRCUIT_BREAKER_CACHE_URL',
  'SECRET_KEY',
];
/** The non-secret settings the ConfigMap sets. */
export const CONFIG_KEYS = [
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
export const PROBE_PATHS = {
  startupProbe: '/health/startup',
  livenessProbe: '/health/live',
  readinessProbe: '/health/ready',
} as const;
/** Paths that must stay inside the cluster. */
export const INTERNAL_PATHS = [
  '/metrics',
  '/health',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/ready',
  '/version',
];
/** Who may open connections to the API pods: namespace -> the app.kubernetes.io/name of the pods. */
export const INGRESS_SOURCES: Record<string, string> = {
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
export const EGRESS_PORTS: Record<string, number[]> = {
  api: [5432, 6379, 4317, 4318, 9090, 443],
  migrate: [5432],
  backup: [5432],
};
export const MIGRATE_COMMAND = ['node', 'dist/src/cli/main.js', 'migrate', 'up'];

// ---------------------------------------------------------------------------------------------------
// Helpers

export const apiTemplates = (objects: K8sObject[]) => componentTemplates(objects, 'api');
export const jobTemplates = (objects: K8sObject[]) =>
  podTemplates(objects).filter((t) => t.labels['app.kubernetes.io/component'] !== 'api');

export function each(
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

export function httpPort(container: IContainer): number | undefined {
  return container.ports?.find((p) => p.name === 'http')?.containerPort;
}

export function imageProblem(image: string | undefined): string | undefined {
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
export function routes(path: { path?: string; pathType: string }, url: string): boolean {
  const p = path.path ?? '/';
  if (path.pathType === 'Exact') return url === p;
  if (p === '/') return true;
  const prefix = p.endsWith('/') ? p.slice(0, -1) : p;
  return url === prefix || url.startsWith(`${prefix}/`);
}

/** Whether Helm annotations make an object a hook of both pre-install and pre-upgrade. */
export function isHelmHookBefore(annotations: Record<string, string>): boolean {
  const hooks = (annotations['helm.sh/hook'] ?? '').split(',').map((h) => h.trim());
  return hooks.includes('pre-install') && hooks.includes('pre-upgrade');
}

/** The HPA minimum of the workload running the API pods, else the Deployment's replicas. */
export function minimumReplicas(objects: K8sObject[]): number {
  const hpa = find(objects, 'HorizontalPodAutoscaler', APP);
  return hpa?.spec?.minReplicas ?? one(objects, 'Deployment', APP).spec?.replicas ?? 1;
}

export function allowedDisruptions(
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
