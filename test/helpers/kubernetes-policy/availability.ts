// Availability: how the API rolls out, what its containers reserve, how its replicas spread, scale
// and survive voluntary disruption.
import { all, describeObject, one, podTemplates, quantity, selects } from '../kustomize.js';
import {
  allowedDisruptions,
  apiTemplates,
  APP,
  each,
  jobTemplates,
  minimumReplicas,
  type CheckSet,
} from './shared.js';

export const availabilityChecks = {
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
} satisfies CheckSet;
