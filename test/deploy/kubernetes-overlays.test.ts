// What each overlay changes, and that production is the larger and stricter of the two.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  OVERLAYS,
  all,
  componentTemplates,
  describeObject,
  find,
  one,
  quantity,
  readYaml,
  renderAll,
  requireKubectl,
  scaled,
  type K8sObject,
} from '../helpers/kustomize.js';

type Overlay = (typeof OVERLAYS)[number];
/** The environments that follow main (release.yml); the others take released versions only. */
const FOLLOWS_MAIN = new Set<Overlay>(['dev', 'staging']);
const RELEASE = /^\d+\.\d+\.\d+$/;
const COMMIT = /^sha-[0-9a-f]{7}$/;
const APP = 'reliability-api';
const API_IMAGE = 'ghcr.io/reliability-api/reliability-api';

interface OverlayKustomization {
  namespace: string;
  images: { name: string; newTag?: string; digest?: string }[];
}

const kustomizationOf = (overlay: Overlay) =>
  readYaml(`deploy/kubernetes/overlays/${overlay}/kustomization.yaml`) as OverlayKustomization;

function allowedDisruptions(objects: K8sObject[], replicas: number): number {
  const spec = one(objects, 'PodDisruptionBudget', APP).spec ?? {};
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
  namespace: (objects: K8sObject[], namespace: string) =>
    objects
      .filter((o) => o.metadata.namespace !== namespace)
      .map((o) => `${describeObject(o)} is not in namespace ${namespace}`),

  imageTag: (objects: K8sObject[], overlay: Overlay) => {
    const pinned = kustomizationOf(overlay).images.find((i) => i.name === API_IMAGE);
    if (pinned?.newTag === undefined)
      return [`the ${overlay} overlay does not pin ${API_IMAGE} with images:`];
    const expected = `${API_IMAGE}:${pinned.newTag}`;
    return ['api', 'migrate'].flatMap((component) =>
      componentTemplates(objects, component).flatMap((t) =>
        t.spec.containers
          .filter((c) => c.image !== expected)
          .map((c) => `${t.owner}/${c.name} runs ${c.image}, not ${expected}`),
      ),
    );
  },

  /** Production requests and limits at least staging's, and requests more of both. */
  productionLarger: (production: K8sObject[], staging: K8sObject[]) => {
    const resources = (objects: K8sObject[]) =>
      one(objects, 'Deployment', APP).spec!.template.spec!.containers.find((c) => c.name === 'api')!
        .resources!;
    const [prod, stage] = [resources(production), resources(staging)];
    const out: string[] = [];
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory'] as const) {
        const p = quantity(prod[kind]![resource]!);
        const s = quantity(stage[kind]![resource]!);
        if (p < s || (kind === 'requests' && p === s)) {
          out.push(
            `production ${resource} ${kind} ${prod[kind]![resource]} is not above staging's ${stage[kind]![resource]}`,
          );
        }
      }
    }
    return out;
  },

  /** At every scale either overlay may run, production allows no more evictions than staging. */
  productionStricter: (production: K8sObject[], staging: K8sObject[]) => {
    const hpas = [production, staging].map((o) => one(o, 'HorizontalPodAutoscaler', APP).spec!);
    const low = Math.min(...hpas.map((h) => h.minReplicas ?? 1));
    const high = Math.max(...hpas.map((h) => h.maxReplicas));
    const out: string[] = [];
    for (let replicas = low; replicas <= high; replicas++) {
      const [p, s] = [allowedDisruptions(production, replicas), allowedDisruptions(staging, replicas)];
      if (p > s) out.push(`at ${replicas} replicas production allows ${p} evictions, staging ${s}`);
    }
    const [prod, stage] = hpas as [(typeof hpas)[number], (typeof hpas)[number]];
    if ((prod.minReplicas ?? 1) <= (stage.minReplicas ?? 1))
      out.push('production does not keep more replicas than staging');
    if (prod.maxReplicas < stage.maxReplicas) out.push('production may scale to fewer replicas than staging');
    const window = (h: typeof prod) => h.behavior?.scaleDown?.stabilizationWindowSeconds ?? 300;
    if (window(prod) < window(stage)) out.push('production scales down sooner than staging');
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: overlays', () => {
  let rendered: Record<'base' | Overlay, K8sObject[]>;
  beforeAll(() => {
    rendered = renderAll(['base', ...OVERLAYS]);
  });

  describe.each(OVERLAYS)('%s', (overlay) => {
    const objects = () => rendered[overlay];

    it(`puts every object in its own namespace, reliability-api-${overlay}`, () => {
      const { namespace } = kustomizationOf(overlay);
      expect(namespace).toBe(`reliability-api-${overlay}`);
      expect(checks.namespace(objects(), namespace)).toEqual([]);
    });

    it('runs with the strict start-up checks: ENVIRONMENT production in production, staging elsewhere', () => {
      expect(one(objects(), 'ConfigMap', `${APP}-config`).data?.ENVIRONMENT).toBe(
        overlay === 'production' ? 'production' : 'staging',
      );
    });

    it(
      FOLLOWS_MAIN.has(overlay)
        ? 'pins a sha-<commit> image of main or a release (release.yml moves it)'
        : 'pins a released X.Y.Z image (only a promotion pull request moves it)',
      () => {
        const tag = kustomizationOf(overlay).images.find((i) => i.name === API_IMAGE)?.newTag ?? '';
        const allowed = FOLLOWS_MAIN.has(overlay) ? [RELEASE, COMMIT] : [RELEASE];
        expect(
          allowed.some((pattern) => pattern.test(tag)),
          tag,
        ).toBe(true);
      },
    );

    it('runs the tag its images: entry pins, in the API and in the migration', () => {
      expect(checks.imageTag(objects(), overlay)).toEqual([]);
    });

    it('serves its own host over TLS, with a certificate from its own issuer', () => {
      const base = one(rendered.base, 'Ingress', APP);
      const ingress = one(objects(), 'Ingress', APP);
      const [host] = ingress.spec!.rules!.map((r) => r.host);
      expect(host).not.toBe(base.spec!.rules![0]!.host);
      expect(host).not.toMatch(/\.invalid$/);
      expect(ingress.spec!.tls!.flatMap((t) => t.hosts)).toEqual([host]);
      expect(ingress.metadata.annotations?.['cert-manager.io/cluster-issuer']).toBe(
        overlay === 'production' ? 'letsencrypt-production' : 'letsencrypt-staging',
      );
    });

    it('reads every secret from its own path in the store, the same keys as the base', () => {
      const data = one(objects(), 'ExternalSecret', `${APP}-secrets`).spec!.data!;
      const baseData = one(rendered.base, 'ExternalSecret', `${APP}-secrets`).spec!.data!;
      expect(data.map((d) => d.secretKey).sort()).toEqual(baseData.map((d) => d.secretKey).sort());
      for (const d of data)
        expect(d.remoteRef.key).toMatch(new RegExp(`^reliability-api/${overlay}/[a-z-]+$`));
    });

    it('starts the Deployment at the autoscaler minimum', () => {
      const hpa = one(objects(), 'HorizontalPodAutoscaler', APP).spec!;
      expect(one(objects(), 'Deployment', APP).spec?.replicas).toBe(hpa.minReplicas);
    });
  });

  describe('production compared with staging', () => {
    it('production pods request more CPU and memory, and are limited no lower', () => {
      expect(checks.productionLarger(rendered.production, rendered.staging)).toEqual([]);
    });

    it('production scales from a higher floor, as high or higher, down as slowly, and allows no more evictions at any scale', () => {
      expect(checks.productionStricter(rendered.production, rendered.staging)).toEqual([]);
    });

    it('no two overlays share a namespace, a host or a secret path', () => {
      const of = (o: K8sObject[]) => [
        o[0]!.metadata.namespace,
        one(o, 'Ingress', APP).spec!.rules![0]!.host,
        one(o, 'ExternalSecret', `${APP}-secrets`).spec!.data![0]!.remoteRef.key,
      ];
      const values = OVERLAYS.map((overlay) => of(rendered[overlay]));
      for (let i = 0; i < 3; i++) {
        const column = values.map((v) => v[i]);
        expect(new Set(column).size, column.join(', ')).toBe(OVERLAYS.length);
      }
    });
  });

  describe('the checks catch the faults they guard against', () => {
    it('when an object has no namespace, then it is reported', () => {
      const objects = structuredClone(rendered.staging);
      objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'stray' } });
      expect(checks.namespace(objects, 'reliability-api-staging')).toEqual([
        'ConfigMap/stray is not in namespace reliability-api-staging',
      ]);
    });

    it('when the migration runs another tag than the overlay pins, then it is reported', () => {
      const objects = structuredClone(rendered.production);
      one(objects, 'Job', 'reliability-api-migrate').spec!.template.spec!.containers[0]!.image =
        `${API_IMAGE}:0.0.1`;
      expect(checks.imageTag(objects, 'production')).toEqual([
        expect.stringMatching(/migrate runs .*:0.0.1, not/),
      ]);
    });

    it('when production requests less memory than staging, then it is reported', () => {
      const objects = structuredClone(rendered.production);
      one(objects, 'Deployment', APP).spec!.template.spec!.containers[0]!.resources!.requests!.memory =
        '128Mi';
      expect(checks.productionLarger(objects, rendered.staging)).toEqual([
        expect.stringMatching(/production memory requests 128Mi is not above staging's 256Mi/),
      ]);
    });

    it('when production’s budget allows every pod to be evicted, then it is reported', () => {
      const objects = structuredClone(rendered.production);
      const pdb = one(objects, 'PodDisruptionBudget', APP).spec!;
      delete pdb.maxUnavailable;
      pdb.minAvailable = 0;
      expect(checks.productionStricter(objects, rendered.staging)).toContain(
        'at 2 replicas production allows 2 evictions, staging 1',
      );
    });

    it('when production keeps the staging floor, then it is reported', () => {
      const objects = structuredClone(rendered.production);
      one(objects, 'HorizontalPodAutoscaler', APP).spec!.minReplicas = 2;
      expect(checks.productionStricter(objects, rendered.staging)).toContain(
        'production does not keep more replicas than staging',
      );
    });
  });

  it('the base has no namespace and its Ingress host is a placeholder', () => {
    expect(rendered.base.some((o) => o.metadata.namespace !== undefined)).toBe(false);
    expect(find(rendered.base, 'Ingress', APP)?.spec?.rules?.[0]?.host).toMatch(/\.invalid$/);
    expect(all(rendered.base, 'ExternalSecret')).toHaveLength(1);
  });
});
