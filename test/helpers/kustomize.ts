// Renders the Kubernetes deployment kit with `kubectl kustomize`, the way Argo CD and `kubectl apply -k`
// do, and gives the deploy tests what they need to inspect the result: the parsed objects, a schema check
// for every kind (kubernetes-models and the @kubernetes-models CRD packages), typed look-ups, and the pod
// templates and containers of every workload.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AnalysisTemplate, Rollout } from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1';
import type { IAnalysisTemplate, IRollout } from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1';
import { Application, AppProject } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';
import type { IApplication, IAppProject } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';
import { ExternalSecret, SecretStore } from '@kubernetes-models/external-secrets/external-secrets.io/v1beta1';
import type { IExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1beta1';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type {
  IPrometheusRule,
  IServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1/Job';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { LimitRange } from 'kubernetes-models/v1/LimitRange';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { Service } from 'kubernetes-models/v1/Service';
import type { IService } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parse, parseAllDocuments } from 'yaml';
import { settings, type SettingName } from '../../src/config/schema.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every kustomization of the kit, by the name the tests use for it. */
export const KUSTOMIZATIONS = {
  base: 'deploy/kubernetes/base',
  dev: 'deploy/kubernetes/overlays/dev',
  qa: 'deploy/kubernetes/overlays/qa',
  staging: 'deploy/kubernetes/overlays/staging',
  production: 'deploy/kubernetes/overlays/production',
  'production-canary': 'deploy/kubernetes/rollouts/production-canary',
  'production-blue-green': 'deploy/kubernetes/rollouts/production-blue-green',
  'production-aws': 'deploy/kubernetes/aws/production',
  argocd: 'deploy/argocd',
} as const;
export type KustomizationName = keyof typeof KUSTOMIZATIONS;

/** The kustomizations that deploy the application (everything but the Argo CD objects). */
export const APP_KUSTOMIZATIONS = [
  'base',
  'dev',
  'qa',
  'staging',
  'production',
  'production-canary',
  'production-blue-green',
  'production-aws',
] as const satisfies readonly KustomizationName[];

export const OVERLAYS = [
  'dev',
  'qa',
  'staging',
  'production',
] as const satisfies readonly KustomizationName[];

const KUSTOMIZE_TIMEOUT_MS = 30_000;

type ObjectMeta = NonNullable<IConfigMap['metadata']>;

/** One rendered object: what every Kubernetes object has, the rest left to the typed look-ups. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string };
  [field: string]: unknown;
}

/** Whether `kubectl` answers. */
export function kubectlAvailable(): boolean {
  const result = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0;
}

/**
 * The rule of the other real dependencies of the suite: outside CI a missing kubectl skips the deploy
 * suites with a warning; with CI=true it fails them.
 */
export function requireKubectl(): boolean {
  if (kubectlAvailable()) return true;
  if (process.env.CI === 'true') throw new Error('kubectl is not on PATH; CI=true requires it');
  process.stderr.write('warning: kubectl is not on PATH; the Kubernetes manifest suites are skipped\n');
  return false;
}

/** `kubectl kustomize <dir>` (relative to the repository root), parsed. Throws with kubectl's message. */
export function kustomize(dir: string, timeoutMs = KUSTOMIZE_TIMEOUT_MS): K8sObject[] {
  const result = spawnSync('kubectl', ['kustomize', dir], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error) throw new Error(`kubectl kustomize ${dir}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`kubectl kustomize ${dir} exited with ${result.status}: ${result.stderr.trim()}`);
  }
  return parseManifests(result.stdout, dir);
}

/** Renders each named kustomization once. */
export function renderAll<N extends KustomizationName>(names: readonly N[]): Record<N, K8sObject[]> {
  return Object.fromEntries(names.map((name) => [name, kustomize(KUSTOMIZATIONS[name])])) as Record<
    N,
    K8sObject[]
  >;
}

/** Parses a multi-document YAML stream into objects; every document must name its apiVersion, kind and name. */
export function parseManifests(text: string, source: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const [index, document] of parseAllDocuments(text).entries()) {
    const [error] = document.errors;
    if (error !== undefined) throw new Error(`${source}, document ${index + 1}: ${error.message}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) {
      throw new Error(`${source}, document ${index + 1}: not a Kubernetes object (apiVersion, kind, name)`);
    }
    objects.push(value);
  }
  return objects;
}

function isManifest(value: unknown): value is K8sObject {
  if (typeof value !== 'object' || value === null) return false;
  const { apiVersion, kind, metadata } = value as Record<string, unknown>;
  return (
    typeof apiVersion === 'string' &&
    typeof kind === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>).name === 'string'
  );
}

export function readRepoFile(relativePath: string): string {
  return readFileSync(new URL(relativePath, new URL('../../', import.meta.url)), 'utf8');
}

