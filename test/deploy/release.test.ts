// The release contract: one version, written in package.json and in every image tag of
// ghcr.io/reliability-api/reliability-api, moved together by scripts/bump-version.mjs (run here on a copy
// of the files in a temporary directory), published by .github/workflows/release.yml under that name, and
// railway.json building and starting the same image. Rendering the bumped overlays needs kubectl (the rule
// of test/helpers/kustomize.ts: skipped with a warning outside CI, a failure with CI=true).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { settings } from '../../src/config/schema.js';
import { loadCompose } from '../helpers/compose.js';
import { parseManifests, REPO_ROOT, requireKubectl } from '../helpers/kustomize.js';
import { loadWorkflows } from '../helpers/workflows.js';

const IMAGE = 'ghcr.io/reliability-api/reliability-api';
const SCRIPT = path.join(REPO_ROOT, 'scripts/bump-version.mjs');
const PROMOTE = path.join(REPO_ROOT, 'scripts/promote.mjs');
const { ENVIRONMENTS, overlayFile, valuesFile } = (await import(PROMOTE)) as {
  ENVIRONMENTS: string[];
  overlayFile: (env: string) => string;
  valuesFile: (env: string) => string;
};
const packageVersion = (root: string) =>
  (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
const current = packageVersion(REPO_ROOT);

const scratch = mkdtempSync(path.join(tmpdir(), 'bump-version-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of what the script reads: package files, deploy/ (without Terraform) and railway.json. */
function copyOfRepository(): string {
  const root = mkdtempSync(path.join(scratch, 'repo-'));
  for (const file of ['package.json', 'package-lock.json', 'railway.json']) {
    cpSync(path.join(REPO_ROOT, file), path.join(root, file));
  }
  cpSync(path.join(REPO_ROOT, 'deploy'), path.join(root, 'deploy'), {
    recursive: true,
    filter: (source) => !source.includes(`${path.sep}terraform`),
  });
  return root;
}

function bump(root: string, ...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args, '--root', root], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function promote(root: string, ...args: string[]) {
  return spawnSync(process.execPath, [PROMOTE, ...args, '--root', root], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** sha256 of every file under a directory, by relative path. */
function snapshot(root: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isSymbolicLink())
        continue; // the chart's rules/, a link to files hashed where they are
      else
        hashes.set(path.relative(root, file), createHash('sha256').update(readFileSync(file)).digest('hex'));
    }
  };
  walk(root);
  return hashes;
}

function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.keys()].filter((file) => before.get(file) !== after.get(file)).sort();
}

/** Lines that differ between two versions of a file of the same length in lines. */
function changedLines(before: string, after: string): string[] {
  const [a, b] = [before.split('\n'), after.split('\n')];
  expect(b.length).toBe(a.length);
  return b.filter((line, i) => line !== a[i]);
}

const yamlFile = (root: string, file: string) =>
  parse(readFileSync(path.join(root, file), 'utf8')) as { images?: { name: string; newTag?: string }[] };
const imagesIn = (root: string, file: string): string[] =>
  parseAllDocuments(readFileSync(path.join(root, file), 'utf8')).flatMap(
    (doc) => JSON.stringify(doc.toJS()).match(new RegExp(`${IMAGE}:[^"]+`, 'g')) ?? [],
  );

