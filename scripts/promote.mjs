#!/usr/bin/env node
// Moves one environment to an image that exists: the `newTag` of the image in the environment's Kustomize
// overlay and `image.tag` in its Helm values, together, so Argo CD (either source) deploys it.
//
//   node scripts/promote.mjs staging sha-1a2b3c4   # dev and staging: a main commit's image, or a release
//   node scripts/promote.mjs production 1.4.0      # qa and production: a released X.Y.Z only
//   node scripts/promote.mjs --show                # each environment's tag in both sources
//   options: --root DIR (default: this repository)
//
// release.yml runs it for dev and staging once a main commit's image is published; promote.yml opens a
// pull request that runs it for qa or production once a release is published. It checks the tag's form,
// not the registry: the workflows check that the image exists and is signed before they call it. Files
// are edited as text, so comments and layout stay as they are; nothing is written unless both change.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IMAGE, KUSTOMIZE_NEW_TAG, parseVersion } from './bump-version.mjs';

export const ENVIRONMENTS = ['dev', 'qa', 'staging', 'production'];
/** The environments that follow main; the others take released versions only. */
export const FOLLOWS_MAIN = new Set(['dev', 'staging']);
const COMMIT_TAG = /^sha-[0-9a-f]{7}$/;
// `image:` ... `tag: <value>` in a values file: the first `tag:` key indented under the top-level image.
const HELM_IMAGE_TAG = /^(image:[ \t]*\n(?:[ \t]+.*\n|[ \t]*#.*\n)*?[ \t]+tag:[ \t]*)(['"]?)([^\s'"#]*)\2/m;

export const overlayFile = (environment) => `deploy/kubernetes/overlays/${environment}/kustomization.yaml`;
export const valuesFile = (environment) => `deploy/helm/reliability-api/values-${environment}.yaml`;

/** Why `tag` may not run in `environment`, or undefined when it may. */
export function refusal(environment, tag) {
  if (!ENVIRONMENTS.includes(environment))
    return `unknown environment ${JSON.stringify(environment)}: one of ${ENVIRONMENTS.join(', ')}`;
  const release = parseVersion(tag);
  if (FOLLOWS_MAIN.has(environment)) {
    if (release === undefined && !COMMIT_TAG.test(tag))
      return `${JSON.stringify(tag)} is neither X.Y.Z nor sha-<7 hex>`;
    return undefined;
  }
  if (release === undefined)
    return `${environment} runs released X.Y.Z images only, not ${JSON.stringify(tag)}`;
  if (environment === 'production' && release.prerelease.length > 0)
    return `production runs final releases only, not the prerelease ${tag}`;
  return undefined;
}

/** The tag each source names for `environment`, and the new texts when `to` is given. */
export function scan(root, environment, to) {
  const found = {};
  const updated = new Map();
  for (const [file, pattern, group, replacement] of [
    [overlayFile(environment), new RegExp(KUSTOMIZE_NEW_TAG.source), 3, (t) => `$1$2${t}$2`],
    [valuesFile(environment), HELM_IMAGE_TAG, 3, (t) => `$1$2${t}$2`],
  ]) {
    const text = readFileSync(path.join(root, file), 'utf8');
    const match = pattern.exec(text);
    found[file] = match?.[group];
    if (match !== null && to !== undefined) updated.set(file, text.replace(pattern, replacement(to)));
  }
  return { found, updated };
}

function fail(message, code = 1) {
  process.stderr.write(`promote: ${message}\n`);
  process.exit(code);
}

const USAGE = 'usage: promote.mjs <environment> <tag> | --show  [--root DIR]';

function main(argv) {
  let root = path.resolve(import.meta.dirname, '..');
  let show = false;
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--root' && argv[i + 1] !== undefined) root = path.resolve(argv[++i]);
    else if (arg === '--show') show = true;
    else if (arg.startsWith('-')) fail(`unexpected argument ${arg}\n${USAGE}`, 2);
    else positional.push(arg);
  }
  if (show) {
    for (const environment of ENVIRONMENTS) {
      const { found } = scan(root, environment);
      process.stdout.write(`${environment}: ${Object.values(found).join(' ')}\n`);
    }
    return;
  }
  if (positional.length !== 2) fail(USAGE, 2);
  const [environment, tag] = positional;
  const refused = refusal(environment, tag);
  if (refused !== undefined) fail(refused, 2);

  const { found, updated } = scan(root, environment, tag);
  const missing = Object.entries(found).filter(([, value]) => value === undefined);
  if (missing.length > 0)
    fail(`nothing written; no tag of ${IMAGE} in ${missing.map(([file]) => file).join(', ')}`);
  for (const [file, text] of updated) writeFileSync(path.join(root, file), text);
  const before = [...new Set(Object.values(found))].join(', ');
  process.stdout.write(`${environment}: ${before} -> ${tag} (${[...updated.keys()].join(', ')})\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