export function readYaml(relativePath: string): unknown {
  return parse(readRepoFile(relativePath));
}

/** `Kind/name` (with the namespace when set): how violations name an object. */
export function describeObject(object: { kind: string; metadata?: { name?: string; namespace?: string } }) {
  const namespace = object.metadata?.namespace;
  return `${object.kind}/${namespace === undefined ? '' : `${namespace}/`}${object.metadata?.name ?? '?'}`;
}

// ---------------------------------------------------------------------------------------------------
// Schemas

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/**
 * The schema of every kind the kit may contain, by `apiVersion/kind`. A kind missing here fails the schema
 * check, so nothing is ever deployed unvalidated.
 */
const MODELS = new Map<string, ModelClass>([
  ['v1/ConfigMap', ConfigMap],
  ['v1/LimitRange', LimitRange],
  ['v1/Namespace', Namespace],
  ['v1/PersistentVolumeClaim', PersistentVolumeClaim],
  ['v1/ResourceQuota', ResourceQuota],
  // The Helm chart's test pod.
  ['v1/Pod', Pod],
  ['v1/Service', Service],
  ['v1/ServiceAccount', ServiceAccount],
  ['apps/v1/DaemonSet', DaemonSet],
  ['apps/v1/Deployment', Deployment],
  ['autoscaling/v2/HorizontalPodAutoscaler', HorizontalPodAutoscaler],
  ['batch/v1/CronJob', CronJob],
  ['batch/v1/Job', Job],
  ['networking.k8s.io/v1/Ingress', Ingress],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
  ['rbac.authorization.k8s.io/v1/ClusterRole', ClusterRole],
  ['rbac.authorization.k8s.io/v1/ClusterRoleBinding', ClusterRoleBinding],
  ['external-secrets.io/v1beta1/ExternalSecret', ExternalSecret],
  // The AWS variant's namespaced store (deploy/kubernetes/aws).
  ['external-secrets.io/v1beta1/SecretStore', SecretStore],
  ['monitoring.coreos.com/v1/PrometheusRule', PrometheusRule],
  ['monitoring.coreos.com/v1/ServiceMonitor', ServiceMonitor],
  ['argoproj.io/v1alpha1/Application', Application],
  ['argoproj.io/v1alpha1/AppProject', AppProject],
  ['argoproj.io/v1alpha1/Rollout', Rollout],
  ['argoproj.io/v1alpha1/AnalysisTemplate', AnalysisTemplate],
]);

export const VALIDATED_KINDS: readonly string[] = [...MODELS.keys()];

/**
 * Every schema violation in `objects`, one line each; an object of a kind without a schema is one too.
 * The validators check types, required fields and enumerations (they do not reject unknown fields).
 */
