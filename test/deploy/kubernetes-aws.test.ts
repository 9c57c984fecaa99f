// The AWS variant (deploy/kubernetes/aws): the production overlay behind an ALB of the AWS Load Balancer
// Controller, reading its secrets from AWS Secrets Manager through a SecretStore and the IAM role Terraform
// creates for it. The generic policy (test/helpers/kubernetes-policy/) holds for this render too, but for
// exactly the three rules written for ingress-nginx and the platform store; the checks here take their
// place, and compare the render with Terraform's production values (region, role, public subnets). The
// last block breaks copies and checks that each fault is reported.
import type { ISecretStore } from '@kubernetes-models/external-secrets/external-secrets.io/v1beta1';
import { beforeAll, describe, expect, it } from 'vitest';
import { checks } from '../helpers/kubernetes-policy/index.js';
import {
  all,
  componentTemplates,
  describeObject,
  effectiveSetting,
  find,
  one,
  readRepoFile,
  renderAll,
  requireKubectl,
  selects,
  type K8sObject,
} from '../helpers/kustomize.js';
import { expand, loadEnvironment, rootVariable, type Environment } from '../helpers/terraform.js';

const APP = 'reliability-api';
const NAMESPACE = 'reliability-api-production';
const ESO_ACCOUNT = 'reliability-api-external-secrets';
const STORE = 'reliability-api-aws';
const ALB = 'alb.ingress.kubernetes.io/';
const ROLE_ANNOTATION = 'eks.amazonaws.com/role-arn';
/** The ALB's idle timeout when load-balancer-attributes does not set one. */
const ALB_DEFAULT_IDLE_SECONDS = 60;
/** What the AWS variant changes in the production overlay, and what it adds. */
const CHANGED = [
  'Ingress/reliability-api',
  'NetworkPolicy/reliability-api',
  'ExternalSecret/reliability-api-secrets',
];
const ADDED = [`ServiceAccount/${ESO_ACCOUNT}`, `SecretStore/${STORE}`];

/** What the render must agree with, from deploy/terraform/environments/production. */
interface Terraform {
  region: string;
  roleName: string;
  publicSubnets: string[];
}

type SecretStore = ISecretStore & { metadata: { name: string; labels?: Record<string, string> } };
const secretStores = (objects: readonly K8sObject[]) =>
  objects.filter((o) => o.kind === 'SecretStore') as unknown as SecretStore[];
const key = (object: K8sObject) => `${object.kind}/${object.metadata.name}`;

/** Terraform's cidrsubnet for IPv4. */
function cidrsubnet(prefix: string, newbits: number, netnum: number): string {
  const [address, bits] = prefix.split('/') as [string, string];
  const base = address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const length = Number(bits) + newbits;
  const network = base + netnum * 2 ** (32 - length);
  return `${[24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.')}/${length}`;
}

/** The public subnets modules/network creates for an environment (where an internet-facing ALB lives). */
function publicSubnets(env: Environment): string[] {
  const formula = String(env.modules.network!.locals.find((l) => 'public_cidrs' in l)?.public_cidrs);
  // The layout this computes; a change of it in the module must change this test too.
  expect(formula).toBe('${[for index, _ in local.zones : cidrsubnet(var.cidr_block, 8, index)]}');
  const vpc = String(rootVariable(env, 'vpc_cidr'));
  const zones = rootVariable(env, 'availability_zones') as string[];
  return zones.map((_, index) => cidrsubnet(vpc, 8, index));
}

function apiContainer(objects: readonly K8sObject[]) {
  const container = one(objects, 'Deployment', APP).spec!.template.spec!.containers.find(
    (c) => c.name === 'api',
  );
  if (container === undefined) throw new Error('no api container');
  return container;
}

/** `key=value,key=value`, as the load-balancer-attributes annotation writes them. */
function attributes(value: string | undefined): Record<string, string> {
  return Object.fromEntries(
    (value ?? '')
      .split(',')
      .filter((pair) => pair.includes('='))
      .map((pair) => pair.split('=', 2).map((s) => s.trim()) as [string, string]),
  );
}

// ---------------------------------------------------------------------------------------------------
// Checks: each returns one line per violation.

