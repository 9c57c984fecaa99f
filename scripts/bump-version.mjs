#!/usr/bin/env node
// Sets the release version everywhere it is written, in one go, so the version in package.json and the
// image tag every deployment runs never disagree:
//
//   - package.json `version`, and package-lock.json's two root entries;
//   - every reference to the image ghcr.io/reliability-api/reliability-api:<tag> under deploy/ and in
//     railway.json (the base Deployment and migration Job, the Compose services);
//   - the VERSION build argument of deploy/compose/compose.yaml;
//   - the Helm chart's `version` and `appVersion` (deploy/helm/reliability-api/Chart.yaml);
//   - `info.version` of the committed OpenAPI document (docs/openapi.json).
//
//   node scripts/bump-version.mjs 1.4.0           # or 1.4.0-rc.1
//   node scripts/bump-version.mjs --check         # exit 1 unless every place holds package.json's version
//   options: --root DIR (default: this repository), --allow-same (rewrite the current version)
//
// It never moves an environment: the overlays' `images:` newTag and the Helm values-<env>.yaml image.tag
// name an image that exists, and move only through scripts/promote.mjs once it is published (release.yml
// for dev and staging, a promotion pull request for qa and production).
//
// The version must be a SemVer 2.0 version without build metadata (`+` is not allowed in an image tag)
// and greater than the current one: a released tag is immutable and never reused. Nothing is written
// unless every file could be updated. Files are edited as text, so comments and layout stay as they are.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const IMAGE = 'ghcr.io/reliability-api/reliability-api';

