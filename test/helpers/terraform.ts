// Reads the Terraform configuration of deploy/terraform with HashiCorp's HCL parser (compiled to
// WebAssembly in @cdktf/hcl2json; no terraform binary and no provider download needed) and evaluates the
// simple wiring the tests look at: a resource attribute of a module, through the module call of an
// environment, to that environment's terraform.tfvars or the variable's default. Only literals and plain
// `var.NAME` references are followed; anything else is reported as not evaluable rather than guessed.
// `expand` goes one step further for policy documents: it substitutes `var.NAME` and `local.NAME` wherever
// they stand as a whole `${...}`, and keeps every other reference (a data source, a module output, a
// function call) exactly as written, so a test can compare the text Terraform would render.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { REPO_ROOT } from './kustomize.js';

export const TERRAFORM_DIR = path.join(REPO_ROOT, 'deploy/terraform');
export const ENVIRONMENTS = ['staging', 'production'] as const;
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/** hcl2json's shape: blocks are arrays of bodies, keyed by their labels. */
export type Body = Record<string, unknown>;
export interface Config {
  resource: Record<string, Record<string, Body[]>>;
  data: Record<string, Record<string, Body[]>>;
  module: Record<string, Body[]>;
  variable: Record<string, Body[]>;
  output: Record<string, Body[]>;
  locals: Body[];
  terraform: Body[];
  provider: Record<string, Body[]>;
}

/** One directory of .tf files (a root or a module), merged as Terraform merges them. */
export async function parseDirectory(
  dir: string,
): Promise<{ config: Config; files: Record<string, string> }> {
  const config: Config = {
    resource: {},
    data: {},
    module: {},
    variable: {},
    output: {},
    locals: [],
    terraform: [],
    provider: {},
  };
  const files: Record<string, string> = {};
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort()) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    files[file] = text;
    const parsed = (await parse(file, text)) as Partial<Config>;
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries(parsed[kind] ?? {})) {
        config[kind][type] = { ...config[kind][type], ...byName };
      }
    }
    for (const kind of ['module', 'variable', 'output', 'provider'] as const) {
      Object.assign(config[kind], parsed[kind] ?? {});
    }
    config.locals.push(...(parsed.locals ?? []));
    config.terraform.push(...(parsed.terraform ?? []));
  }
  return { config, files };
}

/** A terraform.tfvars file: HCL attributes only. */
export async function parseTfvars(file: string): Promise<Record<string, unknown>> {
  return (await parse(path.basename(file), readFileSync(file, 'utf8'))) as Record<string, unknown>;
}

const VAR_REFERENCE = /^\$\{var\.([A-Za-z_][\w-]*)\}$/;

/** `var.NAME` when the expression is exactly one variable reference. */
export function variableReference(expression: unknown): string | undefined {
  return typeof expression === 'string' ? VAR_REFERENCE.exec(expression)?.[1] : undefined;
}

/** Every `var.NAME` an expression (or a whole body) mentions. */
export function variablesReferenced(value: unknown): Set<string> {
  return new Set([...JSON.stringify(value).matchAll(/\bvar\.([A-Za-z_][\w-]*)/g)].map((m) => m[1]!));
}

/** A literal: not a string holding a `${...}` template. */
export function isLiteral(value: unknown): boolean {
  return !JSON.stringify(value ?? null).includes('${');
}

export class NotEvaluable extends Error {}

export interface Environment {
  name: EnvironmentName;
  dir: string;
  root: Config;
  files: Record<string, string>;
  tfvars: Record<string, unknown>;
  modules: Record<string, Config>;
}

export async function loadEnvironment(name: EnvironmentName): Promise<Environment> {
  const dir = path.join(TERRAFORM_DIR, 'environments', name);
  const { config: root, files } = await parseDirectory(dir);
  const tfvars = await parseTfvars(path.join(dir, 'terraform.tfvars'));
  const modules: Record<string, Config> = {};
  for (const [call, [body]] of Object.entries(root.module)) {
    modules[call] = (await parseDirectory(path.resolve(dir, String(body!.source)))).config;
  }
  return { name, dir, root, files, tfvars, modules };
}

/** A root variable's value in an environment: terraform.tfvars, else its default. */
export function rootVariable(env: Environment, name: string): unknown {
  if (name in env.tfvars) return env.tfvars[name];
  const declaration = env.root.variable[name]?.[0];
  if (declaration === undefined) throw new NotEvaluable(`${env.name}: variable ${name} is not declared`);
  if (!('default' in declaration)) throw new NotEvaluable(`${env.name}: variable ${name} has no value`);
  return declaration.default;
}

