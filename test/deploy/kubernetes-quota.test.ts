// The namespace's ResourceQuota and LimitRange against what the kit deploys into it, in every Kustomize
// render and every Helm environment: at the worst moment (every pod the autoscaler may ask for, plus the
// rolling update's surge, or twice the maximum under Argo Rollouts, plus the migration Job and a backup
// run) the pods still fit the quota, so a scale-up or a promotion is never refused halfway; every container
// states requests and limits (the quota refuses pods that do not) within the LimitRange's maximum.
import { beforeAll, describe, expect, it } from 'vitest';
import { ENVIRONMENTS, renderChart, requireHelm } from '../helpers/helm.js';
import {
  APP_KUSTOMIZATIONS,
  all,
  containersOf,
  podTemplates,
  quantity,
  renderAll,
  requireKubectl,
  scaled,
  type K8sObject,
} from '../helpers/kustomize.js';

const kubectl = requireKubectl();
const helmBinary = requireHelm();

const RESOURCES = ['cpu', 'memory'] as const;
type Usage = Record<'pods' | `${'requests' | 'limits'}.${(typeof RESOURCES)[number]}`, number>;

interface Quota {
  spec: { hard: Record<string, string> };
}
interface LimitRangeItem {
  type: string;
  default?: Record<string, string>;
  defaultRequest?: Record<string, string>;
  max?: Record<string, string>;
}

/** A pod's effective requests and limits: the larger of its largest init container and its containers' sum. */
function podUsage(pod: {
  initContainers?: ContainerLike[];
  containers: ContainerLike[];
}): Omit<Usage, 'pods'> {
  const usage = {} as Omit<Usage, 'pods'>;
  for (const kind of ['requests', 'limits'] as const) {
    for (const resource of RESOURCES) {
      const of = (c: ContainerLike) => quantity(c.resources?.[kind]?.[resource] ?? '0');
      const main = pod.containers.reduce((sum, c) => sum + of(c), 0);
      const init = Math.max(0, ...(pod.initContainers ?? []).map(of));
      usage[`${kind}.${resource}`] = Math.max(main, init);
    }
  }
  return usage;
}
interface ContainerLike {
  name: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** How many pods of each workload run at the worst moment, and why. */
function worstCounts(objects: readonly K8sObject[]): Map<string, number> {
  const counts = new Map<string, number>();
  const hpas = all(objects, 'HorizontalPodAutoscaler');
  for (const object of objects) {
    const owner = `${object.kind}/${object.metadata.name}`;
    const spec = object.spec as Record<string, unknown>;
    if (object.kind === 'Deployment' || object.kind === 'Rollout') {
      const hpa = hpas.find(
        (h) =>
          h.spec?.scaleTargetRef.kind === object.kind && h.spec.scaleTargetRef.name === object.metadata.name,
      );
      const max = hpa?.spec?.maxReplicas ?? (spec.replicas as number | undefined) ?? 1;
      if (object.kind === 'Rollout') {
        counts.set(owner, 2 * max);
      } else {
        // A Deployment scaled to zero under a Rollout's workloadRef runs no pods of its own.
        if (spec.replicas === 0 && hpa === undefined) continue;
        const strategy = spec.strategy as { rollingUpdate?: { maxSurge?: number | string } } | undefined;
        counts.set(owner, max + scaled(strategy?.rollingUpdate?.maxSurge ?? '25%', max, 'up'));
      }
    } else if (object.kind === 'Job') {
      counts.set(owner, (spec.parallelism as number | undefined) ?? 1);
    } else if (object.kind === 'CronJob') {
      // One run at a time is what the backup CronJob promises (concurrencyPolicy: Forbid, checked below).
      counts.set(owner, 1);
    }
  }
  return counts;
}

function quotaProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const quotas = objects.filter((o) => o.kind === 'ResourceQuota') as unknown as Quota[];
  if (quotas.length !== 1) return [`expected one ResourceQuota, found ${quotas.length}`];
  const hard = quotas[0]!.spec.hard;
  const counts = worstCounts(objects);
  const needed: Usage = {
    pods: 0,
    'requests.cpu': 0,
    'requests.memory': 0,
    'limits.cpu': 0,
    'limits.memory': 0,
  };
  for (const template of podTemplates(objects)) {
    const count = counts.get(template.owner);
    if (count === undefined) continue;
    needed.pods += count;
    const usage = podUsage(template.spec as { containers: ContainerLike[] });
    for (const key of Object.keys(usage) as (keyof typeof usage)[]) needed[key] += count * usage[key];
    for (const container of containersOf(template.spec) as ContainerLike[]) {
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of RESOURCES) {
          if (container.resources?.[kind]?.[resource] === undefined)
            problems.push(`${template.owner} ${container.name}: no ${kind}.${resource}`);
        }
      }
    }
  }
  for (const [key, value] of Object.entries(needed)) {
    const limit = hard[key];
    if (limit === undefined) problems.push(`quota: no ${key}`);
    else if (value > quantity(limit) + 1e-9)
      problems.push(`quota: ${key} ${limit} is less than the worst moment needs (${round(value, key)})`);
  }
  for (const cronJob of all(objects, 'CronJob')) {
    if (cronJob.spec?.concurrencyPolicy !== 'Forbid')
      problems.push(`CronJob/${cronJob.metadata.name}: runs may overlap (concurrencyPolicy is not Forbid)`);
  }
  for (const service of all(objects, 'Service')) {
    const type = service.spec?.type ?? 'ClusterIP';
    if (type !== 'ClusterIP')
      problems.push(`Service/${service.metadata.name}: ${type}, which the quota refuses`);
  }
  return problems;
}

