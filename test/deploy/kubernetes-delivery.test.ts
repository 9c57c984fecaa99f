// Delivery: the Argo CD project and Applications that sync the overlays, and the Argo Rollouts variants
// (canary and blue-green) with their analysis. The AWS variant (deploy/kubernetes/aws) is one more render
// the production Application may sync, so the project must admit its kinds too.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  OVERLAYS,
  REPO_ROOT,
  all,
  describeObject,
  find,
  one,
  readRepoFile,
  readYaml,
  renderAll,
  requireKubectl,
  selects,
  type K8sObject,
  type Typed,
} from '../helpers/kustomize.js';

const APP = 'reliability-api';
const RENDERS = [
  'argocd',
  ...OVERLAYS,
  'production-canary',
  'production-blue-green',
  'production-aws',
] as const;
type Render = (typeof RENDERS)[number];
const VARIANTS = ['production-canary', 'production-blue-green'] as const;

/** The recording rules the analysis reads: the contract with the observability work. */
const RECORDING_RULES = ['slo:request_success:ratio_rate5m', 'slo:request_latency_p99:seconds_5m'];
const CANARY_WEIGHTS = [10, 30, 50, 80];

type Rollout = Typed<'Rollout'>;
type Strategy = NonNullable<NonNullable<Rollout['spec']['strategy']>>;
interface AnalysisRef {
  where: string;
  templates: { templateName?: string }[];
  args: { name: string; value?: string; valueFrom?: unknown }[];
}

function analysisRefs(rollout: Rollout): AnalysisRef[] {
  const strategy: Strategy = rollout.spec.strategy ?? {};
  const refs: AnalysisRef[] = [];
  const add = (
    where: string,
    ref: { templates?: { templateName?: string }[]; args?: AnalysisRef['args'] } | undefined,
  ) => {
    if (ref !== undefined) refs.push({ where, templates: ref.templates ?? [], args: ref.args ?? [] });
  };
  add('canary.analysis', strategy.canary?.analysis ?? undefined);
  strategy.canary?.steps?.forEach((step, i) =>
    add(`canary.steps[${i}].analysis`, step.analysis ?? undefined),
  );
  add('blueGreen.prePromotionAnalysis', strategy.blueGreen?.prePromotionAnalysis ?? undefined);
  add('blueGreen.postPromotionAnalysis', strategy.blueGreen?.postPromotionAnalysis ?? undefined);
  return refs;
}

function serviceLike(objects: K8sObject[], name: string | undefined): string[] {
  const main = one(objects, 'Service', APP);
  const service = name === undefined ? undefined : find(objects, 'Service', name);
  if (service === undefined) return [`no Service ${name}`];
  const same =
    JSON.stringify(service.spec?.selector) === JSON.stringify(main.spec?.selector) &&
    JSON.stringify(service.spec?.ports) === JSON.stringify(main.spec?.ports);
  return same ? [] : [`Service/${name} does not select and serve like Service/${APP}`];
}

// ---------------------------------------------------------------------------------------------------
// Checks: each returns one line per violation.

