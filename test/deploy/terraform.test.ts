// The Terraform of deploy/terraform, read with HashiCorp's HCL parser (test/helpers/terraform.ts): for
// each environment, the database, cache, registry, cluster and network properties it actually gets, through
// its module calls and terraform.tfvars; the IAM role of the External Secrets Operator (IRSA: whom it
// trusts, what it may read); the S3 backends and their DynamoDB lock table; and the wiring a
// `terraform validate` would catch without providers (every module argument declared, every required one
// passed, every variable given a value). `terraform validate` itself needs the providers, which cannot be
// downloaded here; `terraform fmt -check -recursive` runs where terraform is installed (test/helpers/tools.ts).
// The last tests break copies and check that the same checks report them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';
import { readYaml, REPO_ROOT } from '../helpers/kustomize.js';
import {
  backendOf,
  ENVIRONMENTS,
  expand,
  loadEnvironment,
  moduleInput,
  NotEvaluable,
  parseDirectory,
  resourceAttribute,
  rootVariable,
  TERRAFORM_DIR,
  variablesReferenced,
  type Body,
  type Config,
  type Environment,
  type EnvironmentName,
} from '../helpers/terraform.js';
import { optionalTool, TERRAFORM } from '../helpers/tools.js';

const MODULES = ['network', 'cluster', 'database', 'cache', 'registry', 'secrets-access'];
/** The module calls of the root: each module once, named after its directory. */
const CALLS = MODULES.map((module) => module.replaceAll('-', '_'));
let envs: Record<EnvironmentName, Environment>;
let bootstrap: Config;

beforeAll(async () => {
  envs = {
    staging: await loadEnvironment('staging'),
    production: await loadEnvironment('production'),
  };
  bootstrap = (await parseDirectory(path.join(TERRAFORM_DIR, 'bootstrap'))).config;
});

const copy = (env: Environment): Environment => structuredClone(env);