function limitRangeProblems(objects: readonly K8sObject[]): string[] {
  const ranges = objects.filter((o) => o.kind === 'LimitRange') as unknown as {
    spec: { limits: LimitRangeItem[] };
  }[];
  if (ranges.length !== 1) return [`expected one LimitRange, found ${ranges.length}`];
  const item = ranges[0]!.spec.limits.find((l) => l.type === 'Container');
  if (item?.max === undefined || item.default === undefined || item.defaultRequest === undefined)
    return ['LimitRange: no Container item with default, defaultRequest and max'];
  const problems: string[] = [];
  for (const resource of RESOURCES) {
    const max = quantity(item.max[resource] ?? '0');
    if (quantity(item.default[resource] ?? '0') > max)
      problems.push(`LimitRange: default ${resource} over max`);
    if (quantity(item.defaultRequest[resource] ?? '0') > quantity(item.default[resource] ?? '0'))
      problems.push(`LimitRange: defaultRequest ${resource} over default`);
    for (const template of podTemplates(objects)) {
      for (const container of containersOf(template.spec) as ContainerLike[]) {
        const limit = container.resources?.limits?.[resource];
        if (limit !== undefined && quantity(limit) > max)
          problems.push(
            `${template.owner} ${container.name}: limits.${resource} ${limit} over the LimitRange max`,
          );
      }
    }
  }
  return problems;
}

const round = (value: number, key: string) =>
  key.endsWith('memory') ? `${Math.ceil(value / 2 ** 20)}Mi` : String(Math.round(value * 1000) / 1000);

describe.skipIf(!kubectl)('namespace quota and limits: Kustomize', () => {
  let rendered: Record<(typeof APP_KUSTOMIZATIONS)[number], K8sObject[]>;
  beforeAll(() => {
    rendered = renderAll(APP_KUSTOMIZATIONS);
  });

  it.each(APP_KUSTOMIZATIONS)('%s: the quota covers the worst moment at full scale', (name) => {
    expect(quotaProblems(rendered[name])).toEqual([]);
  });

  it.each(APP_KUSTOMIZATIONS)('%s: every container is within the LimitRange', (name) => {
    expect(limitRangeProblems(rendered[name])).toEqual([]);
  });

  it('production-canary counts both ReplicaSets at full size: 2 x 15 API pods, the Job and a backup', () => {
    const counts = worstCounts(rendered['production-canary']);
    expect(Object.fromEntries(counts)).toEqual({
      'Rollout/reliability-api': 30,
      'Job/reliability-api-migrate': 1,
      'CronJob/reliability-api-backup': 1,
    });
  });

  describe('the checks catch what would stall a scale-up or admit an unbounded pod', () => {
    const copy = () => structuredClone(rendered.production);

    it('when the autoscaler may ask for more than the quota holds, then the short resource is named', () => {
      const objects = copy();
      all(objects, 'HorizontalPodAutoscaler')[0]!.spec!.maxReplicas = 40;
      expect(quotaProblems(objects)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^quota: pods 34 is less than the worst moment needs \(43\)$/),
          expect.stringMatching(/^quota: limits\.cpu 64 is less/),
        ]),
      );
    });

    it('when a container states no limits, then it is reported (the quota would refuse its pod)', () => {
      const objects = copy();
      const job = all(objects, 'Job')[0]!;
      delete job.spec!.template.spec!.containers[0]!.resources!.limits;
      expect(quotaProblems(objects)).toEqual(
        expect.arrayContaining([
          'Job/reliability-api-migrate migrate: no limits.cpu',
          'Job/reliability-api-migrate migrate: no limits.memory',
        ]),
      );
    });

    it('when a container is larger than the LimitRange allows, then it is reported', () => {
      const objects = copy();
      const deployment = all(objects, 'Deployment')[0]!;
      deployment.spec!.template.spec!.containers[0]!.resources!.limits!.memory = '4Gi';
      expect(limitRangeProblems(objects)).toEqual([
        'Deployment/reliability-api api: limits.memory 4Gi over the LimitRange max',
      ]);
    });

    it('when a Service asks for a load balancer, then it is reported', () => {
      const objects = copy();
      all(objects, 'Service')[0]!.spec!.type = 'LoadBalancer';
      expect(quotaProblems(objects)).toEqual([
        'Service/reliability-api: LoadBalancer, which the quota refuses',
      ]);
    });
  });
});

describe.skipIf(helmBinary === undefined)('namespace quota and limits: Helm', () => {
  it.each(ENVIRONMENTS)(
    '%s: the quota covers the worst moment and every container is within the LimitRange',
    (env) => {
      const objects = renderChart(helmBinary!, env);
      expect(quotaProblems(objects)).toEqual([]);
      expect(limitRangeProblems(objects)).toEqual([]);
    },
  );

  it('production with the canary Rollout: still within the quota', () => {
    const objects = renderChart(helmBinary!, 'production', { set: ['rollout.enabled=true'] });
    expect(worstCounts(objects).get('Rollout/reliability-api')).toBe(30);
    expect(quotaProblems(objects)).toEqual([]);
  });
});