/** A module input as the environment passes it (or the module's default). */
export function moduleInput(env: Environment, call: string, input: string): unknown {
  const body = env.root.module[call]?.[0];
  if (body === undefined) throw new NotEvaluable(`${env.name}: no module ${call}`);
  if (input in body) {
    const expression = body[input];
    const variable = variableReference(expression);
    if (variable !== undefined) return rootVariable(env, variable);
    if (isLiteral(expression)) return expression;
    throw new NotEvaluable(`${env.name}: module.${call}.${input} = ${JSON.stringify(expression)}`);
  }
  const declaration = env.modules[call]?.variable[input]?.[0];
  if (declaration === undefined)
    throw new NotEvaluable(`${env.name}: module ${call} has no variable ${input}`);
  if (!('default' in declaration))
    throw new NotEvaluable(`${env.name}: module.${call}.${input} is not passed`);
  return declaration.default;
}

/**
 * The value of a resource attribute in a module, for one environment. `attribute` is a path through nested
 * blocks, e.g. `image_scanning_configuration.scan_on_push` (the first block each time).
 */
export function resourceAttribute(
  env: Environment,
  call: string,
  type: string,
  name: string,
  attribute: string,
): unknown {
  const resource = env.modules[call]?.resource[type]?.[name]?.[0];
  if (resource === undefined) throw new NotEvaluable(`${env.name}: module ${call} has no ${type}.${name}`);
  let value: unknown = resource;
  for (const part of attribute.split('.')) {
    const current: unknown = Array.isArray(value) ? value[0] : value;
    if (current === null || typeof current !== 'object' || !(part in current)) {
      throw new NotEvaluable(`${env.name}: ${type}.${name} has no ${attribute}`);
    }
    value = (current as Body)[part];
  }
  const variable = variableReference(value);
  if (variable !== undefined) return moduleInput(env, call, variable);
  if (isLiteral(value)) return value;
  throw new NotEvaluable(`${env.name}: ${type}.${name}.${attribute} = ${JSON.stringify(value)}`);
}

const WHOLE_REFERENCE = /^\$\{(var|local)\.([A-Za-z_][\w-]*)\}$/;
const REFERENCES = /\$\{(var|local)\.([A-Za-z_][\w-]*)\}/g;
const MAX_DEPTH = 20;

/**
 * An expression of a module (`call`) or of the root (`call` undefined) with its variables and locals
 * replaced by what they stand for: a module variable by the argument of its module call (expanded in the
 * root) or its default, a root variable by terraform.tfvars or its default, a local by its expression.
 * Inside a longer string only string, number and boolean values can be substituted; anything else, and a
 * name that is not declared, is NotEvaluable. Other references stay as written.
 */
export function expand(env: Environment, call: string | undefined, expression: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new NotEvaluable(`${env.name}: references nest deeper than ${MAX_DEPTH}`);
  if (Array.isArray(expression)) return expression.map((e) => expand(env, call, e, depth));
  if (expression !== null && typeof expression === 'object') {
    return Object.fromEntries(
      Object.entries(expression).map(([key, value]) => [key, expand(env, call, value, depth)]),
    );
  }
  if (typeof expression !== 'string') return expression;
  const whole = WHOLE_REFERENCE.exec(expression);
  if (whole !== null) return referenced(env, call, whole[1] as 'var' | 'local', whole[2]!, depth);
  return expression.replace(REFERENCES, (text, kind: 'var' | 'local', name: string) => {
    const value = referenced(env, call, kind, name, depth);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return String(value);
    }
    throw new NotEvaluable(`${env.name}: ${text} in ${JSON.stringify(expression)} is not a string`);
  });
}

function referenced(
  env: Environment,
  call: string | undefined,
  kind: 'var' | 'local',
  name: string,
  depth: number,
): unknown {
  const where = call === undefined ? env.name : `${env.name}: module ${call}`;
  if (kind === 'local') {
    const locals = call === undefined ? env.root.locals : (env.modules[call]?.locals ?? []);
    const block = locals.find((body) => name in body);
    if (block === undefined) throw new NotEvaluable(`${where}: local.${name} is not defined`);
    return expand(env, call, block[name], depth + 1);
  }
  if (call === undefined) return rootVariable(env, name);
  const argument = env.root.module[call]?.[0];
  if (argument !== undefined && name in argument) return expand(env, undefined, argument[name], depth + 1);
  const declaration = env.modules[call]?.variable[name]?.[0];
  if (declaration === undefined) throw new NotEvaluable(`${where} has no variable ${name}`);
  if (!('default' in declaration))
    throw new NotEvaluable(`${env.name}: module.${call}.${name} is not passed`);
  return declaration.default;
}

/** The backend block of a root: its type and settings. */
export function backendOf(config: Config): { type: string; settings: Body } | undefined {
  for (const block of config.terraform) {
    const backends = block.backend as Record<string, Body[]> | undefined;
    for (const [type, [settings]] of Object.entries(backends ?? {})) return { type, settings: settings! };
  }
  return undefined;
}
