// The rules the rendered manifests must keep (test/helpers/kubernetes-policy/), run on the base, the
// overlays, both Argo Rollouts variants and the AWS variant. The last block breaks a copy of the base in
// the ways each check guards against and asserts that the check reports it, so no check passes vacuously.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  APP_KUSTOMIZATIONS,
  REPO_ROOT,
  all,
  describeObject,
  one,
  renderAll,
  requireKubectl,
  type K8sObject,
} from '../helpers/kustomize.js';
import {
  API_IMAGE,
  APP,
  CONFIG_MAP,
  EXTRA_INGRESS_SOURCES,
  POD_UID,
  checks,
  type AppKustomization,
  type Check,
} from '../helpers/kubernetes-policy/index.js';

// ---------------------------------------------------------------------------------------------------

/**
 * The renders of the AWS variant (deploy/kubernetes/aws): an ALB instead of ingress-nginx, a namespaced
 * SecretStore instead of the platform's ClusterSecretStore, and the load balancer's subnets instead of the
 * ingress-nginx pods. The three checks written for those are run there by test/deploy/kubernetes-aws.test.ts,
 * which requires exactly these differences and the AWS rules in their place; every other rule applies here.
 */
const AWS_RENDERS: ReadonlySet<AppKustomization> = new Set(['production-aws']);

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: policy', () => {
  let rendered: Record<AppKustomization, K8sObject[]>;
  beforeAll(() => {
    rendered = renderAll(APP_KUSTOMIZATIONS);
  });

  describe.each(APP_KUSTOMIZATIONS)('%s', (name) => {
    const objects = () => rendered[name];
    const nginx = !AWS_RENDERS.has(name);

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
    if (nginx)
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
    if (nginx)
      it('the Ingress serves TLS through nginx with rate limits and keeps probes and metrics internal', () => {
        expect(checks.ingress(objects())).toEqual([]);
      });
    it('the autoscaler targets 70% CPU and 80% memory, scales up bounded and down slowly', () => {
      expect(checks.autoscaler(objects())).toEqual([]);
    });
    it('the disruption budget keeps a pod serving and never blocks a drain at the minimum scale', () => {
      expect(checks.disruptionBudget(objects())).toEqual([]);
    });
    if (nginx)
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