/** Runs a check, turning "cannot evaluate" into a finding instead of an exception. */
function evaluate<T>(problems: string[], read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (error instanceof NotEvaluable) {
      problems.push(error.message);
      return undefined;
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// The checks.

function databaseProblems(env: Environment): string[] {
  const problems: string[] = [];
  const attr = (name: string) =>
    evaluate(problems, () => resourceAttribute(env, 'database', 'aws_db_instance', 'this', name));
  const production = env.name === 'production';
  if (attr('engine') !== 'postgres') problems.push(`${env.name}: the database is not PostgreSQL`);
  if (attr('storage_encrypted') !== true)
    problems.push(`${env.name}: database storage_encrypted is not true`);
  if (attr('publicly_accessible') !== false)
    problems.push(`${env.name}: database publicly_accessible is not false`);
  if (attr('skip_final_snapshot') !== false)
    problems.push(`${env.name}: the database is deleted without a final snapshot`);
  if (attr('manage_master_user_password') !== true)
    problems.push(`${env.name}: the master password is not managed by RDS`);
  const retention = attr('backup_retention_period');
  if (typeof retention !== 'number' || retention < 7) {
    problems.push(`${env.name}: database backup_retention_period ${String(retention)} < 7`);
  }
  if (production && attr('multi_az') !== true) problems.push('production: database multi_az is not true');
  if (production && attr('deletion_protection') !== true) {
    problems.push('production: database deletion_protection is not true');
  }
  return problems;
}

function cacheProblems(env: Environment): string[] {
  const problems: string[] = [];
  const attr = (name: string) =>
    evaluate(problems, () =>
      resourceAttribute(env, 'cache', 'aws_elasticache_replication_group', 'this', name),
    );
  const production = env.name === 'production';
  if (attr('engine') !== 'redis') problems.push(`${env.name}: the cache is not Redis`);
  if (attr('transit_encryption_enabled') !== true)
    problems.push(`${env.name}: cache transit_encryption_enabled is not true`);
  if (attr('at_rest_encryption_enabled') !== true)
    problems.push(`${env.name}: cache at_rest_encryption_enabled is not true`);
  const token = env.modules.cache?.resource.aws_elasticache_replication_group?.this?.[0]?.auth_token;
  if (typeof token !== 'string' || !/^\$\{random_password\.\w+\.result\}$/.test(token)) {
    problems.push(`${env.name}: the cache has no generated auth token`);
  }
  if (production) {
    if (attr('automatic_failover_enabled') !== true)
      problems.push('production: cache automatic_failover_enabled is not true');
    if (attr('multi_az_enabled') !== true) problems.push('production: cache multi_az_enabled is not true');
    const nodes = attr('num_cache_clusters');
    if (typeof nodes !== 'number' || nodes < 2)
      problems.push(`production: cache num_cache_clusters ${String(nodes)} < 2`);
  }
  return problems;
}

function registryProblems(env: Environment): string[] {
  const problems: string[] = [];
  const attr = (name: string) =>
    evaluate(problems, () => resourceAttribute(env, 'registry', 'aws_ecr_repository', 'this', name));
  if (attr('image_tag_mutability') !== 'IMMUTABLE') problems.push(`${env.name}: ECR tags are mutable`);
  if (attr('image_scanning_configuration.scan_on_push') !== true)
    problems.push(`${env.name}: ECR does not scan on push`);
  return problems;
}

function clusterProblems(env: Environment): string[] {
  const problems: string[] = [];
  const attr = (name: string) =>
    evaluate(problems, () => resourceAttribute(env, 'cluster', 'aws_eks_cluster', 'this', name));
  if (attr('vpc_config.endpoint_private_access') !== true)
    problems.push(`${env.name}: no private API endpoint`);
  const cidrs = attr('vpc_config.public_access_cidrs');
  if (
    attr('vpc_config.endpoint_public_access') === true &&
    (!Array.isArray(cidrs) || cidrs.includes('0.0.0.0/0'))
  ) {
    problems.push(`${env.name}: the public API endpoint is open to the internet`);
  }
  if (!JSON.stringify(attr('encryption_config.resources')).includes('secrets')) {
    problems.push(`${env.name}: Kubernetes Secrets are not encrypted with KMS`);
  }
  const version = String(attr('version'));
  const minor = /^1\.(\d+)$/.exec(version)?.[1];
  if (minor === undefined || Number(minor) < 30) problems.push(`${env.name}: Kubernetes ${version} < 1.30`);
  return problems;
}

function networkProblems(env: Environment): string[] {
  const problems: string[] = [];
  const zones = evaluate(problems, () => moduleInput(env, 'network', 'availability_zones'));
  const count = Array.isArray(zones) ? zones.length : 0;
  if (count < 2) problems.push(`${env.name}: fewer than two availability zones`);
  if (env.name === 'production') {
    if (count < 3) problems.push('production: fewer than three availability zones');
    if (evaluate(problems, () => moduleInput(env, 'network', 'single_nat_gateway')) !== false) {
      problems.push('production: one NAT gateway for every zone');
    }
  }
  return problems;
}

function backendProblems(env: Environment): string[] {
  const problems: string[] = [];
  const backend = backendOf(env.root);
  if (backend?.type !== 's3') return [`${env.name}: the state is not in an S3 backend`];
  const { bucket, key, region, dynamodb_table: table, encrypt } = backend.settings;
  if (typeof bucket !== 'string' || !bucket.includes(env.name))
    problems.push(`${env.name}: state bucket ${String(bucket)}`);
  if (typeof key !== 'string' || !key.includes(`/${env.name}/`))
    problems.push(`${env.name}: state key ${String(key)}`);
  if (typeof table !== 'string' || table === '') problems.push(`${env.name}: no DynamoDB lock table`);
  if (encrypt !== true) problems.push(`${env.name}: the state is not encrypted`);
  if (region !== env.tfvars.region)
    problems.push(
      `${env.name}: the state is in ${String(region)}, the environment in ${String(env.tfvars.region)}`,
    );
  return problems;
}

/** What `terraform validate` would say about the wiring, without providers. */
function wiringProblems(env: Environment): string[] {
  const problems: string[] = [];
  const declared = new Set(Object.keys(env.root.variable));
  for (const name of Object.keys(env.tfvars)) {
    if (!declared.has(name)) problems.push(`${env.name}: terraform.tfvars sets undeclared ${name}`);
  }
  for (const [name, [declaration]] of Object.entries(env.root.variable)) {
    if (!('default' in declaration!) && !(name in env.tfvars))
      problems.push(`${env.name}: variable ${name} has no value`);
  }
  const rootBodies = [
    env.root.module,
    env.root.resource,
    env.root.output,
    env.root.locals,
    env.root.provider,
    env.root.variable,
  ];
  for (const name of variablesReferenced(rootBodies)) {
    if (!declared.has(name)) problems.push(`${env.name}: var.${name} is not declared`);
  }
  for (const [call, [body]] of Object.entries(env.root.module)) {
    const module = env.modules[call]!;
    const inputs = new Set(Object.keys(module.variable));
    for (const argument of Object.keys(body!)) {
      if (argument !== 'source' && !inputs.has(argument))
        problems.push(`${env.name}: module.${call} has no variable ${argument}`);
    }
    for (const [input, [declaration]] of Object.entries(module.variable)) {
      if (!('default' in declaration!) && !(input in body!))
        problems.push(`${env.name}: module.${call} needs ${input}`);
    }
    const moduleBodies = [module.resource, module.data, module.output, module.locals, module.variable];
    for (const name of variablesReferenced(moduleBodies)) {
      if (!inputs.has(name)) problems.push(`${env.name}: module ${call} uses undeclared var.${name}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// The role of the External Secrets Operator (modules/secrets-access) and the cluster's OIDC provider.

const SECRETS = 'secrets_access';
/** The ServiceAccount of the AWS variant's SecretStore, and the namespace of each environment's overlay. */
const ESO_SERVICE_ACCOUNT = (
  readYaml('deploy/kubernetes/aws/component/serviceaccount.yaml') as { metadata: { name: string } }
).metadata.name;
const overlayNamespace = (env: EnvironmentName) =>
  (readYaml(`deploy/kubernetes/overlays/${env}/kustomization.yaml`) as { namespace: string }).namespace;
const remoteKeys = (env: EnvironmentName) =>
  (
    readYaml(`deploy/kubernetes/overlays/${env}/externalsecret.yaml`) as {
      spec: { data: { remoteRef: { key: string } }[] };
    }
  ).spec.data.map((d) => d.remoteRef.key);
const READ_ACTIONS = ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'];
/** The only resource the role may read: this environment's prefix, in the provider's own partition, region and account. */
const secretsArn = (env: EnvironmentName) =>
  'arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.name}:' +
  `\${data.aws_caller_identity.current.account_id}:secret:reliability-api/${env}/*`;
/** The cluster's OIDC provider, as the root passes it to the module: its ARN and its condition key prefix. */
const OIDC_PROVIDER_ARN = '${module.cluster.oidc_provider_arn}';
const conditionKey = (claim: string) => `\${module.cluster.oidc_provider_url}:${claim}`;
/** The first AWS provider release that accepts aws_iam_openid_connect_provider without thumbprint_list. */
const THUMBPRINT_OPTIONAL = [5, 81] as const;

interface Statement {
  sid?: string;
  effect?: string;
  actions?: string[];
  not_actions?: string[];
  resources?: string[];
  not_resources?: string[];
  principals?: { type: string; identifiers: string[] }[];
  not_principals?: unknown[];
  condition?: { test: string; variable: string; values: string[] }[];
}

/** IAM's wildcard matching: `*` is any run of characters, `?` one character, the rest literal. */
function globMatches(pattern: string, value: string): boolean {
  const literal = (c: string) => c.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : literal(c))).join('');
  return new RegExp(`^${source}$`).test(value);
}

/** The statements of the aws_iam_policy_document a `policy` argument renders, expanded; undefined when it is none. */
function statementsOf(
  env: Environment,
  reference: unknown,
  what: string,
  problems: string[],
): Statement[] | undefined {
  const name =
    typeof reference === 'string'
      ? /^\$\{data\.aws_iam_policy_document\.([\w-]+)\.json\}$/.exec(reference)?.[1]
      : undefined;
  const document =
    name === undefined ? undefined : env.modules[SECRETS]?.data.aws_iam_policy_document?.[name]?.[0];
  if (document === undefined) {
    problems.push(`${env.name}: the ${what} is not an aws_iam_policy_document of the module`);
    return undefined;
  }
  for (const merged of [
    'source_policy_documents',
    'override_policy_documents',
    'source_json',
    'override_json',
  ]) {
    if (merged in document) problems.push(`${env.name}: the ${what} merges ${merged}`);
  }
  return evaluate(problems, () => expand(env, SECRETS, document.statement ?? []) as Statement[]);
}

const allowing = (statements: Statement[]) => statements.filter((s) => (s.effect ?? 'Allow') === 'Allow');

/** The cluster's IAM OIDC provider: for its own issuer, for STS, output for the role's trust policy. */
function oidcProviderProblems(env: Environment): string[] {
  const problems: string[] = [];
  const cluster = env.modules.cluster!;
  const provider = cluster.resource.aws_iam_openid_connect_provider?.this?.[0];
  if (provider === undefined) return [`${env.name}: the cluster has no IAM OIDC provider`];
  if (provider.url !== '${aws_eks_cluster.this.identity[0].oidc[0].issuer}')
    problems.push(`${env.name}: the OIDC provider is for ${String(provider.url)}, not the cluster's issuer`);
  if (JSON.stringify(provider.client_id_list) !== JSON.stringify(['sts.amazonaws.com']))
    problems.push(
      `${env.name}: the OIDC provider's audiences are ${JSON.stringify(provider.client_id_list)}`,
    );
  const output = (name: string) => cluster.output[name]?.[0]?.value;
  if (output('oidc_provider_arn') !== '${aws_iam_openid_connect_provider.this.arn}')
    problems.push(`${env.name}: the cluster's oidc_provider_arn is not its OIDC provider's ARN`);
  if (output('oidc_provider_url') !== '${trimprefix(aws_iam_openid_connect_provider.this.url, "https://")}')
    problems.push(
      `${env.name}: the cluster's oidc_provider_url is not its OIDC provider's URL without https://`,
    );
  if (!('thumbprint_list' in provider)) {
    for (const [where, config] of [
      ['modules/cluster', cluster],
      ['the root', env.root],
    ] as const) {
      const providers = config.terraform.flatMap((t) => (t.required_providers as Body[] | undefined) ?? []);
      const version = (providers[0]?.aws as Body | undefined)?.version;
      const constraint = typeof version === 'string' ? version : '';
      const floor = /(?:>=|~>)\s*(\d+)\.(\d+)/.exec(constraint)?.slice(1).map(Number) ?? [0, 0];
      const [major, minor] = floor as [number, number];
      if (
        major < THUMBPRINT_OPTIONAL[0] ||
        (major === THUMBPRINT_OPTIONAL[0] && minor < THUMBPRINT_OPTIONAL[1])
      ) {
        problems.push(
          `${env.name}: ${where} allows AWS provider ${constraint}, which requires thumbprint_list before ${THUMBPRINT_OPTIONAL.join('.')}`,
        );
      }
    }
  }
  return problems;
}

/** Whom the role trusts: the cluster's OIDC provider, for one ServiceAccount of one namespace, for STS. */
function trustProblems(env: Environment): string[] {
  const problems: string[] = [];
  const role = env.modules[SECRETS]?.resource.aws_iam_role?.this?.[0];
  if (role === undefined) return [`${env.name}: no role for the External Secrets Operator`];
  const statements = statementsOf(env, role.assume_role_policy, 'trust policy', problems) ?? [];
  const subject = `system:serviceaccount:${overlayNamespace(env.name)}:${ESO_SERVICE_ACCOUNT}`;
  const allows = allowing(statements);
  if (allows.length === 0) problems.push(`${env.name}: the trust policy admits nobody`);
  for (const statement of allows) {
    if (JSON.stringify(statement.actions) !== JSON.stringify(['sts:AssumeRoleWithWebIdentity']))
      problems.push(
        `${env.name}: the trust policy allows ${statement.actions?.join(', ') ?? 'every action but some'}`,
      );
    if (statement.not_principals !== undefined)
      problems.push(`${env.name}: the trust policy admits everyone but some`);
    const principals = (statement.principals ?? []).flatMap((p) =>
      p.identifiers.map((id) => (p.type === 'Federated' ? id : `${p.type} ${id}`)),
    );
    if (JSON.stringify(principals) !== JSON.stringify([OIDC_PROVIDER_ARN]))
      problems.push(
        `${env.name}: the role trusts ${principals.join(', ') || 'nobody'}, not the cluster's OIDC provider`,
      );
    const conditions = statement.condition ?? [];
    const requires = (claim: string, value: string) =>
      conditions.some(
        (c) =>
          c.test === 'StringEquals' &&
          c.variable === conditionKey(claim) &&
          JSON.stringify(c.values) === JSON.stringify([value]),
      );
    if (!requires('sub', subject)) problems.push(`${env.name}: the trust policy is not scoped to ${subject}`);
    if (!requires('aud', 'sts.amazonaws.com'))
      problems.push(`${env.name}: the trust policy does not require the audience sts.amazonaws.com`);
    for (const c of conditions) {
      if (c.values.some((v) => /[*?]/.test(v)))
        problems.push(`${env.name}: the trust policy matches ${c.variable} against ${c.values.join(', ')}`);
    }
  }
  return problems;
}

/** What the role may do: read (GetSecretValue, DescribeSecret) this environment's secrets, nothing else. */
function permissionProblems(env: Environment): string[] {
  const problems: string[] = [];
  const module = env.modules[SECRETS];
  const role = module?.resource.aws_iam_role?.this?.[0];
  if (module === undefined || role === undefined)
    return [`${env.name}: no role for the External Secrets Operator`];
  for (const [name, [attachment]] of Object.entries(module.resource.aws_iam_role_policy_attachment ?? {}))
    problems.push(
      `${env.name}: aws_iam_role_policy_attachment.${name} attaches ${String(attachment!.policy_arn)}`,
    );
  for (const own of ['managed_policy_arns', 'inline_policy']) {
    if (own in role) problems.push(`${env.name}: the role sets ${own}`);
  }
  const policies = Object.entries(module.resource.aws_iam_role_policy ?? {}).filter(([, [policy]]) =>
    ['${aws_iam_role.this.id}', '${aws_iam_role.this.name}'].includes(String(policy!.role)),
  );
  if (policies.length === 0) problems.push(`${env.name}: the role has no policy`);
  const statements = allowing(
    policies.flatMap(
      ([name, [policy]]) => statementsOf(env, policy!.policy, `policy ${name}`, problems) ?? [],
    ),
  );
  const expected = secretsArn(env.name);
  const actions = statements.flatMap((s) => s.actions ?? []);
  const resources = statements.flatMap((s) => s.resources ?? []);
  for (const statement of statements) {
    if (statement.not_actions !== undefined)
      problems.push(`${env.name}: the role may do every action but some`);
    if (statement.not_resources !== undefined || (statement.resources ?? []).length === 0)
      problems.push(`${env.name}: a statement of the role names no resource`);
  }
  for (const action of actions)
    if (!READ_ACTIONS.includes(action)) problems.push(`${env.name}: the role may ${action}`);
  for (const action of READ_ACTIONS)
    if (!actions.some((granted) => globMatches(granted, action)))
      problems.push(`${env.name}: the role may not ${action}`);
  for (const resource of resources)
    if (resource !== expected)
      problems.push(`${env.name}: the role's policy applies to ${resource}, not ${expected}`);
  // Secrets Manager appends a random suffix of six characters to every secret's ARN.
  const arnOf = (key: string) => expected.replace(/reliability-api\/[\w-]+\/\*$/, `${key}-AbC123`);
  for (const key of remoteKeys(env.name)) {
    if (!resources.some((resource) => globMatches(resource, arnOf(key))))
      problems.push(`${env.name}: the role cannot read ${key}, which the overlay's ExternalSecret reads`);
  }
  for (const type of ['aws_partition', 'aws_region', 'aws_caller_identity']) {
    if (module.data[type]?.current === undefined)
      problems.push(`${env.name}: the module has no data.${type}.current`);
  }
  // Secrets under the AWS managed key need no kms:Decrypt; a customer key would (and a grant on it).
  const cacheSecret = env.modules.cache?.resource.aws_secretsmanager_secret?.url?.[0];
  if (cacheSecret !== undefined && 'kms_key_id' in cacheSecret)
    problems.push(`${env.name}: the Redis URL secrets use a customer KMS key, which the role cannot decrypt`);
  if (module.output.role_arn?.[0]?.value !== '${aws_iam_role.this.arn}')
    problems.push(`${env.name}: the module's role_arn is not the role's ARN`);
  if (env.root.output.external_secrets_role_arn?.[0]?.value !== '${module.secrets_access.role_arn}')
    problems.push(`${env.name}: no output external_secrets_role_arn of the role`);
  return problems;
}

// ---------------------------------------------------------------------------------------------------

describe('the Terraform layout', () => {
  it('when the tree is listed, then the six modules, two environments and the bootstrap exist', () => {
    expect(readdirSync(path.join(TERRAFORM_DIR, 'modules')).sort()).toEqual([...MODULES].sort());
    for (const module of MODULES) {
      for (const file of ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf']) {
        expect(existsSync(path.join(TERRAFORM_DIR, 'modules', module, file)), `${module}/${file}`).toBe(true);
      }
    }
    expect(readdirSync(path.join(TERRAFORM_DIR, 'environments')).sort()).toEqual(['production', 'staging']);
    expect(Object.keys(bootstrap.resource).sort()).toContain('aws_dynamodb_table');
  });

  it('when the environments are compared, then they share their code and differ only by backend and tfvars', () => {
    const files = (env: EnvironmentName) => readdirSync(path.join(TERRAFORM_DIR, 'environments', env)).sort();
    expect(files('staging')).toEqual([
      'backend.tf',
      'main.tf',
      'outputs.tf',
      'terraform.tfvars',
      'variables.tf',
      'versions.tf',
    ]);
    expect(files('production')).toEqual(files('staging'));
    for (const file of ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf']) {
      expect(envs.production.files[file], file).toBe(envs.staging.files[file]);
    }
    for (const env of ENVIRONMENTS) expect(envs[env].tfvars.environment).toBe(env);
  });

  it.each(ENVIRONMENTS)(
    'when %s is wired, then every module argument and variable is declared and given a value',
    (env) => {
      expect(Object.keys(envs[env].root.module).sort()).toEqual([...CALLS].sort());
      expect(wiringProblems(envs[env])).toEqual([]);
    },
  );

  it('when the files are parsed, then every .tf file of the tree is valid HCL', async () => {
    const all = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory()
          ? all(path.join(dir, e.name))
          : /\.(tf|tfvars)$/.test(e.name)
            ? [path.join(dir, e.name)]
            : [],
      );
    const files = all(TERRAFORM_DIR);
    expect(files.length).toBeGreaterThan(25);
    for (const file of files)
      await expect(parse(path.basename(file), readFileSync(file, 'utf8')), file).resolves.toBeDefined();
    await expect(parse('broken.tf', 'resource "aws_s3_bucket" "x" {\n  bucket =\n}\n')).rejects.toThrow(
      /Invalid expression/,
    );
  });

  it('when terraform is installed, then `terraform fmt -check -recursive` finds nothing to change', (context) => {
    if (!optionalTool(TERRAFORM)) return context.skip();
    const result = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff'], {
      cwd: TERRAFORM_DIR,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});

describe.each(ENVIRONMENTS)('the %s environment', (name) => {
  it('when the database is created, then it is encrypted, private and backed up for at least 7 days (Multi-AZ and deletion-protected in production)', () => {
    expect(databaseProblems(envs[name])).toEqual([]);
  });

  it('when the cache is created, then it uses TLS and an auth token (with failover across zones in production)', () => {
    expect(cacheProblems(envs[name])).toEqual([]);
  });

  it('when the registry is created, then its tags are immutable and every push is scanned', () => {
    expect(registryProblems(envs[name])).toEqual([]);
  });

  it('when the cluster and network are created, then the API endpoint is private-first and nodes span zones', () => {
    expect([...clusterProblems(envs[name]), ...networkProblems(envs[name])]).toEqual([]);
  });

  it('when state is stored, then it is in its own encrypted S3 key with a DynamoDB lock, made by the bootstrap', () => {
    const env = envs[name];
    expect(backendProblems(env)).toEqual([]);
    const { bucket, dynamodb_table: table } = backendOf(env.root)!.settings;
    const locals = bootstrap.locals[0]!;
    expect(String(locals.bucket).replace('${var.environment}', name)).toBe(bucket);
    expect(locals.table).toBe(table);
  });

  it('when the cluster is created, then its OIDC issuer is an IAM identity provider for STS, output for IRSA', () => {
    expect(oidcProviderProblems(envs[name])).toEqual([]);
  });

  it('when the External Secrets role is created, then only its ServiceAccount’s STS token, issued by this cluster, may assume it', () => {
    expect(trustProblems(envs[name])).toEqual([]);
  });

  it('when the External Secrets role is created, then it may only read this environment’s secrets, every one the overlay reads', () => {
    expect(permissionProblems(envs[name])).toEqual([]);
  });

  it('when Redis URLs are stored, then they go to the secret names the ExternalSecret of the overlay reads', () => {
    const overlay = readFileSync(
      path.join(REPO_ROOT, `deploy/kubernetes/overlays/${name}/externalsecret.yaml`),
      'utf8',
    );
    const secrets = String(envs[name].root.locals[0]!.redis_url_secrets);
    expect(secrets).toContain('"reliability-api/${var.environment}/${key}"');
    for (const key of ['redis-url', 'rate-limit-storage-uri', 'circuit-breaker-cache-url']) {
      expect(secrets).toContain(`"${key}"`);
      expect(overlay).toContain(`key: reliability-api/${name}/${key}`);
    }
  });
});

describe('production against staging', () => {
  it('when the environments are compared, then production is at least as large and strictly safer', () => {
    const value = (env: EnvironmentName, variable: string) => rootVariable(envs[env], variable);
    expect(value('production', 'database_backup_retention_period')).toBeGreaterThanOrEqual(
      value('staging', 'database_backup_retention_period') as number,
    );
    expect(value('production', 'node_min_size')).toBeGreaterThanOrEqual(
      value('staging', 'node_min_size') as number,
    );
    expect(value('production', 'cache_num_cache_clusters')).toBeGreaterThan(
      value('staging', 'cache_num_cache_clusters') as number,
    );
    const keys = ENVIRONMENTS.map((env) => backendOf(envs[env].root)!.settings.key);
    expect(new Set(keys).size).toBe(2);
    expect(value('production', 'vpc_cidr')).not.toBe(value('staging', 'vpc_cidr'));
  });

  it('when production is given unsafe values, then a variable validation in the code refuses them', () => {
    // The guard lives in variables.tf, so a plan fails even if a tfvars file is wrong.
    for (const variable of [
      'database_multi_az',
      'database_deletion_protection',
      'cache_automatic_failover',
      'cache_multi_az',
    ]) {
      const validation = JSON.stringify(envs.production.root.variable[variable]![0]!.validation);
      expect(validation, variable).toContain(`var.environment != \\"production\\" || var.${variable}`);
    }
    const retention = JSON.stringify(
      envs.production.modules.database!.variable.backup_retention_period![0]!.validation,
    );
    expect(retention).toContain('var.backup_retention_period >= 7');
  });
});

describe('when the Terraform is broken', () => {
  it('then an unencrypted, public, unprotected or briefly backed-up database is reported', () => {
    const env = copy(envs.production);
    env.tfvars.database_multi_az = false;
    env.tfvars.database_deletion_protection = false;
    env.tfvars.database_backup_retention_period = 3;
    const db = env.modules.database!.resource.aws_db_instance!.this![0]!;
    db.storage_encrypted = false;
    db.publicly_accessible = '${var.public}';
    expect(databaseProblems(env)).toEqual([
      'production: database storage_encrypted is not true',
      'production: module database has no variable public',
      'production: database publicly_accessible is not false',
      'production: database backup_retention_period 3 < 7',
      'production: database multi_az is not true',
      'production: database deletion_protection is not true',
    ]);
  });

  it('then a cache without TLS, a token or failover in production is reported', () => {
    const env = copy(envs.production);
    const cache = env.modules.cache!.resource.aws_elasticache_replication_group!.this![0]!;
    cache.transit_encryption_enabled = false;
    delete cache.auth_token;
    env.tfvars.cache_automatic_failover = false;
    env.tfvars.cache_num_cache_clusters = 1;
    expect(cacheProblems(env)).toEqual([
      'production: cache transit_encryption_enabled is not true',
      'production: the cache has no generated auth token',
      'production: cache automatic_failover_enabled is not true',
      'production: cache num_cache_clusters 1 < 2',
    ]);
  });

  it('then a mutable or unscanned registry and an open cluster endpoint are reported', () => {
    const env = copy(envs.staging);
    const repository = env.modules.registry!.resource.aws_ecr_repository!.this![0]!;
    repository.image_tag_mutability = 'MUTABLE';
    (repository.image_scanning_configuration as { scan_on_push: boolean }[])[0]!.scan_on_push = false;
    expect(registryProblems(env)).toEqual([
      'staging: ECR tags are mutable',
      'staging: ECR does not scan on push',
    ]);
    env.tfvars.cluster_public_access_cidrs = ['0.0.0.0/0'];
    env.tfvars.kubernetes_version = '1.29';
    expect(clusterProblems(env)).toEqual([
      'staging: the public API endpoint is open to the internet',
      'staging: Kubernetes 1.29 < 1.30',
    ]);
  });

  it('then a trust policy for any ServiceAccount of the namespace, without the audience, or of another provider is reported', () => {
    const env = copy(envs.production);
    const [statement] = env.modules.secrets_access!.data.aws_iam_policy_document!.assume![0]!
      .statement as Statement[];
    statement!.condition = [
      {
        test: 'StringLike',
        variable: '${var.oidc_provider_url}:sub',
        values: ['system:serviceaccount:reliability-api-production:*'],
      },
    ];
    statement!.principals = [
      {
        type: 'Federated',
        identifiers: ['arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com'],
      },
    ];
    expect(trustProblems(env)).toEqual([
      "production: the role trusts arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com, not the cluster's OIDC provider",
      'production: the trust policy is not scoped to system:serviceaccount:reliability-api-production:reliability-api-external-secrets',
      'production: the trust policy does not require the audience sts.amazonaws.com',
      'production: the trust policy matches ${module.cluster.oidc_provider_url}:sub against system:serviceaccount:reliability-api-production:*',
    ]);

    const staging = copy(envs.staging);
    staging.root.locals[0]!.namespace = 'reliability-api-production';
    expect(trustProblems(staging)).toEqual([
      'staging: the trust policy is not scoped to system:serviceaccount:reliability-api-staging:reliability-api-external-secrets',
    ]);
  });

  it('then a policy on every secret, with every Secrets Manager action, or on another environment’s secrets is reported', () => {
    const env = copy(envs.production);
    const [statement] = env.modules.secrets_access!.data.aws_iam_policy_document!.read![0]!
      .statement as Statement[];
    statement!.actions = ['secretsmanager:*'];
    statement!.resources = ['*'];
    expect(permissionProblems(env)).toEqual([
      'production: the role may secretsmanager:*',
      `production: the role's policy applies to *, not ${secretsArn('production')}`,
    ]);

    const other = copy(envs.production);
    other.root.locals[0]!.secret_prefix = 'reliability-api/staging';
    expect(permissionProblems(other)).toEqual([
      `production: the role's policy applies to ${secretsArn('staging')}, not ${secretsArn('production')}`,
      ...remoteKeys('production').map(
        (key) => `production: the role cannot read ${key}, which the overlay's ExternalSecret reads`,
      ),
    ]);
  });

  it('then a managed policy, a policy not from a document, a customer key or a missing role are reported', () => {
    const env = copy(envs.staging);
    const module = env.modules.secrets_access!;
    module.resource.aws_iam_role_policy_attachment = {
      admin: [
        { role: '${aws_iam_role.this.name}', policy_arn: 'arn:aws:iam::aws:policy/AdministratorAccess' },
      ],
    };
    module.resource.aws_iam_role_policy!.read![0]!.policy = '${jsonencode(local.policy)}';
    env.modules.cache!.resource.aws_secretsmanager_secret!.url![0]!.kms_key_id = '${var.kms_key_id}';
    expect(permissionProblems(env)).toEqual([
      'staging: aws_iam_role_policy_attachment.admin attaches arn:aws:iam::aws:policy/AdministratorAccess',
      'staging: the policy read is not an aws_iam_policy_document of the module',
      'staging: the role may not secretsmanager:GetSecretValue',
      'staging: the role may not secretsmanager:DescribeSecret',
      ...remoteKeys('staging').map(
        (key) => `staging: the role cannot read ${key}, which the overlay's ExternalSecret reads`,
      ),
      'staging: the Redis URL secrets use a customer KMS key, which the role cannot decrypt',
    ]);

    delete env.root.module.secrets_access;
    delete env.modules.secrets_access;
    expect(trustProblems(env)).toEqual(['staging: no role for the External Secrets Operator']);
    expect(permissionProblems(env)).toEqual(['staging: no role for the External Secrets Operator']);
  });

  it('then an OIDC provider of another issuer or audience, or without thumbprints on an older provider, is reported', () => {
    const env = copy(envs.production);
    const provider = env.modules.cluster!.resource.aws_iam_openid_connect_provider!.this![0]!;
    provider.url = 'https://token.actions.githubusercontent.com';
    provider.client_id_list = ['sigstore'];
    const [versions] = env.modules.cluster!.terraform.filter((t) => 'required_providers' in t);
    (versions!.required_providers as { aws: Body }[])[0]!.aws.version = '>= 5.70, < 6.0';
    expect(oidcProviderProblems(env)).toEqual([
      "production: the OIDC provider is for https://token.actions.githubusercontent.com, not the cluster's issuer",
      'production: the OIDC provider\'s audiences are ["sigstore"]',
      'production: modules/cluster allows AWS provider >= 5.70, < 6.0, which requires thumbprint_list before 5.81',
    ]);
    provider.thumbprint_list = ['0000000000000000000000000000000000000000'];
    expect(oidcProviderProblems(env)).toHaveLength(2);
  });

  it('then a local or unlocked backend and broken wiring are reported', () => {
    const env = copy(envs.staging);
    const backend = backendOf(env.root)!.settings;
    delete backend.dynamodb_table;
    backend.encrypt = false;
    backend.key = 'terraform.tfstate';
    expect(backendProblems(env)).toEqual([
      'staging: state key terraform.tfstate',
      'staging: no DynamoDB lock table',
      'staging: the state is not encrypted',
    ]);
    env.root.terraform = [];
    expect(backendProblems(env)).toEqual(['staging: the state is not in an S3 backend']);

    env.tfvars.database_multi_azz = true;
    delete env.tfvars.cache_node_type;
    env.root.module.database![0]!.storage_type = 'gp2';
    delete env.root.module.cache![0]!.vpc_id;
    env.root.module.registry![0]!.name = '${var.registry_name}';
    expect(wiringProblems(env).sort()).toEqual([
      'staging: module.cache needs vpc_id',
      'staging: module.database has no variable storage_type',
      'staging: terraform.tfvars sets undeclared database_multi_azz',
      'staging: var.registry_name is not declared',
      'staging: variable cache_node_type has no value',
    ]);
  });
});
