// The Helm chart (deploy/helm/reliability-api) with the real helm binary: lint --strict per environment,
// every rendered object through the same schema validation and the same policy checks as the Kustomize
// kit (test/helpers/kubernetes-policy/), parity with the production Kustomize overlay, and values that
// break the schema refused.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CHART,
  ENVIRONMENTS,
  helm,
  renderChart,
  requireHelm,
  valuesFile,
  type Environment,
} from '../helpers/helm.js';
import {
  REPO_ROOT,
  all,
  containersOf,
  describeObject,
  kustomize,
  one,
  podTemplates,
  requireKubectl,
  schemaErrors,
  type K8sObject,
} from '../helpers/kustomize.js';
import { APP, API_IMAGE, CONFIG_MAP, checks } from '../helpers/kubernetes-policy/index.js';

const binary = requireHelm();
const kubectl = requireKubectl();

/** Every check of the shared policy, run on one rendering. */
function policyViolations(objects: K8sObject[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, check] of Object.entries(checks)) {
    const found = check(objects);
    if (found.length > 0) out[name] = found;
  }
  return out;
}

/** What the parity test compares of a workload: what runs, how it is probed, configured and confined. */
function workloadShape(objects: K8sObject[]) {
  return Object.fromEntries(
    podTemplates(objects).map((t) => [
      t.owner,
      {
        securityContext: t.spec.securityContext,
        serviceAccountName: t.spec.serviceAccountName,
        automountServiceAccountToken: t.spec.automountServiceAccountToken,
        terminationGracePeriodSeconds: t.spec.terminationGracePeriodSeconds,
        volumes: (t.spec.volumes ?? []).map((v) => v.name).sort(),
        containers: containersOf(t.spec).map((c) => ({
          name: c.name,
          image: c.image,
          command: c.command,
          args: c.args,
          ports: c.ports,
          startupProbe: c.startupProbe,
          livenessProbe: c.livenessProbe,
          readinessProbe: c.readinessProbe,
          lifecycle: c.lifecycle,
          env: (c.env ?? []).map((e) => e.name).sort(),
          envFrom: c.envFrom,
          securityContext: c.securityContext,
          resources: c.resources,
          volumeMounts: c.volumeMounts,
        })),
      },
    ]),
  );
}

/** Kind/name: the Kustomize overlays leave the namespace to the Argo CD Application. */
const kindAndName = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
const kindsAndNames = (objects: K8sObject[]) => objects.map(kindAndName).sort();

