// The monitoring kit under test: promtool and amtool (run with argument arrays and timeouts), the rule,
// rule-test and dashboard files parsed, the dashboard's PromQL turned into something promtool can parse,
// and a real Prometheus server for the system test. Like kubectl for the Kubernetes suites, a missing
// binary skips the suites that need it with a warning, and fails them with CI=true. The binaries come
// from Debian's `prometheus` (promtool, prometheus) and `prometheus-alertmanager` (amtool) packages.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const MONITORING_DIR = 'deploy/monitoring';
export const PROMETHEUS_DIR = `${MONITORING_DIR}/prometheus`;
export const RULES_DIR = `${PROMETHEUS_DIR}/rules`;
export const RULE_TESTS_DIR = `${PROMETHEUS_DIR}/tests`;
export const PROMETHEUS_CONFIG = `${PROMETHEUS_DIR}/prometheus.yml`;
export const ALERTMANAGER_CONFIG = `${MONITORING_DIR}/alertmanager/alertmanager.yml`;
export const DATASOURCES_DIR = `${MONITORING_DIR}/grafana/provisioning/datasources`;
export const DASHBOARD_PROVIDERS = `${MONITORING_DIR}/grafana/provisioning/dashboards/dashboards.yml`;
export const DASHBOARDS_DIR = `${MONITORING_DIR}/grafana/dashboards`;
export const PROMETHEUS_RULE = 'deploy/kubernetes/base/prometheusrule.yaml';
export const RUNBOOKS_DIR = 'docs/runbooks';
export const RUNBOOK_URL_PREFIX =
  'https://github.com/reliability-api/reliability-api/blob/main/docs/runbooks/';

const TOOL_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------------
// Tools

export interface Tool {
  command: string;
  /** A cheap invocation that exits 0 when the tool works. */
  probe: readonly string[];
  /** The Debian package that installs it. */
  aptPackage: string;
}

export const PROMTOOL: Tool = { command: 'promtool', probe: ['--version'], aptPackage: 'prometheus' };
export const AMTOOL: Tool = {
  command: 'amtool',
  probe: ['--version'],
  aptPackage: 'prometheus-alertmanager',
};
export const PROMETHEUS: Tool = { command: 'prometheus', probe: ['--version'], aptPackage: 'prometheus' };