const aws = {
  /** An internet-facing ALB to the pod addresses, HTTPS with an ACM certificate of the region, no nginx left. */
  ingress: (objects: K8sObject[], terraform: Terraform) => {
    const ingress = find(objects, 'Ingress', APP);
    if (ingress === undefined) return [`no Ingress/${APP}`];
    const a = ingress.metadata.annotations ?? {};
    const out: string[] = [];
    if (ingress.spec?.ingressClassName !== 'alb')
      out.push(`ingress class ${ingress.spec?.ingressClassName}, not alb`);
    const requires = (name: string, value: string) => {
      if (a[`${ALB}${name}`] !== value) out.push(`${ALB}${name} is ${a[`${ALB}${name}`]}, not ${value}`);
    };
    requires('scheme', 'internet-facing');
    requires('target-type', 'ip');
    requires('ssl-redirect', '443');
    let ports: unknown;
    try {
      ports = JSON.parse(a[`${ALB}listen-ports`] ?? 'null');
    } catch {
      ports = a[`${ALB}listen-ports`];
    }
    if (JSON.stringify(ports) !== JSON.stringify([{ HTTP: 80 }, { HTTPS: 443 }]))
      out.push(`listens on ${JSON.stringify(ports)}, not HTTP 80 (to redirect) and HTTPS 443`);
    const certificate = a[`${ALB}certificate-arn`];
    const region = /^arn:aws:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/.exec(
      certificate ?? '',
    )?.[1];
    if (region === undefined) out.push(`no ACM certificate ARN (${certificate})`);
    else if (region !== terraform.region)
      out.push(
        `the certificate is in ${region}, the ALB in ${terraform.region}: an ALB uses certificates of its region`,
      );
    if (!(a[`${ALB}ssl-policy`] ?? '').startsWith('ELBSecurityPolicy-TLS13-'))
      out.push(`TLS policy ${a[`${ALB}ssl-policy`]} is not one of the TLS 1.3 policies`);
    const readiness = apiContainer(objects).readinessProbe?.httpGet?.path;
    if (a[`${ALB}healthcheck-path`] !== readiness)
      out.push(`the health check asks ${a[`${ALB}healthcheck-path`]}, not the readiness path ${readiness}`);
    if ((a[`${ALB}success-codes`] ?? '200') !== '200')
      out.push(`the health check accepts ${a[`${ALB}success-codes`]}, not 200 only`);
    for (const name of Object.keys(a)) {
      if (name.startsWith('nginx.ingress.kubernetes.io/') || name.startsWith('cert-manager.io/'))
        out.push(`${name} is left, which nothing reads behind an ALB`);
    }
    if (ingress.spec?.tls !== undefined) out.push('spec.tls names a TLS Secret that nothing issues');
    return out;
  },

  /** The ALB closes an idle connection before the app does. */
  idleTimeout: (objects: K8sObject[]) => {
    const a = one(objects, 'Ingress', APP).metadata.annotations ?? {};
    const setting = attributes(a[`${ALB}load-balancer-attributes`])['idle_timeout.timeout_seconds'];
    const idle = setting === undefined ? ALB_DEFAULT_IDLE_SECONDS : Number(setting);
    const keepAlive = Number(
      effectiveSetting(objects, apiContainer(objects), 'HTTP_KEEP_ALIVE_TIMEOUT_SECONDS'),
    );
    return Number.isInteger(idle) && idle < keepAlive
      ? []
      : [
          `the ALB idle timeout ${setting ?? idle} s is not below HTTP_KEEP_ALIVE_TIMEOUT_SECONDS ${keepAlive} s`,
        ];
  },

  /** The ExternalSecret reads Secrets Manager through the SecretStore, as the ServiceAccount of Terraform's role. */
  secretsAccess: (objects: K8sObject[], terraform: Terraform) => {
    const out: string[] = [];
    const account = find(objects, 'ServiceAccount', ESO_ACCOUNT);
    const store = secretStores(objects).find((s) => s.metadata.name === STORE);
    if (account === undefined) out.push(`no ServiceAccount/${ESO_ACCOUNT}`);
    else {
      const arn = account.metadata.annotations?.[ROLE_ANNOTATION];
      const role = /^arn:aws:iam::\d{12}:role\/([\w+=,.@-]+)$/.exec(arn ?? '')?.[1];
      if (role !== terraform.roleName)
        out.push(
          `ServiceAccount/${ESO_ACCOUNT}: ${ROLE_ANNOTATION} ${arn} is not Terraform's role ${terraform.roleName}`,
        );
      if (account.automountServiceAccountToken !== false)
        out.push(
          `ServiceAccount/${ESO_ACCOUNT} mounts its token (the operator asks for one; no pod needs it)`,
        );
    }
    if (store === undefined) out.push(`no SecretStore/${STORE}`);
    else {
      const provider = store.spec?.provider.aws;
      if (provider?.service !== 'SecretsManager')
        out.push(`SecretStore/${STORE}: service ${provider?.service}`);
      if (provider?.region !== terraform.region)
        out.push(`SecretStore/${STORE}: region ${provider?.region}, Terraform's ${terraform.region}`);
      const ref = provider?.auth?.jwt?.serviceAccountRef;
      if (ref?.name !== ESO_ACCOUNT || ref.namespace !== undefined)
        out.push(
          `SecretStore/${STORE} authenticates as ${ref?.namespace ?? ''}/${ref?.name}, not ${ESO_ACCOUNT}`,
        );
      if (provider?.auth?.secretRef !== undefined || provider?.role !== undefined)
        out.push(`SecretStore/${STORE} uses credentials or a role other than its ServiceAccount's`);
    }
    for (const secret of all(objects, 'ExternalSecret')) {
      const where = describeObject(secret);
      const ref = secret.spec?.secretStoreRef;
      if (ref?.kind !== 'SecretStore' || ref.name !== STORE)
        out.push(`${where} reads ${ref?.kind}/${ref?.name}, not SecretStore/${STORE}`);
      // Typed as the same literal; what matters is what the files say.
      const [storeVersion, secretVersion] = [store?.apiVersion, secret.apiVersion] as (string | undefined)[];
      if (storeVersion !== undefined && storeVersion !== secretVersion)
        out.push(`${where} is ${secretVersion}, the SecretStore ${storeVersion}`);
    }
    // The migration hook runs before the rest is synced; the ExternalSecret it needs reads through these.
    for (const object of [account, store]) {
      if (object !== undefined && object.metadata.labels?.['app.kubernetes.io/component'] !== 'config')
        out.push(`${object.kind}/${object.metadata.name} is not labelled app.kubernetes.io/component=config`);
    }
    return out;
  },

  /** The API pods admit the ALB's subnets, and only those, on the app port; ingress-nginx no longer. */
  networkPolicy: (objects: K8sObject[], terraform: Terraform) => {
    const out: string[] = [];
    for (const template of componentTemplates(objects, 'api')) {
      const rules = all(objects, 'NetworkPolicy')
        .filter((p) => selects(p.spec?.podSelector, template.labels))
        .flatMap((p) => p.spec?.ingress ?? []);
      const blocks = rules.flatMap((rule) =>
        (rule.from ?? []).flatMap((peer) =>
          peer.ipBlock === undefined ? [] : [{ block: peer.ipBlock, rule }],
        ),
      );
      const cidrs = blocks.map(({ block }) => block.cidr).sort();
      const expected = [...terraform.publicSubnets].sort();
      if (JSON.stringify(cidrs) !== JSON.stringify(expected))
        out.push(
          `${template.owner}: admits ${cidrs.join(', ') || 'no address'}, not the public subnets ${expected.join(', ')}`,
        );
      for (const { block, rule } of blocks) {
        const ports = (rule.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`);
        if (JSON.stringify(ports) !== JSON.stringify(['8000/TCP']))
          out.push(
            `${template.owner}: admits ${block.cidr} on ${ports.join(', ') || 'every port'}, not 8000/TCP`,
          );
      }
      for (const rule of rules) {
        for (const peer of rule.from ?? []) {
          if (peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx')
            out.push(`${template.owner}: still admits ingress-nginx, which the ALB replaces`);
        }
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('Kubernetes manifests: the AWS variant', () => {
  let rendered: Record<'production' | 'production-aws', K8sObject[]>;
  let production: Environment;
  let terraform: Terraform;
  const objects = () => rendered['production-aws'];
  beforeAll(async () => {
    rendered = renderAll(['production', 'production-aws']);
    production = await loadEnvironment('production');
    const role = production.modules.secrets_access!.resource.aws_iam_role!.this![0]!;
    terraform = {
      region: String(rootVariable(production, 'region')),
      roleName: String(expand(production, 'secrets_access', role.name)),
      publicSubnets: publicSubnets(production),
    };
  });

  it('Terraform’s production values are what the render is compared with', () => {
    expect(terraform).toEqual({
      region: 'eu-west-1',
      roleName: 'reliability-api-production-external-secrets',
      publicSubnets: ['10.30.0.0/24', '10.30.1.0/24', '10.30.2.0/24'],
    });
  });

  it('the Ingress is an internet-facing ALB to the pod IPs: HTTPS with an ACM certificate, HTTP redirected, health checked on /health/ready', () => {
    expect(aws.ingress(objects(), terraform)).toEqual([]);
  });

  it('the ALB’s idle timeout is below the app’s keep-alive timeout, so the ALB always closes first', () => {
    expect(aws.idleTimeout(objects())).toEqual([]);
  });

  it('the ExternalSecret reads Secrets Manager through the SecretStore, as the ServiceAccount of Terraform’s role', () => {
    expect(aws.secretsAccess(objects(), terraform)).toEqual([]);
  });

  it('the API pods admit the ALB’s public subnets on 8000 only, and no longer ingress-nginx', () => {
    expect(aws.networkPolicy(objects(), terraform)).toEqual([]);
  });

  it('the generic policy finds exactly what the AWS variant replaces, and nothing else', () => {
    const ingress = describeObject(one(objects(), 'Ingress', APP));
    expect(checks.ingress(objects())).toEqual([
      `${ingress}: ingress class alb`,
      `${ingress}: no cert-manager.io/cluster-issuer annotation`,
      `${ingress}: no nginx limit-rps limit`,
      `${ingress}: no nginx limit-connections limit`,
      `${ingress}: host reliability-api.example.com has no TLS`,
    ]);
    expect(checks.externalSecret(objects())).toEqual([
      `ExternalSecret/${NAMESPACE}/reliability-api-secrets: store is SecretStore/${STORE}, not ClusterSecretStore/platform-secrets`,
    ]);
    expect(checks.networkPolicy(objects())).toEqual(
      terraform.publicSubnets.map((cidr) => `Deployment/${APP}: accepts connections from ${cidr}`),
    );
  });

  it('the rest is the production overlay unchanged: the same routes, remote keys, egress and Prometheus access', () => {
    const base = rendered.production;
    for (const object of base) {
      const same = objects().find((o) => key(o) === key(object));
      expect(same, key(object)).toBeDefined();
      if (!CHANGED.includes(key(object))) expect(same, key(object)).toEqual(object);
    }
    expect(
      objects()
        .filter((o) => !base.some((b) => key(b) === key(o)))
        .map(key)
        .sort(),
    ).toEqual([...ADDED].sort());
    for (const o of objects()) expect(o.metadata.namespace, key(o)).toBe(NAMESPACE);

    expect(one(objects(), 'Ingress', APP).spec?.rules).toEqual(one(base, 'Ingress', APP).spec?.rules);
    const secret = structuredClone(one(objects(), 'ExternalSecret', `${APP}-secrets`));
    secret.spec!.secretStoreRef = one(base, 'ExternalSecret', `${APP}-secrets`).spec!.secretStoreRef;
    expect(secret).toEqual(one(base, 'ExternalSecret', `${APP}-secrets`));
    const policy = one(objects(), 'NetworkPolicy', APP).spec!;
    const basePolicy = one(base, 'NetworkPolicy', APP).spec!;
    expect({ ...policy, ingress: undefined }).toEqual({ ...basePolicy, ingress: undefined });
    type Rule = NonNullable<typeof policy.ingress>[number];
    const nginx = (rule: Rule) =>
      (rule.from ?? []).some(
        (p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx',
      );
    const alb = (rule: Rule) => (rule.from ?? []).some((p) => p.ipBlock);
    expect(policy.ingress!.filter((r) => !alb(r))).toEqual(basePolicy.ingress!.filter((r) => !nginx(r)));
  });

  it('the placeholders name the Terraform output and the region they come from', () => {
    const kustomization = readRepoFile('deploy/kubernetes/aws/production/kustomization.yaml');
    expect(kustomization).toContain(
      'terraform -chdir=deploy/terraform/environments/production output -raw external_secrets_role_arn',
    );
    expect(production.root.output.external_secrets_role_arn).toBeDefined();
    expect(kustomization).toContain(`--region ${terraform.region}`);
    const docs = readRepoFile('docs/aws.md');
    for (const text of [
      'external_secrets_role_arn',
      'deploy/kubernetes/aws/production',
      'HTTP_KEEP_ALIVE_TIMEOUT_SECONDS',
    ])
      expect(docs, text).toContain(text);
  });

  describe('the checks catch the faults they guard against', () => {
    const broken = (mutate: (objects: K8sObject[]) => void) => {
      const copy = structuredClone(rendered['production-aws']);
      mutate(copy);
      return copy;
    };
    const annotations = (o: K8sObject[]) => one(o, 'Ingress', APP).metadata.annotations!;
    const store = (o: K8sObject[]) => secretStores(o).find((s) => s.metadata.name === STORE)!;
    const apiRules = (o: K8sObject[]) => one(o, 'NetworkPolicy', APP).spec!.ingress!;

    it('when the ALB is internal, targets nodes and listens on HTTP only, then it is reported', () => {
      const objects = broken((o) => {
        annotations(o)[`${ALB}scheme`] = 'internal';
        annotations(o)[`${ALB}target-type`] = 'instance';
        annotations(o)[`${ALB}listen-ports`] = '[{"HTTP": 80}]';
        delete annotations(o)[`${ALB}ssl-redirect`];
      });
      expect(aws.ingress(objects, terraform)).toEqual([
        `${ALB}scheme is internal, not internet-facing`,
        `${ALB}target-type is instance, not ip`,
        `${ALB}ssl-redirect is undefined, not 443`,
        'listens on [{"HTTP":80}], not HTTP 80 (to redirect) and HTTPS 443',
      ]);
    });

    it('when the certificate is missing or of another region, or TLS 1.0 is allowed, then it is reported', () => {
      const missing = broken((o) => delete annotations(o)[`${ALB}certificate-arn`]);
      expect(aws.ingress(missing, terraform)).toEqual(['no ACM certificate ARN (undefined)']);
      const elsewhere = broken((o) => {
        annotations(o)[`${ALB}certificate-arn`] =
          'arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000';
        annotations(o)[`${ALB}ssl-policy`] = 'ELBSecurityPolicy-2016-08';
      });
      expect(aws.ingress(elsewhere, terraform)).toEqual([
        'the certificate is in us-east-1, the ALB in eu-west-1: an ALB uses certificates of its region',
        'TLS policy ELBSecurityPolicy-2016-08 is not one of the TLS 1.3 policies',
      ]);
    });

    it('when the health check asks the liveness path or nginx and cert-manager settings are left, then it is reported', () => {
      const objects = broken((o) => {
        annotations(o)[`${ALB}healthcheck-path`] = '/health/live';
        annotations(o)['nginx.ingress.kubernetes.io/limit-rps'] = '20';
        one(o, 'Ingress', APP).spec!.tls = [{ hosts: ['reliability-api.example.com'], secretName: 'tls' }];
      });
      expect(aws.ingress(objects, terraform)).toEqual([
        'the health check asks /health/live, not the readiness path /health/ready',
        'nginx.ingress.kubernetes.io/limit-rps is left, which nothing reads behind an ALB',
        'spec.tls names a TLS Secret that nothing issues',
      ]);
    });

    it('when the idle timeout reaches the keep-alive timeout, from either side, then it is reported', () => {
      const longer = broken(
        (o) => (annotations(o)[`${ALB}load-balancer-attributes`] = 'idle_timeout.timeout_seconds=120'),
      );
      expect(aws.idleTimeout(longer)).toEqual([
        'the ALB idle timeout 120 s is not below HTTP_KEEP_ALIVE_TIMEOUT_SECONDS 65 s',
      ]);
      const shorter = broken(
        (o) => (one(o, 'ConfigMap', `${APP}-config`).data!.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS = '30'),
      );
      expect(aws.idleTimeout(shorter)).toEqual([
        'the ALB idle timeout 60 s is not below HTTP_KEEP_ALIVE_TIMEOUT_SECONDS 30 s',
      ]);
      // Without the attribute the ALB's default of 60 s applies, which is below 65 s.
      const unset = broken((o) => delete annotations(o)[`${ALB}load-balancer-attributes`]);
      expect(aws.idleTimeout(unset)).toEqual([]);
    });

    it('when the role annotation is missing or names another role, or the token is mounted, then it is reported', () => {
      const missing = broken((o) => {
        const account = one(o, 'ServiceAccount', ESO_ACCOUNT);
        delete account.metadata.annotations;
        account.automountServiceAccountToken = true;
      });
      expect(aws.secretsAccess(missing, terraform)).toEqual([
        `ServiceAccount/${ESO_ACCOUNT}: ${ROLE_ANNOTATION} undefined is not Terraform's role ${terraform.roleName}`,
        `ServiceAccount/${ESO_ACCOUNT} mounts its token (the operator asks for one; no pod needs it)`,
      ]);
      const staging = broken(
        (o) =>
          (one(o, 'ServiceAccount', ESO_ACCOUNT).metadata.annotations![ROLE_ANNOTATION] =
            'arn:aws:iam::111122223333:role/reliability-api-staging-external-secrets'),
      );
      expect(aws.secretsAccess(staging, terraform)).toEqual([
        expect.stringMatching(/reliability-api-staging-external-secrets is not Terraform's role/),
      ]);
    });

    it('when the SecretStore uses stored keys, another account or region, or loses its label, then it is reported', () => {
      const objects = broken((o) => {
        const provider = store(o).spec!.provider.aws!;
        provider.region = 'us-east-1';
        provider.auth = {
          jwt: { serviceAccountRef: { name: APP } },
          secretRef: { accessKeyIDSecretRef: { name: 'aws', key: 'id' } },
        };
        delete store(o).metadata.labels!['app.kubernetes.io/component'];
      });
      expect(aws.secretsAccess(objects, terraform)).toEqual([
        `SecretStore/${STORE}: region us-east-1, Terraform's eu-west-1`,
        `SecretStore/${STORE} authenticates as /${APP}, not ${ESO_ACCOUNT}`,
        `SecretStore/${STORE} uses credentials or a role other than its ServiceAccount's`,
        `SecretStore/${STORE} is not labelled app.kubernetes.io/component=config`,
      ]);
    });

    it('when the ExternalSecret still reads the platform store, or the SecretStore is missing, then it is reported', () => {
      const platform = broken(
        (o) =>
          (one(o, 'ExternalSecret', `${APP}-secrets`).spec!.secretStoreRef = {
            kind: 'ClusterSecretStore',
            name: 'platform-secrets',
          }),
      );
      expect(aws.secretsAccess(platform, terraform)).toEqual([
        `ExternalSecret/${NAMESPACE}/${APP}-secrets reads ClusterSecretStore/platform-secrets, not SecretStore/${STORE}`,
      ]);
      const missing = broken((o) => o.splice(o.indexOf(store(o) as unknown as K8sObject), 1));
      expect(aws.secretsAccess(missing, terraform)).toEqual([`no SecretStore/${STORE}`]);
    });

    it('when the NetworkPolicy admits the whole VPC, another port, or still ingress-nginx, then it is reported', () => {
      const vpc = broken((o) => {
        const rule = apiRules(o).find((r) => r.from?.some((p) => p.ipBlock))!;
        rule.from = [{ ipBlock: { cidr: '10.30.0.0/16' } }];
        rule.ports = [{ protocol: 'TCP', port: 9000 }];
      });
      expect(aws.networkPolicy(vpc, terraform)).toEqual([
        `Deployment/${APP}: admits 10.30.0.0/16, not the public subnets 10.30.0.0/24, 10.30.1.0/24, 10.30.2.0/24`,
        `Deployment/${APP}: admits 10.30.0.0/16 on 9000/TCP, not 8000/TCP`,
      ]);
      const nginx = broken((o) =>
        apiRules(o).unshift(one(rendered.production, 'NetworkPolicy', APP).spec!.ingress![0]!),
      );
      expect(aws.networkPolicy(nginx, terraform)).toEqual([
        `Deployment/${APP}: still admits ingress-nginx, which the ALB replaces`,
      ]);
      const closed = broken((o) =>
        apiRules(o).splice(
          apiRules(o).findIndex((r) => r.from?.some((p) => p.ipBlock)),
          1,
        ),
      );
      expect(aws.networkPolicy(closed, terraform)).toEqual([
        `Deployment/${APP}: admits no address, not the public subnets 10.30.0.0/24, 10.30.1.0/24, 10.30.2.0/24`,
      ]);
    });
  });
});