describe('scripts/bump-version.mjs', () => {
  let root: string;
  beforeEach(() => {
    root = copyOfRepository();
  });

  it('when the repository is checked, then every image tag equals the package.json version', () => {
    const result = bump(REPO_ROOT, '--check');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^${current.replace(/\./g, '\\.')} in \\d+ places`));
  });

  it('when a version is given, then package.json, the lockfile and every image tag move to it together', () => {
    const before = snapshot(root);
    const originals = Object.fromEntries(
      [...before.keys()].map((f) => [f, readFileSync(path.join(root, f), 'utf8')]),
    );
    const result = bump(root, '1.2.3');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`${current} -> 1.2.3`);

    expect(changedFiles(before, snapshot(root))).toEqual([
      'deploy/compose/compose.yaml',
      'deploy/helm/reliability-api/Chart.yaml',
      'deploy/kubernetes/base/deployment.yaml',
      'deploy/kubernetes/base/migrate-job.yaml',
      'package-lock.json',
      'package.json',
    ]);
    const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

    // Text edits: only the version lines change, comments and layout stay.
    expect(changedLines(originals['package.json']!, read('package.json'))).toEqual(['  "version": "1.2.3",']);
    expect(changedLines(originals['package-lock.json']!, read('package-lock.json'))).toEqual([
      '  "version": "1.2.3",',
      '      "version": "1.2.3",',
    ]);
    const lock = JSON.parse(read('package-lock.json'));
    expect([lock.version, lock.packages[''].version]).toEqual(['1.2.3', '1.2.3']);

    // No environment moves: each runs the image it ran until scripts/promote.mjs moves it.
    for (const env of ENVIRONMENTS) {
      expect(read(overlayFile(env))).toBe(originals[overlayFile(env)]);
      expect(read(valuesFile(env))).toBe(originals[valuesFile(env)]);
    }
    expect(imagesIn(root, 'deploy/kubernetes/base/deployment.yaml')).toEqual([`${IMAGE}:1.2.3`]);
    expect(imagesIn(root, 'deploy/kubernetes/base/migrate-job.yaml')).toEqual([`${IMAGE}:1.2.3`]);

    const compose = loadCompose(read('deploy/compose/compose.yaml'));
    expect([compose.services.api!.image, compose.services.migrate!.image]).toEqual([
      `${IMAGE}:1.2.3`,
      `${IMAGE}:1.2.3`,
    ]);
    expect((compose.services.api!.build as { args: Record<string, string> }).args.VERSION).toBe('1.2.3');
    expect(
      changedLines(originals['deploy/compose/compose.yaml']!, read('deploy/compose/compose.yaml')),
    ).toHaveLength(3);

    const chart = 'deploy/helm/reliability-api/Chart.yaml';
    expect(changedLines(originals[chart]!, read(chart))).toEqual(['version: 1.2.3', "appVersion: '1.2.3'"]);

    // railway.json builds the image from the Dockerfile at the deployed commit: it names no tag to move.
    expect(read('railway.json')).toBe(originals['railway.json']);
    expect(read('railway.json')).not.toContain(IMAGE);

    expect(bump(root, '--check').status).toBe(0);
  });

  it.each([
    ['v1.2.3', 'a leading v'],
    ['1.2', 'a missing patch number'],
    ['1.2.3.4', 'a fourth number'],
    ['01.2.3', 'a leading zero'],
    ['1.2.3+build.7', 'build metadata, which an image tag cannot hold'],
    ['1.2.3-', 'an empty prerelease'],
    ['latest', 'a moving name'],
    ['', 'nothing'],
  ])('when the version is %j (%s), then it is refused with exit code 2 and nothing changes', (version) => {
    const before = snapshot(root);
    const result = bump(root, version);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/not a SemVer version|no version given/);
    expect(changedFiles(before, snapshot(root))).toEqual([]);
  });

  it('when the version is not newer than the current one, then it is refused (released tags are never reused)', () => {
    const before = snapshot(root);
    for (const version of [current, '0.0.1', `${current}-rc.1`]) {
      const result = bump(root, version);
      expect(result.status, version).toBe(1);
      expect(result.stderr).toContain('is not newer than');
    }
    expect(changedFiles(before, snapshot(root))).toEqual([]);
    expect(bump(root, current, '--allow-same').status).toBe(0);
  });

  it('when one place drifts from package.json, then --check names it and fails', () => {
    const file = path.join(root, 'deploy/kubernetes/base/migrate-job.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(`${IMAGE}:${current}`, `${IMAGE}:9.9.9`));
    const result = bump(root, '--check');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `deploy/kubernetes/base/migrate-job.yaml: image ${IMAGE} is 9.9.9, package.json is ${current}`,
    );
  });

  it('when prerelease versions are compared, then SemVer precedence decides', async () => {
    const { compareVersions } = (await import(SCRIPT)) as {
      compareVersions: (a: string, b: string) => number;
    };
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '2.0.0',
    ];
    for (let i = 1; i < ordered.length; i++) {
      expect(compareVersions(ordered[i - 1]!, ordered[i]!), `${ordered[i - 1]} < ${ordered[i]}`).toBe(-1);
      expect(compareVersions(ordered[i]!, ordered[i - 1]!)).toBe(1);
    }
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });
});

describe('scripts/promote.mjs', () => {
  let root: string;
  beforeEach(() => {
    root = copyOfRepository();
  });

  /** The image tags a rendered overlay runs, and the tag of the Helm values. */
  function running(env: string): { kustomize: string[]; helm: string } {
    const rendered = spawnSync(
      'kubectl',
      ['kustomize', path.join(root, `deploy/kubernetes/overlays/${env}`)],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(rendered.stderr).toBe('');
    const kustomize = parseManifests(rendered.stdout, env)
      .flatMap((o) => JSON.stringify(o).match(/"image":"[^"]+"/g) ?? [])
      .filter((i) => i.includes(IMAGE))
      .map((i) => i.slice(`"image":"${IMAGE}:`.length, -1));
    const values = parse(readFileSync(path.join(root, valuesFile(env)), 'utf8')) as {
      image: { tag: string };
    };
    return { kustomize, helm: values.image.tag };
  }

  it('when an environment is promoted, then its overlay and its Helm values run the tag, and nothing else changes', (context) => {
    if (!requireKubectl()) return context.skip();
    const before = snapshot(root);
    const originals = Object.fromEntries(
      [...before.keys()].map((f) => [f, readFileSync(path.join(root, f), 'utf8')]),
    );
    const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
    for (const [env, tag] of [
      ['staging', 'sha-1a2b3c4'],
      ['production', '2.0.0'],
    ] as const) {
      const result = promote(root, env, tag);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`${env}: ${current} -> ${tag}`);
      expect(changedLines(originals[overlayFile(env)]!, read(overlayFile(env)))).toEqual([
        `    newTag: ${tag}`,
      ]);
      expect(changedLines(originals[valuesFile(env)]!, read(valuesFile(env)))).toEqual([`  tag: ${tag}`]);
      const { kustomize, helm } = running(env);
      expect(kustomize.length).toBeGreaterThanOrEqual(2); // the Deployment and the migration Job
      expect(new Set(kustomize)).toEqual(new Set([tag]));
      expect(helm).toBe(tag);
    }
    expect(changedFiles(before, snapshot(root))).toEqual(
      [
        overlayFile('production'),
        overlayFile('staging'),
        valuesFile('production'),
        valuesFile('staging'),
      ].sort(),
    );
    expect(new Set(running('dev').kustomize)).toEqual(new Set([current]));
    // The release version is untouched: bump-version still finds every place at package.json's.
    expect(bump(root, '--check').status).toBe(0);
    expect(promote(root, '--show').stdout).toBe(
      [
        `dev: ${current} ${current}`,
        `qa: ${current} ${current}`,
        'staging: sha-1a2b3c4 sha-1a2b3c4',
        'production: 2.0.0 2.0.0',
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['dev', 'sha-1a2b3c4d', 'neither X.Y.Z nor sha-<7 hex>'],
    ['staging', 'latest', 'neither X.Y.Z nor sha-<7 hex>'],
    ['staging', 'sha-ABCDEF0', 'neither X.Y.Z nor sha-<7 hex>'],
    ['qa', 'sha-1a2b3c4', 'qa runs released X.Y.Z images only'],
    ['production', 'sha-1a2b3c4', 'production runs released X.Y.Z images only'],
    ['production', '2.0.0-rc.1', 'production runs final releases only'],
    ['production', 'v2.0.0', 'production runs released X.Y.Z images only'],
    ['prod', '2.0.0', 'unknown environment'],
  ])(
    'when %s is asked to run %j, then it is refused with exit code 2 and nothing changes',
    (env, tag, reason) => {
      const before = snapshot(root);
      const result = promote(root, env, tag);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(reason);
      expect(changedFiles(before, snapshot(root))).toEqual([]);
    },
  );

  it('when qa takes a prerelease and dev a release, then both are accepted', () => {
    expect(promote(root, 'qa', '2.0.0-rc.1').status).toBe(0);
    expect(promote(root, 'dev', '2.0.0').status).toBe(0);
    const shown = promote(root, '--show').stdout;
    expect(shown).toContain('dev: 2.0.0 2.0.0\n');
    expect(shown).toContain('qa: 2.0.0-rc.1 2.0.0-rc.1\n');
  });

  it('when one of the two sources has no tag to move, then nothing is written', () => {
    const file = path.join(root, valuesFile('qa'));
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^image:\n {2}tag: .*\n/m, ''));
    const before = snapshot(root);
    const result = promote(root, 'qa', '2.0.0');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`nothing written; no tag of ${IMAGE} in ${valuesFile('qa')}`);
    expect(changedFiles(before, snapshot(root))).toEqual([]);
  });
});