export function toolAvailable(tool: Tool): boolean {
  const result = spawnSync(tool.command, [...tool.probe], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0;
}

/**
 * Whether every tool answers. Outside CI a missing one skips the caller's suite with a warning; with
 * CI=true it throws, so the run fails instead of passing untested.
 */
export function requireTools(...tools: Tool[]): boolean {
  const missing = tools.filter((tool) => !toolAvailable(tool));
  if (missing.length === 0) return true;
  const names = missing.map((t) => `${t.command} (apt package ${t.aptPackage})`).join(', ');
  if (process.env.CI === 'true') throw new Error(`not on PATH: ${names}; CI=true requires them`);
  process.stderr.write(`warning: not on PATH: ${names}; the monitoring suites that run them are skipped\n`);
  return false;
}

export interface ToolResult {
  /** Exit status; null when the tool was killed (by the timeout). */
  status: number | null;
  stdout: string;
  /** stdout and stderr together, for messages. */
  output: string;
}

/** Runs a tool to completion, from the repository root unless told otherwise. Throws if it cannot start. */
export function run(
  tool: Tool,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; input?: string } = {},
): ToolResult {
  const result = spawnSync(tool.command, [...args], {
    cwd: options.cwd ?? REPO_ROOT,
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? TOOL_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${tool.command} ${args.join(' ')}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}`.trim() };
}

/** One line per failure of a tool run: none when it exited 0. */
export function failures(label: string, result: ToolResult): string[] {
  return result.status === 0 ? [] : [`${label} exited with ${result.status}: ${result.output}`];
}

export const checkRules = (files: readonly string[]) =>
  failures('promtool check rules', run(PROMTOOL, ['check', 'rules', ...files]));
export const testRules = (files: readonly string[]) =>
  failures('promtool test rules', run(PROMTOOL, ['test', 'rules', ...files]));
export const checkPrometheusConfig = (file: string) =>
  failures('promtool check config', run(PROMTOOL, ['check', 'config', file]));
export const checkAlertmanagerConfig = (file: string) =>
  failures('amtool check-config', run(AMTOOL, ['check-config', file]));

/**
 * `promtool check metrics` on a /metrics exposition (read from stdin): one line per lint finding, as
 * promtool prints them (`<metric> <problem>`); none when the exposition is clean. A parse error, which
 * stops the lint, is reported whole.
 */
export function lintMetrics(exposition: string): string[] {
  const result = run(PROMTOOL, ['check', 'metrics'], { input: exposition });
  if (result.status === 0) return [];
  const lines = result.output.split('\n').filter((line) => line.trim() !== '');
  // Exit 3 is promtool's "lint problems found"; any other failure (1: unreadable input) is kept whole.
  return result.status === 3 && lines.length > 0 ? lines : failures('promtool check metrics', result);
}

/** The receiver Alertmanager's routing tree picks for an alert with these labels. */
export function alertmanagerReceiver(file: string, labels: Record<string, string>): string {
  const result = run(AMTOOL, [
    'config',
    'routes',
    'test',
    `--config.file=${file}`,
    ...Object.entries(labels).map(([k, v]) => `${k}=${v}`),
  ]);
  if (result.status !== 0) throw new Error(`amtool config routes test: ${result.output}`);
  // stdout holds the receivers, comma-separated (amtool warns on stderr that --config.file overrides
  // --alertmanager.url).
  return result.stdout.trim();
}

// ---------------------------------------------------------------------------------------------------
// Files

export function repoPath(relative: string): string {
  return join(REPO_ROOT, relative);
}

export function readText(relative: string): string {
  return readFileSync(repoPath(relative), 'utf8');
}

/** The files of a repository folder with that extension, as repository-relative paths, sorted. */
export function filesIn(dir: string, extension: string): string[] {
  return readdirSync(repoPath(dir))
    .filter((name) => name.endsWith(extension))
    .sort()
    .map((name) => `${dir}/${name}`);
}

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: Rule[];
}

export interface RuleFile {
  file: string;
  groups: RuleGroup[];
}

export function loadRuleFiles(): RuleFile[] {
  return filesIn(RULES_DIR, '.yml').map((file) => ({
    file,
    groups: (parse(readText(file)) as { groups: RuleGroup[] }).groups,
  }));
}

export function allRules(files: readonly RuleFile[]): Rule[] {
  return files.flatMap((f) => f.groups.flatMap((g) => g.rules));
}

/** A promtool rule-test file, as far as the checks read it. */
export interface RuleTestFile {
  rule_files: string[];
  tests: {
    name?: string;
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] | null }[];
  }[];
}

export interface AlertCase {
  where: string;
  alertname: string;
  /** Whether the case expects the alert to fire. */
  fires: boolean;
}

/** Every alert_rule_test case of a rule-test file. */
export function alertCases(file: string, content: RuleTestFile): AlertCase[] {
  return content.tests.flatMap((test, i) =>
    (test.alert_rule_test ?? []).map((c) => ({
      where: `${file}: ${test.name ?? `test ${i + 1}`} at ${c.eval_time}`,
      alertname: c.alertname,
      fires: (c.exp_alerts ?? []).length > 0,
    })),
  );
}

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------------
// Grafana

export interface DashboardTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  id?: number;
  type: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels: DashboardPanel[];
  templating?: { list: { name: string; type: string; datasource?: { type?: string; uid?: string } }[] };
  annotations?: { list: { name: string; expr?: string; datasource?: { type?: string; uid?: string } }[] };
}

export function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return filesIn(DASHBOARDS_DIR, '.json').map((file) => ({
    file,
    dashboard: JSON.parse(readText(file)) as Dashboard,
  }));
}

/** Every panel, those nested in collapsed rows included. */
export function panelsOf(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export interface DashboardQuery {
  where: string;
  expr: string;
}

/** Every PromQL expression of a dashboard: panel targets and annotation queries. */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (target.expr !== undefined) {
        queries.push({ where: `panel "${panel.title}" ${target.refId ?? '?'}`, expr: target.expr });
      }
    }
  }
  for (const annotation of dashboard.annotations?.list ?? []) {
    if (annotation.expr !== undefined)
      queries.push({ where: `annotation "${annotation.name}"`, expr: annotation.expr });
  }
  return queries;
}

/** Every datasource reference of a dashboard, with where it is. Grafana's own annotation source aside. */
export function datasourceRefs(dashboard: Dashboard): { where: string; uid: string | undefined }[] {
  const refs: { where: string; uid: string | undefined }[] = [];
  for (const panel of panelsOf(dashboard)) {
    if (panel.type === 'row') continue;
    refs.push({ where: `panel "${panel.title}"`, uid: panel.datasource?.uid });
    for (const target of panel.targets ?? [])
      refs.push({ where: `panel "${panel.title}" ${target.refId}`, uid: target.datasource?.uid });
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type === 'query')
      refs.push({ where: `variable ${variable.name}`, uid: variable.datasource?.uid });
  }
  for (const annotation of dashboard.annotations?.list ?? []) {
    if (annotation.datasource?.type !== 'grafana')
      refs.push({ where: `annotation "${annotation.name}"`, uid: annotation.datasource?.uid });
  }
  return refs;
}

/**
 * A dashboard expression as Prometheus receives it: Grafana's interval variables become durations and
 * the dashboard's own variables (`$namespace`, `${service}`) take a value from `values`.
 */
export function substituteVariables(expr: string, values: Record<string, string>, interval = '5m'): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, interval)
    .replace(
      /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g,
      (match, braced: string | undefined, bare: string | undefined) => {
        const name = braced ?? bare!;
        if (!(name in values)) throw new Error(`unknown dashboard variable ${match} in ${expr}`);
        return values[name]!;
      },
    );
}

/**
 * A rule file with each expression as a recording rule: `promtool check rules` parses every expression,
 * and there is no standalone PromQL check in promtool.
 */
export function expressionsAsRuleFile(exprs: readonly string[]): string {
  return stringify({
    groups: [
      {
        name: 'dashboard-expressions',
        rules: exprs.map((expr, i) => ({ record: `dashboard:expression_${i}:check`, expr })),
      },
    ],
  });
}

// ---------------------------------------------------------------------------------------------------
// A real Prometheus

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PrometheusServer {
  url: string;
  /** Everything the server logged, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts `prometheus` on a free loopback port with this configuration (YAML text) and waits until it is
 * ready. Its data lives in `dir`, which the caller removes.
 */
export async function startPrometheus(
  config: string,
  dir: string,
  timeoutMs = 20_000,
): Promise<PrometheusServer> {
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    PROMETHEUS.command,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  const server: PrometheusServer = {
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running) throw new Error(`prometheus exited before it was ready:\n${log}`);
    try {
      const response = await fetch(`${server.url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return server;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  await server.stop();
  throw new Error(`prometheus was not ready within ${timeoutMs} ms:\n${log}`);
}

export interface QueryResult {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** An instant query through the HTTP API. */
export async function instantQuery(url: string, expr: string): Promise<QueryResult> {
  const response = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return (await response.json()) as QueryResult;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
