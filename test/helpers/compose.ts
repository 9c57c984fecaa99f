// Reads deploy/compose/compose.yaml the way Docker Compose does before it runs anything: YAML with merge
// keys (`<<: *anchor`), then variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`).
// There is no Docker engine on the machines that run the suite, so the file is checked, not started.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { parse } from 'yaml';
import { REPO_ROOT } from './kustomize.js';

export const COMPOSE_FILE = path.join(REPO_ROOT, 'deploy/compose/compose.yaml');
/** Relative paths in the Compose file are resolved from its directory. */
export const COMPOSE_DIR = path.dirname(COMPOSE_FILE);
export const ENV_EXAMPLE = path.join(REPO_ROOT, '.env.example');

export type ComposeValue =
  string | number | boolean | null | ComposeValue[] | { [key: string]: ComposeValue };

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; args?: Record<string, string> | string[] };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: unknown;
  depends_on?: string[] | Record<string, { condition?: string; required?: boolean }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  ports?: (string | number | { published?: string | number; host_ip?: string; target?: number })[];
  profiles?: string[];
  [key: string]: unknown;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The Compose file as YAML, merge keys applied (what the Compose specification's schema describes). */
export function loadCompose(text = readFileSync(COMPOSE_FILE, 'utf8')): ComposeFile {
  return parse(text, { merge: true }) as ComposeFile;
}

/** The variables .env.example declares, with its placeholder values. */
export function envExample(text = readFileSync(ENV_EXAMPLE, 'utf8')): Record<string, string> {
  return parseEnv(text) as Record<string, string>;
}

const VARIABLE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** The names of the variables a string interpolates (`$$` is a literal dollar, not a variable). */
export function variablesIn(value: string): { name: string; operator?: string }[] {
  const found: { name: string; operator?: string }[] = [];
  for (const match of value.matchAll(VARIABLE)) {
    const name = match[1] ?? match[4];
    if (name !== undefined) found.push({ name, operator: match[2] });
  }
  return found;
}

/** Compose interpolation of one string. A missing required variable throws with Compose's message. */
export function interpolate(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(VARIABLE, (whole, braced?: string, operator?: string, arg?: string, bare?: string) => {
    if (whole === '$$') return '$';
    const name = (braced ?? bare)!;
    const current = vars[name];
    const unset = current === undefined;
    const empty = unset || current === '';
    switch (operator) {
      case ':-':
        return empty ? (arg ?? '') : current;
      case '-':
        return unset ? (arg ?? '') : current;
      case ':?':
        if (empty) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return current;
      case '?':
        if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return current;
      default:
        return current ?? '';
    }
  });
}

/** Every string of a value, interpolated. */
export function interpolateAll<T extends ComposeValue | ComposeFile>(
  value: T,
  vars: Record<string, string | undefined>,
): T {
  if (typeof value === 'string') return interpolate(value, vars) as T;
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, vars)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolateAll(v as ComposeValue, vars)]),
    ) as T;
  }
  return value;
}

/** A service's environment as a map (Compose accepts a map or a list of KEY=VALUE). */
export function environmentOf(service: ComposeService): Record<string, string | undefined> {
  const env = service.environment;
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf('=');
        return at < 0 ? [entry, undefined] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? undefined : String(v)]));
}

export interface BindMount {
  service: string;
  /** As written in the file. */
  source: string;
  /** Resolved from deploy/compose. */
  hostPath: string;
  target: string;
}

/** Every bind mount of every service: long syntax `type: bind`, or short syntax with a path source. */
export function bindMounts(compose: ComposeFile): BindMount[] {
  const mounts: BindMount[] = [];
  for (const [service, spec] of Object.entries(compose.services)) {
    for (const volume of spec.volumes ?? []) {
      let source: string | undefined;
      let target: string | undefined;
      if (typeof volume === 'string') {
        const [first, second] = volume.split(':');
        // Short syntax: a source starting with `.`, `/` or `~` is a host path; otherwise a named volume.
        if (second !== undefined && /^[./~]/.test(first!)) [source, target] = [first, second];
      } else if (volume.type === 'bind') {
        [source, target] = [volume.source, volume.target];
      }
      if (source !== undefined && target !== undefined) {
        mounts.push({ service, source, hostPath: path.resolve(COMPOSE_DIR, source), target });
      }
    }
  }
  return mounts;
}

/** `name:tag@digest` split into its parts (tag and digest optional). */
export function imageReference(image: string): { name: string; tag?: string; digest?: string } {
  const [withTag, digest] = image.split('@') as [string, string | undefined];
  const slash = withTag.lastIndexOf('/');
  const colon = withTag.lastIndexOf(':');
  const hasTag = colon > slash;
  return {
    name: hasTag ? withTag.slice(0, colon) : withTag,
    tag: hasTag ? withTag.slice(colon + 1) : undefined,
    digest,
  };
}