describe('the release workflow and the deployments name the same image', () => {
  const release = loadWorkflows()['release.yml']!.workflow;

  it('when release publishes, then it pushes the image the overlays, the base and Compose run', () => {
    expect(release.env?.IMAGE).toBe(IMAGE);
    expect(ENVIRONMENTS).toEqual(['dev', 'qa', 'staging', 'production']);
    for (const env of ENVIRONMENTS) {
      const images = yamlFile(REPO_ROOT, overlayFile(env)).images ?? [];
      expect(images.map((i) => i.name)).toEqual([IMAGE]);
    }
    const chartValues = parse(
      readFileSync(path.join(REPO_ROOT, 'deploy/helm/reliability-api/values.yaml'), 'utf8'),
    ) as { image: { repository: string } };
    expect(chartValues.image.repository).toBe(IMAGE);
    const compose = loadCompose();
    expect(compose.services.api!.image).toBe(`${IMAGE}:${current}`);
    expect(imagesIn(REPO_ROOT, 'deploy/kubernetes/base/deployment.yaml')).toEqual([`${IMAGE}:${current}`]);
    const deploy = loadWorkflows()['deploy.yml']!.workflow;
    expect(deploy.env?.IMAGE).toBe(IMAGE);
  });

  it('when a release tag is pushed, then it must be v + the package.json version bump-version wrote', () => {
    const on = release.on as { push: { tags: string[]; branches?: string[] } };
    expect(on.push.tags).toEqual(['v[0-9]+.[0-9]+.[0-9]+']);
    expect(on.push.branches).toBeUndefined(); // main's images come from green ci runs
    const version = release.jobs.tag!.steps!.find((s) => s.id === 'version')!;
    expect(version.run).toContain('"$GITHUB_REF_NAME" != "v$version"');
    expect(version.run).toContain(`require("./package.json").version`);
  });
});