describe.skipIf(!binary)('Helm chart', () => {
  const rendered = {} as Record<Environment, K8sObject[]>;
  beforeAll(() => {
    for (const environment of ENVIRONMENTS) rendered[environment] = renderChart(binary!, environment);
  });

  it('Chart.yaml: appVersion and version follow package.json', () => {
    const chart = parse(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect([chart.apiVersion, chart.name, chart.appVersion, chart.version]).toEqual([
      'v2',
      APP,
      version,
      version,
    ]);
  });

  describe.each(ENVIRONMENTS)('%s', (environment) => {
    it('helm lint --strict passes', () => {
      const result = helm(binary!, ['lint', '--strict', CHART, '-f', valuesFile(environment)]);
      expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
      expect(result.status).toBe(0);
    });

    it('every rendered object matches its Kubernetes or CRD schema', () => {
      expect(rendered[environment].length).toBeGreaterThan(10);
      expect(schemaErrors(rendered[environment])).toEqual([]);
    });

    it('every rendered object keeps the shared policy', () => {
      expect(policyViolations(rendered[environment])).toEqual({});
    });

    it('runs with the strict start-up checks (ENVIRONMENT staging or production) and hard-codes no namespace', () => {
      expect(one(rendered[environment], 'ConfigMap', CONFIG_MAP).data?.ENVIRONMENT).toBe(
        environment === 'production' ? 'production' : 'staging',
      );
      // The release's namespace comes from `helm install -n` or the Argo CD Application's destination.
      expect(
        rendered[environment].filter((o) => o.metadata.namespace !== undefined).map(describeObject),
      ).toEqual([]);
    });
  });

  it('dev and staging run a sha-<commit> or release image; qa and production a released semver image', () => {
    const tags = Object.fromEntries(
      ENVIRONMENTS.map((e) => [
        e,
        one(rendered[e], 'Deployment', APP).spec!.template.spec!.containers[0]!.image!.split(':')[1],
      ]),
    );
    const release = /^\d+\.\d+\.\d+$/;
    const commit = /^sha-[0-9a-f]{7}$/;
    expect(tags.production).toMatch(release);
    expect(tags.qa).toMatch(release);
    for (const e of ['dev', 'staging'] as const)
      expect(release.test(tags[e]!) || commit.test(tags[e]!), e).toBe(true);
  });

  it('with rollout.enabled the canary Rollout takes over the pods and still keeps the policy', () => {
    const objects = renderChart(binary!, 'production', { set: ['rollout.enabled=true'] });
    expect(schemaErrors(objects)).toEqual([]);
    expect(policyViolations(objects)).toEqual({});
    expect(one(objects, 'Deployment', APP).spec?.replicas).toBe(0);
    const rollout = one(objects, 'Rollout', APP).spec;
    expect(rollout.workloadRef).toMatchObject({ kind: 'Deployment', name: APP });
    expect(rollout.strategy?.canary?.steps?.length).toBeGreaterThan(0);
    expect(all(objects, 'AnalysisTemplate').length).toBeGreaterThan(0);
  });

  it('the helm test pod asks the Service for /health/ready, under the same pod restrictions', () => {
    const objects = renderChart(binary!, 'staging', { tests: true });
    expect(schemaErrors(objects)).toEqual([]);
    const pod = objects.find((o) => o.kind === 'Pod');
    expect(pod?.metadata.annotations?.['helm.sh/hook']).toBe('test');
    const spec = pod!.spec as {
      restartPolicy: string;
      securityContext: Record<string, unknown>;
      containers: { command?: string[]; args?: string[]; securityContext?: Record<string, unknown> }[];
    };
    expect(spec.restartPolicy).toBe('Never');
    const command = [...(spec.containers[0]!.command ?? []), ...(spec.containers[0]!.args ?? [])].join(' ');
    expect(command).toContain(`fetch('http://${APP}/health/ready'`);
    expect(command).toContain('process.exit(r.ok ? 0 : 1)');
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(spec.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('the PrometheusRule holds the same groups as the shipped rule files', () => {
    const dir = path.join(REPO_ROOT, 'deploy/monitoring/prometheus/rules');
    const fromFiles = readdirSync(dir)
      .filter((f) => f.endsWith('.yml'))
      .flatMap((f) => (parse(readFileSync(path.join(dir, f), 'utf8')) as { groups: unknown[] }).groups);
    const groups = all(rendered.production, 'PrometheusRule').flatMap((r) => r.spec.groups ?? []);
    expect(fromFiles.length).toBeGreaterThan(0);
    expect(groups).toEqual(fromFiles);
  });

  describe.skipIf(!kubectl)('parity with the production Kustomize overlay', () => {
    let kustomized: K8sObject[];
    beforeAll(() => {
      kustomized = kustomize(path.join(REPO_ROOT, 'deploy/kubernetes/overlays/production'));
    });

    it('the same kinds and names', () => {
      expect(kindsAndNames(rendered.production)).toEqual(kindsAndNames(kustomized));
    });

    it('the same images, probes, env var names, config sources, security contexts and resources', () => {
      expect(workloadShape(rendered.production)).toEqual(workloadShape(kustomized));
    });

    it('the same ConfigMap data', () => {
      expect(one(rendered.production, 'ConfigMap', CONFIG_MAP).data).toEqual(
        one(kustomized, 'ConfigMap', CONFIG_MAP).data,
      );
    });

    it('the same Service, Ingress, autoscaler, disruption budget and network policies', () => {
      const specs = (objects: K8sObject[]) =>
        Object.fromEntries(
          objects
            .filter((o) =>
              [
                'Service',
                'Ingress',
                'HorizontalPodAutoscaler',
                'PodDisruptionBudget',
                'NetworkPolicy',
              ].includes(o.kind),
            )
            .map((o) => [kindAndName(o), o.spec]),
        );
      expect(specs(rendered.production)).toEqual(specs(kustomized));
    });
  });

  describe('values that break the schema fail helm lint', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'helm-values-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it.each([
      ['replicas is not a number', 'replicas: two\n', /replicas/],
      ['the image is tagged latest', 'image:\n  tag: latest\n', /image\.tag|tag/],
      ['an unknown key (a typo)', 'replica: 3\n', /replica/],
      ['an unknown disruption budget type', 'podDisruptionBudget:\n  type: minimum\n  value: 1\n', /type/],
      ['a negative pre-stop sleep', 'preStopSleepSeconds: -1\n', /preStopSleepSeconds/],
    ])('%s', (fault, values, report) => {
      const file = path.join(dir, `${fault.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, values);
      const result = helm(binary!, ['lint', '--strict', CHART, '-f', valuesFile('staging'), '-f', file]);
      expect(result.status).not.toBe(0);
      expect(result.stdout + result.stderr).toMatch(report);
      expect(result.stdout + result.stderr).toMatch(/schema/i);
    });

    it('the image repository is the project image by default', () => {
      const image = one(rendered.staging, 'Deployment', APP).spec!.template.spec!.containers[0]!.image!;
      expect(image.startsWith(`${API_IMAGE}:`)).toBe(true);
    });
  });
});
