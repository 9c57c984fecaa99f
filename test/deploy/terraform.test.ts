// The Terraform of deploy/terraform, read with HashiCorp's HCL parser (test/helpers/terraform.ts): for
// each environment, the database, cache, registry, cluster and network properties it actually gets, through
// its module calls and terraform.tfvars; the S3 backends and their DynamoDB lock table; and the wiring a
// `terraform validate` would catch without providers (every module argument declared, every required one
// passed, every variable given a value). `terraform validate` itself needs the providers, which cannot be
// downloaded here; `terraform fmt -check -recursive` runs where terraform is installed (test/helpers/tools.ts).
// The last tests break copies and check that the same checks report them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/kustomize.js';
import {
  backendOf,
  ENVIRONMENTS,
  loadEnvironment,
  moduleInput,
  NotEvaluable,
  parseDirectory,
  resourceAttribute,
  rootVariable,
  TERRAFORM_DIR,
  variablesReferenced,
  type Config,
  type Environment,
  type EnvironmentName,
} from '../helpers/terraform.js';
import { optionalTool, TERRAFORM } from '../helpers/tools.js';

const MODULES = ['network', 'cluster', 'database', 'cache', 'registry'];
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

describe('the Terraform layout', () => {
  it('when the tree is listed, then the five modules, two environments and the bootstrap exist', () => {
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
      expect(Object.keys(envs[env].root.module).sort()).toEqual([...MODULES].sort());
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
