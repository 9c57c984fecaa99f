// The monitoring kit (deploy/monitoring): Prometheus rules, their promtool unit tests, the Prometheus and
// Alertmanager configurations, the Grafana provisioning and dashboards, the runbooks, and the copy of the
// rules in the Kubernetes PrometheusRule. The static checks are functions returning one line per
// violation, so the negative tests at the end can show each one catching the fault it guards against.
// Dashboards over Prometheus are the .json files of grafana/dashboards, those over Loki the ones of
// grafana/dashboards/logs (the provider loads both folders); promtool and the Prometheus system test read
// only the former, and only their Prometheus queries (test/deploy/logging.test.ts covers the log path).
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { settings } from '../../src/config/schema.js';
import {
  ALERTMANAGER_CONFIG,
  AMTOOL,
  DASHBOARDS_DIR,
  DASHBOARD_PROVIDERS,
  DATASOURCES_DIR,
  PROMETHEUS_CONFIG,
  PROMETHEUS_RULE,
  PROMTOOL,
  RULES_DIR,
  RULE_TESTS_DIR,
  RUNBOOKS_DIR,
  RUNBOOK_URL_PREFIX,
  alertCases,
  alertmanagerReceiver,
  allRules,
  checkAlertmanagerConfig,
  checkPrometheusConfig,
  checkRules,
  dashboardQueries,
  datasourceRefs,
  expressionsAsRuleFile,
  filesIn,
  loadDashboards,
  loadRuleFiles,
  panelsOf,
  readText,
  repoPath,
  requireTools,
  substituteVariables,
  tempDir,
  testRules,
  type AlertCase,
  type Dashboard,
  type DashboardQuery,
  type RuleFile,
  type RuleGroup,
  type RuleTestFile,
} from '../helpers/promtool.js';

// ---------------------------------------------------------------------------------------------------
// What the kit must hold

/** The objectives: the defaults of the SLO settings (0.999 and 0.25 s while the settings do not exist). */
function settingDefault(name: string, fallback: number): number {
  const setting = (settings as Record<string, { default?: string } | undefined>)[name];
  return setting?.default === undefined ? fallback : Number(setting.default);
}
const SUCCESS_TARGET = settingDefault('SLO_TARGET_SUCCESS_RATIO', 0.999);
const P99_TARGET = settingDefault('SLO_TARGET_P99_LATENCY_SECONDS', 0.25);

/** The multiwindow, multi-burn-rate alerts of the SRE workbook. */
const BURN_RATE_ALERTS = {
  ErrorBudgetBurnFast: { factor: 14.4, windows: ['1h', '5m'], severity: 'critical' },
  ErrorBudgetBurnSlow: { factor: 6, windows: ['6h', '30m'], severity: 'warning' },
} as const;

const ALERTS = [
  'ErrorBudgetBurnFast',
  'ErrorBudgetBurnSlow',
  'HighLatencyP99',
  'CircuitBreakerOpen',
  'RateLimitStoreDegraded',
  'LoadShedding',
  'EventLoopLagHigh',
  'InstanceDown',
  'NotReady',
  'PodCrashLooping',
];

const WINDOWS = ['5m', '30m', '1h', '6h'];
/** Recording rules every window has, per namespace and service. */
const WINDOWED_RECORDS = [
  'slo:requests:rate',
  'slo:request_errors:rate',
  'slo:request_error:ratio_rate',
  'slo:request_success:ratio_rate',
  'slo:request_latency_p50:seconds_',
  'slo:request_latency_p99:seconds_',
  'slo:error_budget_burn_rate:',
];
/** The recording rules the Argo Rollouts analysis reads (deploy/kubernetes/rollouts/analysis/slo.yaml). */
const CONTRACT_RECORDS = ['slo:request_success:ratio_rate5m', 'slo:request_latency_p99:seconds_5m'];

const RUNBOOK_SECTIONS = ['What it means', 'How to confirm', 'What to do'];
const SEVERITIES = ['critical', 'warning'];
const DATASOURCE_UID = 'prometheus';
const LOKI_UID = 'loki';
/** The folder of the dashboards over Loki, beneath the Prometheus ones. */
const LOG_DASHBOARDS_DIR = `${DASHBOARDS_DIR}/logs`;
/** Values for the dashboard variables when its expressions are parsed or evaluated. */
const DASHBOARD_VARIABLES = { namespace: '.*', service: 'reliability-api' };

// ---------------------------------------------------------------------------------------------------
// Checks: each returns one line per violation.

type Alert = RuleGroup['rules'][number] & { alert: string };
const alertsOf = (files: readonly RuleFile[]) =>
  allRules(files).filter((r): r is Alert => r.alert !== undefined);
const recordsOf = (files: readonly RuleFile[]) =>
  new Map(allRules(files).flatMap((r) => (r.record === undefined ? [] : [[r.record, r.expr] as const])));
/** An expression with its whitespace collapsed, so checks need not care about line breaks. */
const flat = (expr: string) => expr.replace(/\s+/g, ' ').trim();

interface Datasource {
  name?: string;
  uid?: string;
  type?: string;
  url?: string;
}
type DatasourceRef = { type?: string; uid?: string } | undefined;

/** The datasource of a panel's target: its own, else the panel's (Grafana's order). */
const targetDatasource = (
  panel: { datasource?: DatasourceRef },
  target: { datasource?: DatasourceRef },
): DatasourceRef => target.datasource ?? panel.datasource;

/**
 * The PromQL of a dashboard: the expressions of the targets and annotations whose datasource is of type
 * prometheus. A Loki (or any other) query is skipped by its datasource type, never by its text.
 */
function prometheusQueries(dashboard: Dashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (target.expr !== undefined && targetDatasource(panel, target)?.type === 'prometheus')
        queries.push({ where: `panel "${panel.title}" ${target.refId ?? '?'}`, expr: target.expr });
    }
  }
  for (const annotation of dashboard.annotations?.list ?? []) {
    if (annotation.expr !== undefined && annotation.datasource?.type === 'prometheus')
      queries.push({ where: `annotation "${annotation.name}"`, expr: annotation.expr });
  }
  return queries;
}