// semver.org's grammar, less build metadata.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$/;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const IMAGE_REFERENCE = new RegExp(`(${escape(IMAGE)}:)([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`, 'g');
// A kustomize `images:` entry for the image, up to its newTag (other keys may come between).
export const KUSTOMIZE_NEW_TAG = new RegExp(
  `(-[ \\t]+name:[ \\t]*['"]?${escape(IMAGE)}['"]?[ \\t]*\\n(?:[ \\t]+(?!-)[\\w]+:.*\\n)*?[ \\t]+newTag:[ \\t]*)(['"]?)([^\\s'"]+)\\2`,
  'g',
);
const COMPOSE_FILE = 'deploy/compose/compose.yaml';
const COMPOSE_VERSION_ARG = /^([ \t]+VERSION:[ \t]*)(['"]?)([^\s'"#]+)\2/gm;
const CHART_FILE = 'deploy/helm/reliability-api/Chart.yaml';
// The chart is versioned with the application: one release, one chart version.
const CHART_VERSIONS = /^((version|appVersion):[ \t]*)(['"]?)([^\s'"#]+)\3/gm;
const OPENAPI_FILE = 'docs/openapi.json';
// The first "version" inside "info": the document's own version ("openapi" is the format's).
const OPENAPI_VERSION = /("info"\s*:\s*\{[\s\S]*?"version"\s*:\s*")([^"]*)(")/;

export { SEMVER };

export function parseVersion(version) {
  const match = SEMVER.exec(version);
  if (match === null) return undefined;
  return { major: +match[1], minor: +match[2], patch: +match[3], prerelease: match[4]?.split('.') ?? [] };
}

/** SemVer precedence: -1, 0 or 1. */
export function compareVersions(a, b) {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (x === undefined || y === undefined) throw new Error(`not a version: ${x === undefined ? a : b}`);
  for (const key of ['major', 'minor', 'patch']) if (x[key] !== y[key]) return x[key] < y[key] ? -1 : 1;
  // A version without a prerelease outranks the same version with one.
  if (x.prerelease.length === 0 || y.prerelease.length === 0) {
    return x.prerelease.length === y.prerelease.length ? 0 : x.prerelease.length === 0 ? 1 : -1;
  }
  for (let i = 0; i < Math.max(x.prerelease.length, y.prerelease.length); i++) {
    const [p, q] = [x.prerelease[i], y.prerelease[i]];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/** The files that may name the image: YAML and JSON under deploy/, and railway.json. */
function candidateFiles(root) {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(relative);
      } else if (/\.(ya?ml|json)$/.test(entry.name)) {
        found.push(relative);
      }
    }
  };
  walk('deploy');
  found.push('railway.json');
  return found.sort();
}

function readFrom(root) {
  return (file) => {
    try {
      return readFileSync(path.join(root, file), 'utf8');
    } catch (error) {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    }
  };
}

/**
 * Every place the version is written, as [{ file, what, value }], read through `read(file)`; with `to`,
 * also the new text of each file that changes.
 */
export function scan(root, to, read = readFrom(root)) {
  const places = [];
  const updated = new Map();

  const pkgText = read('package.json');
  if (pkgText === undefined) throw new Error(`no package.json in ${root}`);
  places.push({ file: 'package.json', what: 'version', value: JSON.parse(pkgText).version });
  if (to !== undefined)
    updated.set('package.json', pkgText.replace(/("version"\s*:\s*")[^"]*(")/, `$1${to}$2`));

  const lockText = read('package-lock.json');
  if (lockText !== undefined) {
    const lock = JSON.parse(lockText);
    places.push({ file: 'package-lock.json', what: 'version', value: lock.version });
    places.push({
      file: 'package-lock.json',
      what: 'packages[""].version',
      value: lock.packages?.['']?.version,
    });
    if (to !== undefined) {
      lock.version = to;
      if (lock.packages?.[''] !== undefined) lock.packages[''].version = to;
      updated.set('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
    }
  }

  const openapiText = read(OPENAPI_FILE);
  if (openapiText !== undefined) {
    places.push({ file: OPENAPI_FILE, what: 'info.version', value: JSON.parse(openapiText).info?.version });
    if (to !== undefined) updated.set(OPENAPI_FILE, openapiText.replace(OPENAPI_VERSION, `$1${to}$3`));
  }

  for (const file of candidateFiles(root)) {
    const text = read(file);
    if (text === undefined) continue;
    for (const match of text.matchAll(IMAGE_REFERENCE))
      places.push({ file, what: `image ${IMAGE}`, value: match[2] });
    if (file === COMPOSE_FILE) {
      for (const match of text.matchAll(COMPOSE_VERSION_ARG))
        places.push({ file, what: 'build arg VERSION', value: match[3] });
    }
    if (file === CHART_FILE) {
      for (const match of text.matchAll(CHART_VERSIONS))
        places.push({ file, what: `chart ${match[2]}`, value: match[4] });
    }
    if (to !== undefined) {
      let next = text.replace(IMAGE_REFERENCE, `$1${to}`);
      if (file === COMPOSE_FILE) next = next.replace(COMPOSE_VERSION_ARG, `$1$2${to}$2`);
      if (file === CHART_FILE) next = next.replace(CHART_VERSIONS, `$1$3${to}$3`);
      if (next !== text) updated.set(file, next);
    }
  }
  return { places, updated };
}

function fail(message, code = 1) {
  process.stderr.write(`bump-version: ${message}\n`);
  process.exit(code);
}

const USAGE = 'usage: bump-version.mjs <version> | --check  [--root DIR] [--allow-same]';

function main(argv) {
  let root = path.resolve(import.meta.dirname, '..');
  let check = false;
  let allowSame = false;
  let version;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--root' && argv[i + 1] !== undefined) root = path.resolve(argv[++i]);
    else if (arg === '--check') check = true;
    else if (arg === '--allow-same') allowSame = true;
    else if (arg.startsWith('-') || version !== undefined) fail(`unexpected argument ${arg}\n${USAGE}`, 2);
    else version = arg;
  }

  const { places } = scan(root);
  const current = places[0].value;
  const deployPlaces = places.filter((p) => p.file.startsWith('deploy/'));
  if (!deployPlaces.some((p) => p.what.startsWith('image '))) {
    fail(`no image reference of ${IMAGE} under ${path.join(root, 'deploy')}`);
  }

  if (check) {
    const wrong = places.filter((p) => p.value !== current);
    for (const p of wrong)
      process.stderr.write(`${p.file}: ${p.what} is ${p.value}, package.json is ${current}\n`);
    if (wrong.length > 0) process.exit(1);
    process.stdout.write(`${current} in ${places.length} places\n`);
    return;
  }

  if (version === undefined) fail(`no version given\n${USAGE}`, 2);
  if (parseVersion(version) === undefined) {
    fail(
      `${JSON.stringify(version)} is not a SemVer version MAJOR.MINOR.PATCH[-PRERELEASE] (no "v", no "+build")`,
      2,
    );
  }
  if (parseVersion(current) !== undefined) {
    const order = compareVersions(version, current);
    if (order < 0 || (order === 0 && !allowSame)) {
      fail(`${version} is not newer than ${current}: a released tag is never reused`);
    }
  }

  const { updated } = scan(root, version);
  // Every place must hold the new version in the new texts before anything is written.
  const { places: after } = scan(root, undefined, (file) => updated.get(file) ?? readFrom(root)(file));
  const missed = after.filter((p) => p.value !== version);
  if (missed.length > 0) {
    fail(`nothing written; not updated: ${missed.map((p) => `${p.file} (${p.what})`).join(', ')}`);
  }
  for (const [file, text] of updated) writeFileSync(path.join(root, file), text);
  for (const file of updated.keys()) process.stdout.write(`${file}\n`);
  process.stdout.write(`${current} -> ${version} in ${after.length} places\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
