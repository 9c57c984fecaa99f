// Every kustomization of the deployment kit renders with `kubectl kustomize`, and every object it renders
// is valid against the schema of its kind: kubernetes-models for the built-in kinds, the @kubernetes-models
// packages for the CRDs. A kind without a schema is an error, so nothing is deployed unvalidated.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KUSTOMIZATIONS,
  VALIDATED_KINDS,
  kustomize,
  parseManifests,
  renderAll,
  requireKubectl,
  schemaErrors,
  type K8sObject,
  type KustomizationName,
} from '../helpers/kustomize.js';

const kubectl = requireKubectl();
const NAMES = Object.keys(KUSTOMIZATIONS) as KustomizationName[];

describe.skipIf(!kubectl)('Kubernetes manifests: schemas', () => {
  let rendered: Record<KustomizationName, K8sObject[]>;
  beforeAll(() => {
    rendered = renderAll(NAMES);
  });

  describe.each(NAMES)('%s', (name) => {
    it('renders objects', () => {
      expect(rendered[name].length).toBeGreaterThan(0);
    });

    it('every object is valid against the schema of its kind', () => {
      expect(schemaErrors(rendered[name])).toEqual([]);
    });

    it('no two objects share a kind, namespace and name', () => {
      const ids = rendered[name].map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
      expect(ids.length).toBe(new Set(ids).size);
    });
  });

  it('every kind the kit renders has a schema', () => {
    const kinds = new Set(Object.values(rendered).flatMap((objects) => objects.map(kindOf)));
    expect([...kinds].filter((k) => !VALIDATED_KINDS.includes(k))).toEqual([]);
  });

  describe('the schema check catches broken manifests', () => {
    const deployment = () => {
      const found = rendered.base.find((o) => o.kind === 'Deployment');
      return structuredClone(found!) as K8sObject & { spec: Record<string, unknown> };
    };

    it('when a field has the wrong type, then it is reported with its path', () => {
      const broken = deployment();
      broken.spec.replicas = 'two';
      expect(schemaErrors([broken])).toEqual([
        expect.stringMatching(/Deployment\/reliability-api: .*replicas/),
      ]);
    });

    it('when a required field is missing, then it is reported', () => {
      const broken = deployment();
      delete broken.spec.selector;
      expect(schemaErrors([broken])).toEqual([expect.stringMatching(/selector/)]);
    });

    it('when a CRD field has the wrong type, then its package schema reports it', () => {
      const externalSecret = structuredClone(
        rendered.base.find((o) => o.kind === 'ExternalSecret')!,
      ) as K8sObject & {
        spec: Record<string, unknown>;
      };
      externalSecret.spec.refreshInterval = 3600;
      expect(schemaErrors([externalSecret])).toEqual([expect.stringMatching(/refreshInterval/)]);
    });

    it('when a kind has no schema (a committed Secret, say), then it is reported', () => {
      const secret: K8sObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'reliability-api-secrets' },
        stringData: { SECRET_KEY: 'x' },
      };
      expect(schemaErrors([secret])).toEqual(['Secret/reliability-api-secrets: no schema for v1 Secret']);
    });

    it('when a known kind comes in an unknown version, then it is reported', () => {
      const hpa = structuredClone(rendered.base.find((o) => o.kind === 'HorizontalPodAutoscaler')!);
      hpa.apiVersion = 'autoscaling/v2beta2';
      expect(schemaErrors([hpa])).toEqual([expect.stringMatching(/no schema for autoscaling\/v2beta2/)]);
    });
  });

  describe('rendering', () => {
    it('when a kustomization does not exist, then kustomize throws with kubectl\u2019s message', () => {
      expect(() => kustomize('deploy/kubernetes/overlays/nonexistent')).toThrow(
        /kubectl kustomize deploy\/kubernetes\/overlays\/nonexistent exited with 1: .+/,
      );
    });

    it('when a document is not a Kubernetes object, then parsing fails naming it', () => {
      expect(() =>
        parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nfoo: 1\n', 'x'),
      ).toThrow('x, document 2: not a Kubernetes object');
    });

    it('empty documents are skipped', () => {
      expect(
        parseManifests('---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n', 'x'),
      ).toHaveLength(1);
    });
  });
});

function kindOf(object: K8sObject): string {
  return `${object.apiVersion}/${object.kind}`;
}