describe('railway.json', () => {
  const railway = JSON.parse(readFileSync(path.join(REPO_ROOT, 'railway.json'), 'utf8')) as {
    build: { builder: string; dockerfilePath: string; watchPatterns: string[] };
    deploy: Record<string, unknown>;
  };
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'deploy/docker/Dockerfile'), 'utf8');

  it('when Railway builds, then it builds deploy/docker/Dockerfile and rebuilds when its inputs change', () => {
    expect(railway.build.builder).toBe('DOCKERFILE');
    expect(railway.build.dockerfilePath).toBe('deploy/docker/Dockerfile');
    expect(existsSync(path.join(REPO_ROOT, railway.build.dockerfilePath))).toBe(true);
    for (const copied of ['package.json', 'package-lock.json', 'scripts/build.mjs', 'tsconfig.json']) {
      expect(dockerfile).toContain(copied);
      expect(railway.build.watchPatterns).toContain(copied);
    }
    for (const dir of ['src', 'migrations']) expect(railway.build.watchPatterns).toContain(`${dir}/**`);
  });

  it('when Railway starts the service, then it runs the image’s command, migrates first and probes readiness', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(railway.deploy.startCommand).toBe('node dist/src/cli/main.js serve');
    expect(railway.deploy.startCommand).toBe(cmd.join(' '));
    expect(railway.deploy.preDeployCommand).toEqual(['node dist/src/cli/main.js migrate up']);
    expect(statSync(path.join(REPO_ROOT, 'dist/src/cli/main.js')).isFile()).toBe(true);
    expect(railway.deploy.healthcheckPath).toBe('/health/ready');
    expect(readFileSync(path.join(REPO_ROOT, 'src/plugins/health.ts'), 'utf8')).toContain(`'/health/ready'`);
    expect(railway.deploy.restartPolicyType).toBe('ON_FAILURE');
  });

  it('when Railway replaces a deployment, then the old one gets the whole shutdown budget before SIGKILL', () => {
    const budget =
      Number(settings.SHUTDOWN_DRAIN_SECONDS.default) + Number(settings.SHUTDOWN_TIMEOUT_SECONDS.default);
    expect(railway.deploy.drainingSeconds).toBeGreaterThan(budget);
  });
});