const checks = {
  applications: (argocd: K8sObject[]) => {
    const out: string[] = [];
    const apps = all(argocd, 'Application');
    const overlays = readdirSync(`${REPO_ROOT}deploy/kubernetes/overlays`).sort();
    const paths = apps.map((a) => a.spec.source?.path).sort();
    const expected = overlays.map((o) => `deploy/kubernetes/overlays/${o}`);
    if (JSON.stringify(paths) !== JSON.stringify(expected))
      out.push(`Applications sync ${paths.join(', ')}, not ${expected.join(', ')}`);
    for (const app of apps) {
      const where = describeObject(app);
      const path = app.spec.source?.path ?? '';
      const { namespace } = readYaml(`${path}/kustomization.yaml`) as { namespace?: string };
      if (app.spec.destination.namespace !== namespace)
        out.push(`${where}: deploys to ${app.spec.destination.namespace}, the overlay to ${namespace}`);
      if (app.metadata.namespace !== 'argocd') out.push(`${where}: not in the argocd namespace`);
      const sync = app.spec.syncPolicy;
      if (sync?.automated?.prune !== true || sync.automated.selfHeal !== true)
        out.push(`${where}: sync is not automated with prune and selfHeal`);
      const options = sync?.syncOptions ?? [];
      for (const option of ['CreateNamespace=true', 'RespectIgnoreDifferences=true']) {
        if (!options.includes(option)) out.push(`${where}: no ${option}`);
      }
      const retry = sync?.retry;
      if (!retry?.limit || !retry.backoff?.duration || !retry.backoff.factor || !retry.backoff.maxDuration) {
        out.push(`${where}: no retry with backoff`);
      }
      const labels = sync?.managedNamespaceMetadata?.labels ?? {};
      if (labels['pod-security.kubernetes.io/enforce'] !== 'restricted')
        out.push(`${where}: its namespace does not enforce the restricted Pod Security Standard`);
    }
    return out;
  },

  /** Self-heal must not reset the replica count of whatever the autoscaler scales. */
  replicasLeftToAutoscaler: (argocd: K8sObject[], deployed: K8sObject[][]) => {
    const targets = new Set(
      deployed.flatMap((objects) =>
        all(objects, 'HorizontalPodAutoscaler').map((h) => {
          const { apiVersion, kind, name } = h.spec!.scaleTargetRef;
          return `${apiVersion?.split('/')[0]}/${kind}/${name}`;
        }),
      ),
    );
    // The Deployment that a Rollout takes over keeps its replica count out of self-heal too.
    targets.add(`apps/Deployment/${APP}`);
    return all(argocd, 'Application').flatMap((app) =>
      [...targets]
        .filter(
          (target) =>
            !(app.spec.ignoreDifferences ?? []).some(
              (d) =>
                `${d.group ?? ''}/${d.kind}/${d.name}` === target &&
                (d.jsonPointers ?? []).includes('/spec/replicas'),
            ),
        )
        .map((target) => `${describeObject(app)}: self-heal resets /spec/replicas of ${target}`),
    );
  },

  project: (argocd: K8sObject[], deployed: K8sObject[][]) => {
    const project = one(argocd, 'AppProject', APP);
    const out: string[] = [];
    const allowed = new Set(
      (project.spec?.namespaceResourceWhitelist ?? []).map((k) => `${k.group}/${k.kind}`),
    );
    const rendered = new Set(
      deployed.flat().map((o) => `${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}/${o.kind}`),
    );
    for (const kind of rendered) if (!allowed.has(kind)) out.push(`the project does not admit ${kind}`);
    for (const kind of allowed)
      if (!rendered.has(kind)) out.push(`the project admits ${kind}, which nothing renders`);
    const cluster = (project.spec?.clusterResourceWhitelist ?? []).map((k) => `${k.group}/${k.kind}`);
    if (JSON.stringify(cluster) !== JSON.stringify(['/Namespace']))
      out.push(`cluster-scoped kinds admitted: ${cluster.join(', ')}`);
    for (const app of all(argocd, 'Application')) {
      const where = describeObject(app);
      if (app.spec.project !== project.metadata.name)
        out.push(`${where}: not in project ${project.metadata.name}`);
      if (!(project.spec?.sourceRepos ?? []).includes(app.spec.source?.repoURL ?? ''))
        out.push(`${where}: its repository is not a project source`);
      const { server, namespace } = app.spec.destination;
      if (!(project.spec?.destinations ?? []).some((d) => d.server === server && d.namespace === namespace)) {
        out.push(`${where}: its destination is not a project destination`);
      }
    }
    return out;
  },

  workloadRef: (objects: K8sObject[]) => {
    const out: string[] = [];
    for (const rollout of all(objects, 'Rollout')) {
      const ref = rollout.spec.workloadRef;
      const deployment = ref?.kind === 'Deployment' ? find(objects, 'Deployment', ref.name ?? '') : undefined;
      if (deployment === undefined) {
        out.push(`${describeObject(rollout)} does not run a Deployment's template`);
        continue;
      }
      if (!selects(rollout.spec.selector, deployment.spec?.template.metadata?.labels ?? {})) {
        out.push(`${describeObject(rollout)}: its selector does not match the Deployment's pods`);
      }
      if (deployment.spec?.replicas !== 0)
        out.push(`Deployment/${deployment.metadata.name} still runs ${deployment.spec?.replicas} replicas`);
      const target = one(objects, 'HorizontalPodAutoscaler', APP).spec!.scaleTargetRef;
      if (target.kind !== 'Rollout' || target.name !== rollout.metadata.name)
        out.push(`the autoscaler scales ${target.kind}/${target.name}`);
    }
    return out;
  },

  canarySteps: (rollout: Rollout) => {
    const steps = rollout.spec.strategy?.canary?.steps ?? [];
    const out: string[] = [];
    const weights = steps.flatMap((s) => (s.setWeight === undefined ? [] : [s.setWeight]));
    if (JSON.stringify(weights) !== JSON.stringify(CANARY_WEIGHTS))
      out.push(`weights ${weights.join(', ')}, not ${CANARY_WEIGHTS.join(', ')}`);
    steps.forEach((step, i) => {
      if (step.setWeight !== undefined && !steps[i + 1]?.pause?.duration)
        out.push(`weight ${step.setWeight} is not followed by a timed pause`);
    });
    return out;
  },

  analysisArguments: (objects: K8sObject[]) => {
    return all(objects, 'Rollout').flatMap((rollout) =>
      analysisRefs(rollout).flatMap(({ where, templates, args }) =>
        templates.flatMap(({ templateName }) => {
          const template = find(objects, 'AnalysisTemplate', templateName ?? '');
          if (template === undefined) return [`${where}: no AnalysisTemplate ${templateName}`];
          const declared = template.spec.args ?? [];
          const given = new Set(args.map((a) => a.name));
          return [
            ...declared
              .filter((a) => a.value === undefined && a.valueFrom === undefined && !given.has(a.name))
              .map((a) => `${where}: ${templateName} needs argument ${a.name}`),
            ...args
              .filter((a) => !declared.some((d) => d.name === a.name))
              .map((a) => `${where}: ${templateName} takes no argument ${a.name}`),
          ];
        }),
      ),
    );
  },

  sloQueries: (template: Typed<'AnalysisTemplate'>) => {
    const queries = template.spec.metrics.flatMap((m) =>
      m.provider.prometheus?.query ? [m.provider.prometheus.query] : [],
    );
    const out: string[] = [];
    for (const query of queries) {
      for (const name of query.match(/[a-z_]+:[\w:]+/g) ?? []) {
        if (!RECORDING_RULES.includes(name))
          out.push(`queries ${name}, which is not a contracted recording rule`);
      }
      if (!/service="\{\{args\.service-name\}\}"/.test(query))
        out.push(`a query is not filtered by service: ${query}`);
    }
    for (const rule of RECORDING_RULES)
      if (!queries.some((q) => q.includes(rule))) out.push(`no query reads ${rule}`);
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: delivery', () => {
  let rendered: Record<Render, K8sObject[]>;
  const deployed = () => [...OVERLAYS, ...VARIANTS, 'production-aws' as const].map((name) => rendered[name]);
  beforeAll(() => {
    rendered = renderAll(RENDERS);
  });

  describe('Argo CD', () => {
    it('one Application per overlay, each syncing it automatically (prune, self-heal, retries) into its namespace', () => {
      expect(checks.applications(rendered.argocd)).toEqual([]);
    });

    it('self-heal leaves the replica count to the autoscaler', () => {
      expect(checks.replicasLeftToAutoscaler(rendered.argocd, deployed())).toEqual([]);
    });

    it('the project admits exactly the kinds the overlays and variants render, and only Namespace cluster-wide', () => {
      expect(checks.project(rendered.argocd, deployed())).toEqual([]);
    });
  });

  describe.each(VARIANTS)('%s', (variant) => {
    it('the Rollout runs the Deployment’s pod template, the Deployment runs none, and the autoscaler scales the Rollout', () => {
      expect(checks.workloadRef(rendered[variant])).toEqual([]);
    });

    it('every AnalysisTemplate the Rollout names exists and gets the arguments it needs', () => {
      expect(checks.analysisArguments(rendered[variant])).toEqual([]);
    });

    it('the rest is the production overlay unchanged, but for the Deployment replicas and the autoscaler target', () => {
      const added = new Set(['Rollout', 'AnalysisTemplate', 'Service', 'NetworkPolicy']);
      for (const object of rendered.production) {
        const same = rendered[variant].find(
          (o) => o.kind === object.kind && o.metadata.name === object.metadata.name,
        );
        expect(same, describeObject(object)).toBeDefined();
        if (['Deployment', 'HorizontalPodAutoscaler'].includes(object.kind)) continue;
        expect(same, describeObject(object)).toEqual(object);
      }
      for (const object of rendered[variant]) {
        if (
          !rendered.production.some((o) => o.kind === object.kind && o.metadata.name === object.metadata.name)
        ) {
          expect(added, describeObject(object)).toContain(object.kind);
        }
      }
    });
  });

  describe('canary', () => {
    const rollout = () => one(rendered['production-canary'], 'Rollout', APP);

    it('sets the weights 10, 30, 50 and 80, each followed by a timed pause', () => {
      expect(checks.canarySteps(rollout())).toEqual([]);
    });

    it('splits traffic on the stable Ingress through nginx, between Services that route like the main one', () => {
      const canary = rollout().spec.strategy!.canary!;
      expect(canary.stableService).toBe(APP);
      expect(serviceLike(rendered['production-canary'], canary.canaryService)).toEqual([]);
      expect(
        find(rendered['production-canary'], 'Ingress', canary.trafficRouting?.nginx?.stableIngress ?? ''),
      ).toBeDefined();
    });

    it('analyses the canary Service from the first pause on', () => {
      const canary = rollout().spec.strategy!.canary!;
      expect(canary.analysis?.startingStep).toBe(1);
      expect(canary.analysis?.args?.find((a) => a.name === 'service-name')?.value).toBe(canary.canaryService);
    });

    it('the SLO analysis reads only the contracted recording rules, filtered by service', () => {
      expect(
        checks.sloQueries(one(rendered['production-canary'], 'AnalysisTemplate', 'reliability-api-slo')),
      ).toEqual([]);
    });

    it('the recording rule contract is written down where the observability work will find it', () => {
      for (const file of ['deploy/kubernetes/base/prometheusrule.yaml', 'docs/kubernetes.md']) {
        for (const rule of RECORDING_RULES) expect(readRepoFile(file), file).toContain(rule);
      }
    });
  });

  describe('blue-green', () => {
    const objects = () => rendered['production-blue-green'];
    const strategy = () => one(objects(), 'Rollout', APP).spec.strategy!.blueGreen!;

    it('switches between an active and a preview Service that route like the main one', () => {
      expect(strategy().activeService).toBe(APP);
      expect(serviceLike(objects(), strategy().previewService)).toEqual([]);
    });

    it('promotes only after the smoke analysis of the preview Service', () => {
      const pre = strategy().prePromotionAnalysis;
      expect(pre?.templates?.map((t) => t.templateName)).toEqual(['reliability-api-smoke']);
      expect(pre?.args?.find((a) => a.name === 'service-name')?.value).toBe(strategy().previewService);
    });

    it('the Argo Rollouts controller may reach the API pods on 8000 for the smoke analysis', () => {
      const [api] = all(objects(), 'Deployment').map((d) => d.spec!.template.metadata!.labels!);
      const admits = all(objects(), 'NetworkPolicy').some(
        (p) =>
          selects(p.spec?.podSelector, api!) &&
          (p.spec?.ingress ?? []).some(
            (r) =>
              (r.from ?? []).some(
                (f) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'argo-rollouts',
              ) && (r.ports ?? []).some((port) => port.port === 8000),
          ),
      );
      expect(admits).toBe(true);
    });
  });

  describe('the checks catch the faults they guard against', () => {
    it('when an Application stops self-healing, then it is reported', () => {
      const argocd = structuredClone(rendered.argocd);
      one(argocd, 'Application', `${APP}-production`).spec.syncPolicy!.automated!.selfHeal = false;
      expect(checks.applications(argocd)).toEqual([
        expect.stringMatching(/production: sync is not automated/),
      ]);
    });

    it('when an Application deploys to another namespace than its overlay, then it is reported', () => {
      const argocd = structuredClone(rendered.argocd);
      one(argocd, 'Application', `${APP}-staging`).spec.destination.namespace = 'default';
      expect(checks.applications(argocd)).toEqual([
        expect.stringMatching(/deploys to default, the overlay to reliability-api-staging/),
      ]);
    });

    it('when the replicas are no longer ignored, then it is reported', () => {
      const argocd = structuredClone(rendered.argocd);
      one(argocd, 'Application', `${APP}-staging`).spec.ignoreDifferences = [];
      expect(checks.replicasLeftToAutoscaler(argocd, deployed())).toContain(
        'Application/argocd/reliability-api-staging: self-heal resets /spec/replicas of apps/Deployment/reliability-api',
      );
    });

    it('when the project does not admit a rendered kind, then it is reported', () => {
      const argocd = structuredClone(rendered.argocd);
      const whitelist = one(argocd, 'AppProject', APP).spec.namespaceResourceWhitelist!;
      whitelist.splice(
        whitelist.findIndex((k) => k.kind === 'Rollout'),
        1,
      );
      expect(checks.project(argocd, deployed())).toEqual(['the project does not admit argoproj.io/Rollout']);
    });

    it('when the project does not admit the AWS variant’s SecretStore, then it is reported', () => {
      const argocd = structuredClone(rendered.argocd);
      const whitelist = one(argocd, 'AppProject', APP).spec.namespaceResourceWhitelist!;
      whitelist.splice(
        whitelist.findIndex((k) => k.kind === 'SecretStore'),
        1,
      );
      expect(checks.project(argocd, deployed())).toEqual([
        'the project does not admit external-secrets.io/SecretStore',
      ]);
    });

    it('when the Deployment keeps its replicas beside the Rollout, then it is reported', () => {
      const objects = structuredClone(rendered['production-canary']);
      one(objects, 'Deployment', APP).spec!.replicas = 3;
      expect(checks.workloadRef(objects)).toEqual(['Deployment/reliability-api still runs 3 replicas']);
    });

    it('when a weight is not followed by a pause, then it is reported', () => {
      const rollout = structuredClone(one(rendered['production-canary'], 'Rollout', APP));
      rollout.spec.strategy!.canary!.steps!.splice(3, 1);
      expect(checks.canarySteps(rollout)).toEqual(['weight 30 is not followed by a timed pause']);
    });

    it('when the weights change, then it is reported', () => {
      const rollout = structuredClone(one(rendered['production-canary'], 'Rollout', APP));
      rollout.spec.strategy!.canary!.steps![0] = { setWeight: 50 };
      expect(checks.canarySteps(rollout)).toEqual(['weights 50, 30, 50, 80, not 10, 30, 50, 80']);
    });

    it('when the Rollout stops passing an argument the template needs, then it is reported', () => {
      const objects = structuredClone(rendered['production-canary']);
      one(objects, 'Rollout', APP).spec.strategy!.canary!.analysis!.args!.pop();
      expect(checks.analysisArguments(objects)).toEqual([
        'canary.analysis: reliability-api-slo needs argument namespace',
      ]);
    });

    it('when a query reads another recording rule or drops the service filter, then it is reported', () => {
      const template = structuredClone(
        one(rendered['production-canary'], 'AnalysisTemplate', 'reliability-api-slo'),
      );
      const metric = template.spec.metrics[0]!;
      metric.provider.prometheus!.query = 'min(slo:request_success:ratio_rate1h{namespace="x"})';
      expect(checks.sloQueries(template)).toEqual([
        'queries slo:request_success:ratio_rate1h, which is not a contracted recording rule',
        expect.stringMatching(/^a query is not filtered by service/),
        'no query reads slo:request_success:ratio_rate5m',
      ]);
    });
  });
});