interface Runbooks {
  read(alert: string): string | undefined;
}
const repoRunbooks: Runbooks = {
  read: (alert) => {
    const file = `${RUNBOOKS_DIR}/${alert}.md`;
    return existsSync(repoPath(file)) ? readText(file) : undefined;
  },
};

/** The sections (`## Title`) of a Markdown document, with their text. */
function sections(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^##\s+(.+?)\s*$/.exec(line);
    if (heading) {
      current = heading[1]!;
      out.set(current, '');
    } else if (current !== undefined) {
      out.set(current, `${out.get(current)}${line}\n`);
    }
  }
  return out;
}

const checks = {
  /** The expected alerts, each with a severity, a `for`, the three annotations and its runbook URL. */
  alertMetadata: (files: readonly RuleFile[]) => {
    const out: string[] = [];
    const alerts = alertsOf(files);
    const names = alerts.map((a) => a.alert);
    for (const name of ALERTS) if (!names.includes(name)) out.push(`no alert ${name}`);
    for (const name of names) {
      if (names.indexOf(name) !== names.lastIndexOf(name)) out.push(`${name}: defined more than once`);
    }
    for (const alert of alerts) {
      const where = alert.alert;
      if (!SEVERITIES.includes(alert.labels?.severity ?? ''))
        out.push(`${where}: severity ${alert.labels?.severity} is not one of ${SEVERITIES.join(', ')}`);
      if (!alert.for) out.push(`${where}: no "for", so one bad evaluation alerts`);
      for (const key of ['summary', 'description', 'runbook_url']) {
        if (!alert.annotations?.[key]?.trim()) out.push(`${where}: no ${key} annotation`);
      }
      const url = `${RUNBOOK_URL_PREFIX}${alert.alert}.md`;
      if (alert.annotations?.runbook_url !== undefined && alert.annotations.runbook_url !== url)
        out.push(`${where}: runbook_url ${alert.annotations.runbook_url}, not ${url}`);
    }
    return out;
  },

  /** Every alert's runbook exists and says what the alert means, how to confirm it and what to do. */
  runbooks: (files: readonly RuleFile[], runbooks: Runbooks) =>
    alertsOf(files).flatMap(({ alert }) => {
      const text = runbooks.read(alert);
      if (text === undefined) return [`${alert}: no ${RUNBOOKS_DIR}/${alert}.md`];
      const found = sections(text);
      return RUNBOOK_SECTIONS.flatMap((section) => {
        if (!found.has(section)) return [`${alert}: the runbook has no "## ${section}" section`];
        return found.get(section)!.trim() === '' ? [`${alert}: the runbook's "${section}" is empty`] : [];
      });
    }),

  /** Each alert has a promtool case where it fires and one where it does not; no case names another. */
  alertCoverage: (files: readonly RuleFile[], cases: readonly AlertCase[]) => {
    const names = alertsOf(files).map((a) => a.alert);
    const out: string[] = [];
    for (const name of names) {
      const mine = cases.filter((c) => c.alertname === name);
      if (!mine.some((c) => c.fires)) out.push(`${name}: no promtool case where it fires`);
      if (!mine.some((c) => !c.fires)) out.push(`${name}: no promtool case where it does not fire`);
    }
    for (const c of cases) {
      if (!names.includes(c.alertname)) out.push(`${c.where}: tests ${c.alertname}, which no rule defines`);
    }
    return out;
  },

  /**
   * Thresholds derive from the objectives: each `F * (1 - T)` and `/ (1 - T)` uses T = the success target,
   * the burn-rate alerts compare both their windows with the workbook's factor, and the latency alert
   * compares p99 with the latency target.
   */
  objectives: (files: readonly RuleFile[]) => {
    const out: string[] = [];
    for (const rule of allRules(files)) {
      const where = rule.alert ?? rule.record;
      for (const match of flat(rule.expr).matchAll(/\(\s*1\s*-\s*([\d.]+)\s*\)/g)) {
        if (Number(match[1]) !== SUCCESS_TARGET)
          out.push(`${where}: uses the objective ${match[1]}, not ${SUCCESS_TARGET}`);
      }
    }
    const alerts = alertsOf(files);
    for (const [name, { factor, windows, severity }] of Object.entries(BURN_RATE_ALERTS)) {
      const alert = alerts.find((a) => a.alert === name);
      if (alert === undefined) continue; // reported by alertMetadata
      const expr = flat(alert.expr);
      const thresholds = [...expr.matchAll(/\(\s*([\d.]+)\s*\*\s*\(\s*1\s*-\s*[\d.]+\s*\)\s*\)/g)].map((m) =>
        Number(m[1]),
      );
      if (thresholds.length !== windows.length || thresholds.some((t) => t !== factor))
        out.push(`${name}: burn-rate factors ${thresholds.join(', ')}, not ${factor} over each window`);
      for (const window of windows) {
        const comparison = `slo:request_error:ratio_rate${window} > (${factor} * (1 - ${SUCCESS_TARGET}))`;
        if (!expr.includes(comparison)) out.push(`${name}: no "${comparison}"`);
      }
      if (!/\band\b/.test(expr)) out.push(`${name}: its windows are not combined with "and"`);
      if (alert.labels?.severity !== severity)
        out.push(`${name}: severity ${alert.labels?.severity}, not ${severity}`);
    }
    const latency = alerts.find((a) => a.alert === 'HighLatencyP99');
    if (latency !== undefined) {
      const limits = [...flat(latency.expr).matchAll(/seconds_\w+\s*>\s*([\d.]+)/g)].map((m) => Number(m[1]));
      if (limits.length === 0 || limits.some((l) => l !== P99_TARGET))
        out.push(`HighLatencyP99: compares p99 with ${limits.join(', ') || 'nothing'}, not ${P99_TARGET}`);
    }
    const records = recordsOf(files);
    for (const window of WINDOWS) {
      const burn = records.get(`slo:error_budget_burn_rate:${window}`);
      const expected = `slo:request_error:ratio_rate${window} / (1 - ${SUCCESS_TARGET})`;
      if (burn !== undefined && flat(burn) !== expected)
        out.push(`slo:error_budget_burn_rate:${window} is "${flat(burn)}", not "${expected}"`);
    }
    return out;
  },

  /**
   * The recording rules: every window of each series, the contract names per namespace and service, and
   * error ratios that are 0 rather than missing or NaN at low traffic.
   */
  recordingRules: (files: readonly RuleFile[]) => {
    const out: string[] = [];
    const records = recordsOf(files);
    for (const prefix of WINDOWED_RECORDS) {
      for (const window of WINDOWS) {
        if (!records.has(`${prefix}${window}`)) out.push(`no recording rule ${prefix}${window}`);
      }
    }
    for (const name of CONTRACT_RECORDS) {
      const expr = records.get(name);
      if (expr === undefined) out.push(`no recording rule ${name} (the Argo Rollouts analysis reads it)`);
    }
    for (const [name, expr] of records) {
      const text = flat(expr);
      // Aggregations keep exactly the labels the contract names.
      for (const match of text.matchAll(/\bby \(([^)]*)\)/g)) {
        const labels = match[1]!.split(',').map((l) => l.trim());
        if (!['namespace', 'service'].every((l) => labels.includes(l)))
          out.push(`${name}: aggregates by (${match[1]}), which drops namespace or service`);
      }
      if (/^slo:request_errors:/.test(name) && !/\bor\b.*\* 0$/.test(text))
        out.push(`${name}: no "or <requests> * 0", so a service without 5xx has no error series`);
      if (/:ratio_rate/.test(name) && text.includes(' / ') && !text.includes('clamp_min('))
        out.push(`${name}: divides without clamp_min, so no traffic gives NaN`);
      if (text.includes('http_requests_total') || text.includes('http_request_duration_seconds')) {
        if (!text.includes('job="reliability-api"'))
          out.push(`${name}: reads the app's metrics without job="reliability-api"`);
        if (!text.includes('route!~"/health.*|/ready|/metrics"'))
          out.push(`${name}: counts probes and scrapes in the SLI`);
      }
    }
    return out;
  },

  /** The PrometheusRule of the Kubernetes base holds exactly the groups of the rule files, in order. */
  prometheusRule: (files: readonly RuleFile[], prometheusRule: unknown) => {
    const groups = (prometheusRule as { spec?: { groups?: unknown } }).spec?.groups;
    const expected = files.flatMap((f) => f.groups);
    if (JSON.stringify(groups) === JSON.stringify(expected)) return [];
    const names = (list: unknown) =>
      Array.isArray(list) ? list.map((g: { name?: string }) => g.name).join(', ') : 'none';
    const differing = expected
      .filter((g) => !(Array.isArray(groups) && groups.some((h) => JSON.stringify(h) === JSON.stringify(g))))
      .map((g) => g.name);
    return [
      `${PROMETHEUS_RULE} differs from ${RULES_DIR}/*.yml (groups ${names(groups)}; expected ${names(expected)}; ` +
        `differing: ${differing.join(', ') || 'order'}): run node deploy/monitoring/render-prometheusrule.mjs`,
    ];
  },

  /** Compose's Prometheus scrapes the API and itself, loads the rules and alerts through Alertmanager. */
  prometheusConfig: (config: unknown) => {
    const c = config as {
      rule_files?: string[];
      alerting?: { alertmanagers?: { static_configs?: { targets?: string[] }[] }[] };
      scrape_configs?: {
        job_name: string;
        static_configs?: { targets?: string[] }[];
        relabel_configs?: { source_labels?: string[]; target_label?: string; action?: string }[];
      }[];
    };
    const out: string[] = [];
    if (JSON.stringify(c.rule_files) !== JSON.stringify(['rules/*.yml']))
      out.push(`rule_files is ${JSON.stringify(c.rule_files)}, not ["rules/*.yml"]`);
    const alertmanagers = c.alerting?.alertmanagers
      ?.flatMap((a) => a.static_configs ?? [])
      .flatMap((s) => s.targets ?? []);
    if (!alertmanagers?.includes('alertmanager:9093')) out.push('does not send alerts to alertmanager:9093');
    const jobs = new Map((c.scrape_configs ?? []).map((s) => [s.job_name, s]));
    const api = jobs.get('reliability-api');
    if (api === undefined) out.push('no scrape job reliability-api');
    else {
      const targets = (api.static_configs ?? []).flatMap((s) => s.targets ?? []);
      if (JSON.stringify(targets) !== JSON.stringify(['api:8000']))
        out.push(`reliability-api scrapes ${targets.join(', ')}`);
      const relabel = api.relabel_configs?.some(
        (r) =>
          r.source_labels?.join() === 'job' &&
          r.target_label === 'service' &&
          (r.action ?? 'replace') === 'replace',
      );
      if (!relabel)
        out.push('reliability-api: no relabelling of job to service, which the rules aggregate by');
    }
    if (!jobs.has('prometheus')) out.push('no scrape job prometheus (itself)');
    return out;
  },

  /** Alertmanager groups by alert and service and holds back warnings while a critical alert fires. */
  alertmanagerConfig: (config: unknown) => {
    const c = config as {
      route?: { group_by?: string[] };
      inhibit_rules?: { source_matchers?: string[]; target_matchers?: string[]; equal?: string[] }[];
    };
    const out: string[] = [];
    for (const label of ['alertname', 'service']) {
      if (!c.route?.group_by?.includes(label)) out.push(`the route does not group by ${label}`);
    }
    const inhibits = (c.inhibit_rules ?? []).some(
      (r) =>
        JSON.stringify(r.source_matchers) === JSON.stringify(['severity="critical"']) &&
        JSON.stringify(r.target_matchers) === JSON.stringify(['severity="warning"']) &&
        (r.equal ?? []).includes('service'),
    );
    if (!inhibits) out.push('no inhibition of warnings by a critical alert of the same service');
    return out;
  },

  /** Grafana: the provisioned datasources (of every file) and dashboard folder. */
  grafanaProvisioning: (list: readonly Datasource[], providers: unknown) => {
    const out: string[] = [];
    const prometheus = list.find((d) => d.type === 'prometheus');
    if (prometheus?.uid !== DATASOURCE_UID) out.push(`no prometheus datasource with uid ${DATASOURCE_UID}`);
    if (prometheus?.url !== 'http://prometheus:9090') out.push(`the datasource points at ${prometheus?.url}`);
    const loki = list.find((d) => d.type === 'loki');
    if (loki?.uid !== LOKI_UID) out.push(`no loki datasource with uid ${LOKI_UID}`);
    if (loki?.url !== 'http://loki:3100') out.push(`the Loki datasource points at ${loki?.url}`);
    const uids = list.map((d) => d.uid);
    if (new Set(uids).size !== uids.length) out.push(`datasource uids repeat: ${uids.join(', ')}`);
    if (list.filter((d) => (d as { isDefault?: boolean }).isDefault === true).length !== 1)
      out.push('not exactly one default datasource');
    const paths = ((providers as { providers?: { options?: { path?: string } }[] }).providers ?? []).map(
      (p) => p.options?.path,
    );
    if (!paths.includes('/var/lib/grafana/dashboards'))
      out.push('no dashboard provider for /var/lib/grafana/dashboards');
    return out;
  },

  /**
   * A dashboard of the Prometheus folder holds PromQL only: every query the shared helpers collect
   * (promtool here, a real Prometheus in monitoring-prometheus.test.ts) is one of a Prometheus datasource.
   */
  prometheusOnly: (dashboard: Dashboard) => {
    const promql = new Set(prometheusQueries(dashboard).map((q) => `${q.where}\u0000${q.expr}`));
    return dashboardQueries(dashboard)
      .filter((q) => !promql.has(`${q.where}\u0000${q.expr}`))
      .map(
        (q) =>
          `${q.where}: not a Prometheus query (${q.expr}); dashboards over Loki go in ${LOG_DASHBOARDS_DIR}`,
      );
  },

  /** Every datasource a dashboard names is provisioned, under that uid and with that type. */
  datasourcesProvisioned: (dashboard: Dashboard, provisioned: readonly Datasource[]) => {
    const refs: { where: string; ref: DatasourceRef }[] = [];
    for (const panel of panelsOf(dashboard)) {
      if (panel.type === 'row') continue;
      refs.push({ where: `panel "${panel.title}"`, ref: panel.datasource });
      for (const target of panel.targets ?? [])
        refs.push({ where: `panel "${panel.title}" ${target.refId}`, ref: targetDatasource(panel, target) });
    }
    for (const variable of dashboard.templating?.list ?? [])
      if (variable.type === 'query')
        refs.push({ where: `variable ${variable.name}`, ref: variable.datasource });
    for (const annotation of dashboard.annotations?.list ?? [])
      if (annotation.datasource?.type !== 'grafana')
        refs.push({ where: `annotation "${annotation.name}"`, ref: annotation.datasource });
    return refs.flatMap(({ where, ref }) => {
      const found = provisioned.find((d) => d.uid === ref?.uid);
      if (found === undefined) return [`${where}: datasource uid ${ref?.uid} is not provisioned`];
      return found.type === ref?.type
        ? []
        : [`${where}: datasource ${ref?.uid} has type ${found.type}, not ${ref?.type}`];
    });
  },

  /** A dashboard Grafana loads as intended: identity, layout, and the provisioned datasource everywhere. */
  dashboard: (dashboard: Dashboard, datasourceUid: string) => {
    const out: string[] = [];
    if (!dashboard.uid) out.push('no uid');
    if (!dashboard.title) out.push('no title');
    if ((dashboard.schemaVersion ?? 0) < 36)
      out.push(`schemaVersion ${dashboard.schemaVersion}, older than 36`);
    const panels = panelsOf(dashboard);
    const ids = panels.map((p) => p.id);
    if (new Set(ids).size !== ids.length || ids.some((id) => id === undefined))
      out.push('panel ids are missing or repeated');
    const placed: { title: string; x: number; y: number; w: number; h: number }[] = [];
    for (const panel of panels) {
      const where = `panel "${panel.title}"`;
      const pos = panel.gridPos;
      if (pos === undefined || [pos.x, pos.y, pos.w, pos.h].some((v) => typeof v !== 'number')) {
        out.push(`${where}: no gridPos`);
        continue;
      }
      if (pos.x < 0 || pos.w < 1 || pos.h < 1 || pos.x + pos.w > 24)
        out.push(`${where}: gridPos outside the 24 columns`);
      for (const other of placed) {
        const overlaps =
          pos.x < other.x + other.w &&
          other.x < pos.x + pos.w &&
          pos.y < other.y + other.h &&
          other.y < pos.y + pos.h;
        if (overlaps) out.push(`${where} overlaps panel "${other.title}"`);
      }
      placed.push({ title: panel.title ?? '?', ...pos });
      if (panel.type !== 'row' && !(panel.targets ?? []).some((t) => t.expr?.trim()))
        out.push(`${where}: no query`);
    }
    for (const ref of datasourceRefs(dashboard)) {
      if (ref.uid !== datasourceUid)
        out.push(`${ref.where}: datasource uid ${ref.uid}, not ${datasourceUid}`);
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------

const tools = requireTools(PROMTOOL, AMTOOL);

const ruleFiles = () => loadRuleFiles();
const ruleTestFiles = () => filesIn(RULE_TESTS_DIR, '.yml');
const ruleTests = () =>
  ruleTestFiles().map((file) => ({ file, content: parse(readText(file)) as RuleTestFile }));
const cases = () => ruleTests().flatMap(({ file, content }) => alertCases(file, content));
/** The datasources of every provisioning file. */
const provisionedDatasources = (): Datasource[] =>
  filesIn(DATASOURCES_DIR, '.yml').flatMap(
    (file) => (parse(readText(file)) as { datasources?: Datasource[] }).datasources ?? [],
  );
const provisionedUid = (type = 'prometheus') =>
  provisionedDatasources().find((d) => d.type === type)?.uid ?? '';
const loadLogDashboards = () =>
  filesIn(LOG_DASHBOARDS_DIR, '.json').map((file) => ({
    file,
    dashboard: JSON.parse(readText(file)) as Dashboard,
  }));
/** Every .json under the dashboards folder, at any depth: what Grafana's file provider loads. */
function dashboardFilesInTree(dir = DASHBOARDS_DIR): string[] {
  return readdirSync(repoPath(dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? dashboardFilesInTree(`${dir}/${entry.name}`)
      : entry.name.endsWith('.json')
        ? [`${dir}/${entry.name}`]
        : [],
  );
}

describe('monitoring kit: rules', () => {
  it('when the rule files are read, then each defines the expected alerts with severity, annotations and runbook', () => {
    expect(checks.alertMetadata(ruleFiles())).toEqual([]);
  });

  it('when each alert is looked up in docs/runbooks, then its runbook says what it means, how to confirm and what to do', () => {
    expect(checks.runbooks(ruleFiles(), repoRunbooks)).toEqual([]);
  });

  it('when the promtool cases are read, then every alert has one where it fires and one where it does not', () => {
    expect(cases().length).toBeGreaterThan(0);
    expect(checks.alertCoverage(ruleFiles(), cases())).toEqual([]);
  });

  it(`when the thresholds are read, then they derive from the objectives (${SUCCESS_TARGET}, p99 ${P99_TARGET} s)`, () => {
    expect(checks.objectives(ruleFiles())).toEqual([]);
  });

  it('when the SLO targets are read, then they are 99.9% and 0.25 s, so the page and ticket thresholds are 1.44% and 0.6%', () => {
    expect([SUCCESS_TARGET, P99_TARGET]).toEqual([0.999, 0.25]);
    // The workbook's numbers for a 30-day period at 99.9%: page at 1.44%, ticket at 0.6% of errors.
    expect(+(14.4 * (1 - SUCCESS_TARGET)).toFixed(6)).toBe(0.0144);
    expect(+(6 * (1 - SUCCESS_TARGET)).toFixed(6)).toBe(0.006);
  });

  it('when the recording rules are read, then every window and the Argo Rollouts contract are there, per namespace and service', () => {
    expect(checks.recordingRules(ruleFiles())).toEqual([]);
  });

  it('when the Kubernetes PrometheusRule is read, then it carries exactly the groups of the rule files', () => {
    expect(checks.prometheusRule(ruleFiles(), parse(readText(PROMETHEUS_RULE)))).toEqual([]);
  });

  it('when docs/observability.md is read, then it links the runbook of every alert', () => {
    const doc = readText('docs/observability.md');
    const missing = alertsOf(ruleFiles())
      .map((a) => `runbooks/${a.alert}.md`)
      .filter((link) => !doc.includes(`](${link})`));
    expect(missing).toEqual([]);
  });
});

describe('monitoring kit: configuration', () => {
  it('when the Compose Prometheus configuration is read, then it scrapes the API and itself and alerts through Alertmanager', () => {
    expect(checks.prometheusConfig(parse(readText(PROMETHEUS_CONFIG)))).toEqual([]);
  });

  it('when the Alertmanager configuration is read, then it groups by alert and service and inhibits warnings under a critical', () => {
    expect(checks.alertmanagerConfig(parse(readText(ALERTMANAGER_CONFIG)))).toEqual([]);
  });

  it('when the Grafana provisioning is read, then it provides the datasource uids and the dashboards folder', () => {
    expect(provisionedDatasources().map((d) => d.uid)).toEqual(['jaeger', LOKI_UID, DATASOURCE_UID]);
    expect(
      checks.grafanaProvisioning(provisionedDatasources(), parse(readText(DASHBOARD_PROVIDERS))),
    ).toEqual([]);
  });

  it('when the dashboards are read, then every panel is placed, queried and bound to the provisioned datasource', () => {
    const dashboards = loadDashboards();
    expect(dashboards.map((d) => d.file)).toContain(
      'deploy/monitoring/grafana/dashboards/golden-signals.json',
    );
    for (const { file, dashboard } of dashboards) {
      expect(checks.dashboard(dashboard, provisionedUid()), file).toEqual([]);
      expect(checks.prometheusOnly(dashboard), file).toEqual([]);
      expect(checks.datasourcesProvisioned(dashboard, provisionedDatasources()), file).toEqual([]);
    }
  });

  it('when the log dashboards are read, then every panel is placed, queried and bound to the Loki datasource', () => {
    const dashboards = loadLogDashboards();
    expect(dashboards.map((d) => d.file)).toEqual([`${LOG_DASHBOARDS_DIR}/logs.json`]);
    for (const { file, dashboard } of dashboards) {
      expect(checks.dashboard(dashboard, provisionedUid('loki')), file).toEqual([]);
      expect(checks.datasourcesProvisioned(dashboard, provisionedDatasources()), file).toEqual([]);
      expect(prometheusQueries(dashboard), file).toEqual([]);
    }
    const { dashboard } = dashboards[0]!;
    const logs = panelsOf(dashboard).filter((p) => p.type === 'logs');
    expect(logs.map((p) => p.targets?.map((t) => t.expr))).toEqual([['{service_name="reliability-api"}']]);
    // Grafana's provider loads the whole folder tree: each file is one of the two sets checked above.
    const checked = [...loadDashboards(), ...dashboards].map((d) => d.file).sort();
    expect(dashboardFilesInTree().sort()).toEqual(checked);
    const uids = [...loadDashboards(), ...dashboards].map((d) => d.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it('when the golden-signals dashboard is read, then it shows the four signals, the protections, the dependencies, authentication and the SLO', () => {
    const { dashboard } = loadDashboards().find((d) => d.file.endsWith('golden-signals.json'))!;
    const exprs = dashboardQueries(dashboard)
      .map((q) => q.expr)
      .join('\n');
    for (const needle of [
      'histogram_quantile(0.5,',
      'histogram_quantile(0.95,',
      'histogram_quantile(0.99,',
      'http_requests_total',
      'status_code=~"5.."',
      'nodejs_eventloop_lag_p99_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'http_requests_in_flight',
      'load_shed_total',
      'circuit_breaker_state',
      'circuit_breaker_transitions_total',
      'rate_limit_decisions_total',
      'outbound_requests_total',
      'outbound_request_duration_seconds_bucket',
      'db_pool_connections{',
      'db_query_duration_seconds_bucket',
      'redis_command_duration_seconds_bucket',
      'auth_events_total',
      'random_values_generated_total',
      'slo:error_budget_burn_rate:',
      'slo:error_budget_remaining:ratio_30d',
    ]) {
      expect(exprs, needle).toContain(needle);
    }
  });
});

describe.skipIf(!tools)('monitoring kit: promtool and amtool', () => {
  let work: ReturnType<typeof tempDir>;
  beforeAll(() => {
    work = tempDir('monitoring-test');
    return () => work.remove();
  });

  it('when promtool checks every rule file, then it accepts them', () => {
    const files = ruleFiles().map((f) => f.file);
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(checkRules(files)).toEqual([]);
  });

  it('when promtool runs the rule unit tests, then every case passes', () => {
    expect(testRules(ruleTestFiles())).toEqual([]);
  });

  it('when promtool checks the Compose Prometheus configuration, then it accepts it and the rule files it names', () => {
    expect(checkPrometheusConfig(PROMETHEUS_CONFIG)).toEqual([]);
  });

  it('when amtool checks the Alertmanager configuration, then it accepts it', () => {
    expect(checkAlertmanagerConfig(ALERTMANAGER_CONFIG)).toEqual([]);
  });

  it('when an alert is routed, then critical pages, warning opens a ticket and anything else goes to the default', () => {
    const receiver = (severity: string) =>
      alertmanagerReceiver(repoPath(ALERTMANAGER_CONFIG), {
        alertname: 'X',
        service: 'reliability-api',
        severity,
      });
    expect([receiver('critical'), receiver('warning'), receiver('info')]).toEqual([
      'page',
      'ticket',
      'default',
    ]);
  });

  it('when every dashboard expression is checked by promtool, then each parses as PromQL', () => {
    const exprs = loadDashboards().flatMap(({ dashboard }) =>
      prometheusQueries(dashboard).map((q) => substituteVariables(q.expr, DASHBOARD_VARIABLES)),
    );
    expect(exprs.length).toBeGreaterThan(20);
    const file = join(work.dir, 'dashboard-expressions.yml');
    writeFileSync(file, expressionsAsRuleFile(exprs));
    expect(checkRules([file])).toEqual([]);
  });

  describe('the promtool and amtool checks catch the faults they guard against', () => {
    it('when a rule expression is broken, then promtool check rules reports it', () => {
      const file = join(work.dir, 'broken-rules.yml');
      const [first] = ruleFiles();
      const groups = structuredClone(first!.groups);
      groups[0]!.rules[0]!.expr = 'sum(rate(http_requests_total[5m])';
      writeFileSync(file, stringify({ groups }));
      expect(checkRules([file])).toEqual([
        expect.stringMatching(/promtool check rules exited with 1: .*parse error/s),
      ]);
    });

    it('when a promtool case expects the wrong outcome, then promtool test rules reports it', () => {
      // The availability tests with every firing expectation emptied, reading the shipped rules.
      const { content } = ruleTests().find((t) => t.file.endsWith('availability_test.yml'))!;
      const broken = structuredClone(content);
      broken.rule_files = broken.rule_files.map((f) => repoPath(`${RULE_TESTS_DIR}/${f}`));
      for (const test of broken.tests) for (const c of test.alert_rule_test ?? []) c.exp_alerts = [];
      const file = join(work.dir, 'broken_test.yml');
      writeFileSync(file, stringify(broken));
      const [report, ...rest] = testRules([file]);
      expect(rest).toEqual([]);
      for (const alert of ['InstanceDown', 'NotReady', 'PodCrashLooping'])
        expect(report).toMatch(new RegExp(`FAILED:[\\s\\S]*alertname: ${alert}, time:`));
    });

    it('when the Prometheus configuration is invalid, then promtool check config reports it', () => {
      const config = parse(readText(PROMETHEUS_CONFIG)) as Record<string, unknown>;
      config.rule_files = [repoPath(`${RULES_DIR}/*.yml`)];
      (config.global as Record<string, unknown>).scrape_interval = 'soon';
      const file = join(work.dir, 'prometheus.yml');
      writeFileSync(file, stringify(config));
      expect(checkPrometheusConfig(file)).toEqual([
        expect.stringMatching(/promtool check config exited with 1/),
      ]);
    });

    it('when Alertmanager routes to a receiver that does not exist, then amtool check-config reports it', () => {
      const config = parse(readText(ALERTMANAGER_CONFIG)) as { route: { routes: { receiver: string }[] } };
      config.route.routes[0]!.receiver = 'nobody';
      const file = join(work.dir, 'alertmanager.yml');
      writeFileSync(file, stringify(config));
      expect(checkAlertmanagerConfig(file)).toEqual([expect.stringMatching(/undefined receiver "nobody"/)]);
    });

    it('when a dashboard expression does not parse, then the promtool check of the expressions reports it', () => {
      const file = join(work.dir, 'broken-dashboard-expressions.yml');
      writeFileSync(
        file,
        expressionsAsRuleFile([
          'sum(rate(http_requests_total[5m]))',
          'histogram_quantile(0.99, sum by (le) (rate(x[5m]))',
        ]),
      );
      expect(checkRules([file])).toEqual([expect.stringMatching(/parse error/)]);
    });
  });
});

// ---------------------------------------------------------------------------------------------------

describe('monitoring kit: the static checks catch the faults they guard against', () => {
  const alertIn = (files: RuleFile[], name: string) => alertsOf(files).find((a) => a.alert === name)!;
  const recordIn = (files: RuleFile[], name: string) => allRules(files).find((r) => r.record === name)!;

  const ruleFaults: {
    fault: string;
    check: (files: RuleFile[]) => string[];
    report: RegExp;
    mutate: (files: RuleFile[]) => void;
  }[] = [
    {
      fault: 'an alert loses its runbook_url',
      check: checks.alertMetadata,
      report: /^LoadShedding: no runbook_url annotation$/,
      mutate: (f) => delete alertIn(f, 'LoadShedding').annotations!.runbook_url,
    },
    {
      fault: 'an alert has no severity',
      check: checks.alertMetadata,
      report: /^InstanceDown: severity undefined/,
      mutate: (f) => delete alertIn(f, 'InstanceDown').labels!.severity,
    },
    {
      fault: 'an alert points at another runbook',
      check: checks.alertMetadata,
      report: /^NotReady: runbook_url .*InstanceDown\.md, not/,
      mutate: (f) =>
        (alertIn(f, 'NotReady').annotations!.runbook_url = `${RUNBOOK_URL_PREFIX}InstanceDown.md`),
    },
    {
      fault: 'an expected alert is removed',
      check: checks.alertMetadata,
      report: /^no alert PodCrashLooping$/,
      mutate: (f) => {
        for (const g of f.flatMap((x) => x.groups))
          g.rules = g.rules.filter((r) => r.alert !== 'PodCrashLooping');
      },
    },
    {
      fault: 'an alert is renamed, so its runbook is missing',
      check: (f) => checks.runbooks(f, repoRunbooks),
      report: /^EventLoopLagTooHigh: no docs\/runbooks\/EventLoopLagTooHigh\.md$/,
      mutate: (f) => (alertIn(f, 'EventLoopLagHigh').alert = 'EventLoopLagTooHigh'),
    },
    {
      fault: 'the page threshold uses 14 instead of 14.4',
      check: checks.objectives,
      report: /^ErrorBudgetBurnFast: burn-rate factors 14, 14, not 14.4/,
      mutate: (f) => {
        const alert = alertIn(f, 'ErrorBudgetBurnFast');
        alert.expr = alert.expr.replaceAll('14.4 *', '14 *');
      },
    },
    {
      fault: 'the ticket drops its short window',
      check: checks.objectives,
      report: /^ErrorBudgetBurnSlow: no "slo:request_error:ratio_rate30m > \(6 \* \(1 - 0\.999\)\)"$/,
      mutate: (f) =>
        (alertIn(f, 'ErrorBudgetBurnSlow').expr = 'slo:request_error:ratio_rate6h > (6 * (1 - 0.999))'),
    },
    {
      fault: 'a burn rate is computed against another objective',
      check: checks.objectives,
      report: /^slo:error_budget_burn_rate:1h: uses the objective 0.99, not 0.999$/,
      mutate: (f) =>
        (recordIn(f, 'slo:error_budget_burn_rate:1h').expr = 'slo:request_error:ratio_rate1h / (1 - 0.99)'),
    },
    {
      fault: 'the latency alert uses 0.3 s',
      check: checks.objectives,
      report: /^HighLatencyP99: compares p99 with 0.3, 0.3, not 0.25$/,
      mutate: (f) => {
        const alert = alertIn(f, 'HighLatencyP99');
        alert.expr = alert.expr.replaceAll('> 0.25', '> 0.3');
      },
    },
    {
      fault: 'a contract recording rule is renamed',
      check: checks.recordingRules,
      report: /^no recording rule slo:request_success:ratio_rate5m/,
      mutate: (f) => (recordIn(f, 'slo:request_success:ratio_rate5m').record = 'slo:request_success:ratio5m'),
    },
    {
      fault: 'an aggregation drops the service label',
      check: checks.recordingRules,
      report: /^slo:requests:rate1h: aggregates by \(namespace\)/,
      mutate: (f) => {
        const rule = recordIn(f, 'slo:requests:rate1h');
        rule.expr = rule.expr.replace('by (namespace, service)', 'by (namespace)');
      },
    },
    {
      fault: 'the error rate loses its zero for services without 5xx',
      check: checks.recordingRules,
      report: /^slo:request_errors:rate5m: no "or <requests> \* 0"/,
      mutate: (f) => {
        const rule = recordIn(f, 'slo:request_errors:rate5m');
        rule.expr = rule.expr.replace(/\s*or\s*slo:requests:rate5m \* 0\s*$/, '');
      },
    },
    {
      fault: 'an error ratio divides by a rate that can be 0',
      check: checks.recordingRules,
      report: /^slo:request_error:ratio_rate30m: divides without clamp_min/,
      mutate: (f) =>
        (recordIn(f, 'slo:request_error:ratio_rate30m').expr =
          'slo:request_errors:rate30m / slo:requests:rate30m'),
    },
    {
      fault: 'the SLI counts probes',
      check: checks.recordingRules,
      report: /^slo:requests:rate6h: counts probes and scrapes in the SLI$/,
      mutate: (f) => {
        const rule = recordIn(f, 'slo:requests:rate6h');
        rule.expr = rule.expr.replace(', route!~"/health.*|/ready|/metrics"', '');
      },
    },
  ];

  it.each(ruleFaults)('when $fault, then it is reported', ({ check, mutate, report }) => {
    const files = structuredClone(ruleFiles());
    expect(check(files)).toEqual([]);
    mutate(files);
    expect(check(files)).toContainEqual(expect.stringMatching(report));
  });

  it('when a runbook loses a section, then it is reported', () => {
    const runbooks: Runbooks = {
      read: (alert) =>
        repoRunbooks
          .read(alert)
          ?.replace(alert === 'NotReady' ? '## How to confirm' : '\u0000', '## Confirming'),
    };
    expect(checks.runbooks(ruleFiles(), runbooks)).toEqual([
      'NotReady: the runbook has no "## How to confirm" section',
    ]);
  });

  it('when an alert has no case where it stays silent, then it is reported', () => {
    const only = cases().filter((c) => !(c.alertname === 'CircuitBreakerOpen' && !c.fires));
    expect(checks.alertCoverage(ruleFiles(), only)).toEqual([
      'CircuitBreakerOpen: no promtool case where it does not fire',
    ]);
    const extra = [...cases(), { where: 'x_test.yml: t at 1m', alertname: 'Ghost', fires: true }];
    expect(checks.alertCoverage(ruleFiles(), extra)).toEqual([
      'x_test.yml: t at 1m: tests Ghost, which no rule defines',
    ]);
  });

  it('when the PrometheusRule falls behind a rule file, then it is reported', () => {
    const prometheusRule = parse(readText(PROMETHEUS_RULE)) as { spec: { groups: RuleGroup[] } };
    const files = ruleFiles();
    expect(checks.prometheusRule(files, prometheusRule)).toEqual([]);
    const changed = structuredClone(files);
    alertIn(changed, 'InstanceDown').for = '5m';
    expect(checks.prometheusRule(changed, prometheusRule)).toEqual([
      expect.stringMatching(
        /differing: reliability-api.availability\): run node deploy\/monitoring\/render-prometheusrule.mjs$/,
      ),
    ]);
  });

  it('when the Prometheus or Alertmanager configuration loses what the rules rely on, then it is reported', () => {
    const prometheus = parse(readText(PROMETHEUS_CONFIG)) as {
      scrape_configs: { relabel_configs?: unknown[] }[];
    };
    prometheus.scrape_configs[0]!.relabel_configs = [];
    expect(checks.prometheusConfig(prometheus)).toEqual([
      'reliability-api: no relabelling of job to service, which the rules aggregate by',
    ]);
    const alertmanager = parse(readText(ALERTMANAGER_CONFIG)) as { inhibit_rules: { equal: string[] }[] };
    alertmanager.inhibit_rules[0]!.equal = ['namespace'];
    expect(checks.alertmanagerConfig(alertmanager)).toEqual([
      'no inhibition of warnings by a critical alert of the same service',
    ]);
  });

  it('when a dashboard panel uses another datasource, overlaps another or has no position, then it is reported', () => {
    const { dashboard } = loadDashboards().find((d) => d.file.endsWith('golden-signals.json'))!;
    const panels = () => panelsOf(broken).filter((p) => p.type !== 'row');
    const broken = structuredClone(dashboard);
    panels()[0]!.targets![0]!.datasource = { type: 'prometheus', uid: 'other' };
    panels()[2]!.gridPos = { ...panels()[1]!.gridPos! };
    delete panels()[3]!.gridPos;
    const report = checks.dashboard(broken, DATASOURCE_UID);
    expect(report).toContainEqual(expect.stringMatching(/ A: datasource uid other, not prometheus$/));
    expect(report).toContainEqual(expect.stringMatching(/overlaps panel/));
    expect(report).toContainEqual(expect.stringMatching(/: no gridPos$/));
  });

  it('when a Loki panel lands among the Prometheus dashboards or names a datasource that is not provisioned, then it is reported', () => {
    const { dashboard } = loadDashboards().find((d) => d.file.endsWith('golden-signals.json'))!;
    const [logs] = loadLogDashboards();
    const broken = structuredClone(dashboard);
    broken.panels.push(structuredClone(logs!.dashboard.panels[0]!));
    expect(checks.prometheusOnly(broken)).toEqual([
      expect.stringMatching(
        /^panel "Log lines" A: not a Prometheus query \(\{service_name="reliability-api"\}\)/,
      ),
    ]);
    // The promtool check skips it by its datasource type, so only the check above stands in its way.
    expect(prometheusQueries(broken)).toEqual(prometheusQueries(dashboard));

    const unprovisioned = structuredClone(logs!.dashboard);
    unprovisioned.panels[0]!.targets![0]!.datasource = { type: 'loki', uid: 'logs' };
    unprovisioned.panels[0]!.datasource = { type: 'prometheus', uid: 'loki' };
    expect(checks.datasourcesProvisioned(unprovisioned, provisionedDatasources())).toEqual([
      'panel "Log lines": datasource loki has type loki, not prometheus',
      'panel "Log lines" A: datasource uid logs is not provisioned',
    ]);
    const withoutLoki = provisionedDatasources().filter((d) => d.type !== 'loki');
    expect(checks.grafanaProvisioning(withoutLoki, parse(readText(DASHBOARD_PROVIDERS)))).toEqual([
      'no loki datasource with uid loki',
      'the Loki datasource points at undefined',
    ]);
  });

  it('when a dashboard uses a variable it does not define, then substituting it fails', () => {
    expect(substituteVariables('rate(x{service=~"$service"}[$__rate_interval])', DASHBOARD_VARIABLES)).toBe(
      'rate(x{service=~"reliability-api"}[5m])',
    );
    expect(() => substituteVariables('x{pod=~"$pod"}', DASHBOARD_VARIABLES)).toThrow(
      /unknown dashboard variable \$pod/,
    );
  });
});