export function schemaErrors(objects: readonly K8sObject[]): string[] {
  const errors: string[] = [];
  for (const object of objects) {
    const Model = MODELS.get(`${object.apiVersion}/${object.kind}`);
    if (Model === undefined) {
      errors.push(`${describeObject(object)}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(structuredClone(object) as never).validate();
    } catch (error) {
      errors.push(`${describeObject(object)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------------
// Typed look-ups

export interface Kinds {
  ConfigMap: IConfigMap;
  PersistentVolumeClaim: IPersistentVolumeClaim;
  Service: IService;
  ServiceAccount: IServiceAccount;
  Deployment: IDeployment;
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler;
  CronJob: ICronJob;
  Job: IJob;
  Ingress: IIngress;
  NetworkPolicy: INetworkPolicy;
  PodDisruptionBudget: IPodDisruptionBudget;
  ExternalSecret: IExternalSecret;
  PrometheusRule: IPrometheusRule;
  ServiceMonitor: IServiceMonitor;
  Application: IApplication;
  AppProject: IAppProject;
  Rollout: IRollout;
  AnalysisTemplate: IAnalysisTemplate;
}
export type Typed<K extends keyof Kinds> = Kinds[K] & { metadata: ObjectMeta & { name: string } };

export function all<K extends keyof Kinds>(objects: readonly K8sObject[], kind: K): Typed<K>[] {
  return objects.filter((o) => o.kind === kind) as unknown as Typed<K>[];
}

export function find<K extends keyof Kinds>(
  objects: readonly K8sObject[],
  kind: K,
  name: string,
): Typed<K> | undefined {
  return all(objects, kind).find((o) => o.metadata.name === name);
}

/** The object of that kind and name; throws when it is missing. */
export function one<K extends keyof Kinds>(objects: readonly K8sObject[], kind: K, name: string): Typed<K> {
  const found = find(objects, kind, name);
  if (found === undefined) throw new Error(`no ${kind}/${name} in the rendered objects`);
  return found;
}

// ---------------------------------------------------------------------------------------------------
// Workloads

export interface PodTemplate {
  /** `Kind/name` of the workload. */
  owner: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: IPodSpec;
}

/** The kinds that carry a pod template; any other kind that runs pods is refused by podTemplates. */
const POD_KINDS = new Set(['Deployment', 'Job', 'CronJob', 'Rollout']);
const OTHER_POD_KINDS = new Set(['Pod', 'ReplicaSet', 'ReplicationController', 'StatefulSet', 'DaemonSet']);

/** The pod template of every workload (a CronJob's job template included). */
export function podTemplates(objects: readonly K8sObject[]): PodTemplate[] {
  const templates: PodTemplate[] = [];
  for (const object of objects) {
    if (OTHER_POD_KINDS.has(object.kind)) {
      throw new Error(`${describeObject(object)}: podTemplates does not know this workload kind`);
    }
    if (!POD_KINDS.has(object.kind)) continue;
    const spec = object.spec as Record<string, unknown> | undefined;
    const template = (
      object.kind === 'CronJob'
        ? (spec?.jobTemplate as { spec?: { template?: unknown } } | undefined)?.spec?.template
        : spec?.template
    ) as { metadata?: ObjectMeta; spec?: IPodSpec } | undefined;
    // A Rollout with workloadRef runs the referenced Deployment's template, checked there.
    if (template === undefined && object.kind === 'Rollout') continue;
    if (template?.spec === undefined) throw new Error(`${describeObject(object)} has no pod template`);
    templates.push({
      owner: `${object.kind}/${object.metadata.name}`,
      labels: template.metadata?.labels ?? {},
      annotations: template.metadata?.annotations ?? {},
      spec: template.spec,
    });
  }
  return templates;
}

/** The pod templates of one component (`app.kubernetes.io/component`: api, migrate, backup). */
export function componentTemplates(objects: readonly K8sObject[], component: string): PodTemplate[] {
  return podTemplates(objects).filter((t) => t.labels['app.kubernetes.io/component'] === component);
}

/** Containers and init containers. */
export function containersOf(spec: IPodSpec): IContainer[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** Whether a label selector's matchLabels and matchExpressions all hold for `labels`. */
export function selects(
  selector:
    | {
        matchLabels?: Record<string, string>;
        matchExpressions?: { key: string; operator: string; values?: string[] }[];
      }
    | undefined,
  labels: Record<string, string>,
): boolean {
  if (selector === undefined) return false;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpression = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    switch (operator) {
      case 'In':
        return labels[key] !== undefined && values.includes(labels[key]);
      case 'NotIn':
        return labels[key] === undefined || !values.includes(labels[key]);
      case 'Exists':
        return key in labels;
      case 'DoesNotExist':
        return !(key in labels);
      default:
        throw new Error(`unknown selector operator ${operator}`);
    }
  });
  return byLabel && byExpression;
}

// ---------------------------------------------------------------------------------------------------
// Values

const QUANTITY_SUFFIXES: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes resource quantity ("250m", "1", "512Mi", "1Gi") as a number of cores or bytes. */
export function quantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(value.trim());
  const factor = match === null ? undefined : QUANTITY_SUFFIXES[match[2]!];
  if (match === null || factor === undefined) throw new Error(`not a resource quantity: ${value}`);
  return Number(match[1]) * factor;
}

/** A PodDisruptionBudget or rolling-update value (`1` or `"25%"`) against a replica count. */
export function scaled(value: number | string, replicas: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)%$/.exec(value);
  if (match === null) throw new Error(`not a count or a percentage: ${value}`);
  const exact = (Number(match[1]) * replicas) / 100;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * The value a container sees for a setting, resolved like the kubelet and loadConfig do: a literal `env`
 * entry, else the last `envFrom` ConfigMap holding the key, else the default of src/config/schema.ts.
 * Undefined when the value comes from a Secret or the setting has no default.
 */
export function effectiveSetting(
  objects: readonly K8sObject[],
  container: IContainer,
  name: SettingName,
): string | undefined {
  const entry = container.env?.find((e) => e.name === name);
  if (entry !== undefined) return entry.value;
  for (const source of [...(container.envFrom ?? [])].reverse()) {
    const configMap = source.configMapRef?.name;
    if (configMap === undefined) continue;
    // A prefix is prepended to every key of the ConfigMap.
    const prefix = source.prefix ?? '';
    if (!name.startsWith(prefix)) continue;
    const key = name.slice(prefix.length);
    const data = find(objects, 'ConfigMap', configMap)?.data;
    if (data !== undefined && key in data) return data[key];
  }
  const setting = settings[name];
  return 'default' in setting ? setting.default : undefined;
}

/** How long the preStop hook waits: the native sleep action, or an exec'd `sleep N`. */
export function preStopSeconds(container: IContainer): number | undefined {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command?.join(' ');
  const match = command === undefined ? null : /(?:^|\s)sleep\s+(\d+)\s*$/.exec(command);
  return match === null ? undefined : Number(match[1]);
}
