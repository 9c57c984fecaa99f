// What this build is: name and version from package.json, read once at start.
import { readFileSync } from 'node:fs';

interface PackageJson {
  name: string;
  version: string;
}

// Resolved relative to this module so it works from src/ (tests) and dist/src/ (the build) alike.
const candidates = ['../../package.json', '../../../package.json'];

function readPackageJson(): PackageJson {
  for (const rel of candidates) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as PackageJson;
      if (parsed.name === 'reliability-api') return parsed;
    } catch {
      // try the next location
    }
  }
  return { name: 'reliability-api', version: '0.0.0' };
}

export const buildInfo = Object.freeze({
  ...readPackageJson(),
  node: process.version,
});
