// Logs in one place (docs/observability.md, "Logs in one place"): the collection side, checked without
// running any of it. No OpenTelemetry Collector, Loki or Grafana binary runs in this repository's tests, so
// each configuration is parsed and held to what those programs need:
// - both collector configurations (Compose: deploy/monitoring/otel-collector/otel-collector.compose.yaml;
//   the node agent: deploy/kubernetes/logging/otel-collector-config.yaml): every component a pipeline names
//   is defined, every defined one is used, every type is a component of otelcol-contrib, and the logs go to
//   Loki's OTLP endpoint;
// - the Compose collector takes the API's OTLP on 4318 and sends traces to Jaeger and logs to Loki; the
//   agent reads /var/log/pods but its own files, and turns a real line of the app's logger into a record
//   with its time, severity, trace context and message;
// - Loki (deploy/monitoring/loki/loki.yaml): TSDB with schema v13, structured metadata, retention, storage
//   on its volume;
// - Grafana: the Loki datasource's trace link names a provisioned trace datasource, the logs panel the Loki
//   datasource, and both paths label the API's records with the service name the panel selects;
// - deploy/kubernetes/logging, rendered with `kubectl kustomize`: every object valid against the schema of
//   its kind, read-only RBAC, and the DaemonSet held to the app's pod policy but for the stated root
//   exception.
// Each describe ends with negative tests: a broken copy must be reported by the same check.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { trace, TraceFlags } from '@opentelemetry/api';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass';
import type { IContainer } from 'kubernetes-models/v1/Container';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { settings } from '../../src/config/schema.js';
import { loggerOptions } from '../../src/observability/logger.js';
import { traceFields } from '../../src/observability/tracing.js';
import { environmentOf, loadCompose, type ComposeFile } from '../helpers/compose.js';
import { checks as podPolicy, type Check } from '../helpers/kubernetes-policy/index.js';
import {
  REPO_ROOT,
  all,
  describeObject,
  kustomize,
  readRepoFile,
  readYaml,
  requireKubectl,
  schemaErrors,
  type K8sObject,
} from '../helpers/kustomize.js';

const COMPOSE_COLLECTOR = 'deploy/monitoring/otel-collector/otel-collector.compose.yaml';
const AGENT_COLLECTOR = 'deploy/kubernetes/logging/otel-collector-config.yaml';
const LOKI_CONFIG = 'deploy/monitoring/loki/loki.yaml';
const LOGGING_DIR = 'deploy/kubernetes/logging';
const DATASOURCES_DIR = 'deploy/monitoring/grafana/provisioning/datasources';
const DASHBOARDS_DIR = 'deploy/monitoring/grafana/dashboards';
const APP_DEPLOYMENT = 'deploy/kubernetes/base/deployment.yaml';

/** Where the kubelet puts every container's log files: <namespace>_<pod>_<uid>/<container>/<n>.log. */
const POD_LOGS = '/var/log/pods';
const POD_LOG_GLOB = `${POD_LOGS}/*/*/*.log`;
/** pino's level labels, which the API writes, and the numbers of a logger without the label formatter. */
const PINO_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

const clone = <T>(value: T): T => structuredClone(value);
const yamlFile = <T>(file: string): T => parse(readRepoFile(file)) as T;

// ---------------------------------------------------------------------------------------------------
// Collector configurations

type Section = 'receivers' | 'processors' | 'exporters' | 'extensions';
const SECTIONS: readonly Section[] = ['receivers', 'processors', 'exporters', 'extensions'];
const SINGULAR: Record<Section, string> = {
  receivers: 'receiver',
  processors: 'processor',
  exporters: 'exporter',
  extensions: 'extension',
};
const SIGNALS = ['traces', 'metrics', 'logs'];

interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}

interface CollectorConfig {
  receivers?: Record<string, unknown>;
  processors?: Record<string, unknown>;
  exporters?: Record<string, unknown>;
  extensions?: Record<string, unknown>;
  service?: { extensions?: string[]; pipelines?: Record<string, Pipeline> };
}

/**
 * Component types of the contrib distribution (otelcol-contrib 0.129) that a configuration here may use:
 * a subset of what it ships, widened when a configuration needs another. Not the `loki` exporter: it is
 * deprecated and gone from contrib after 0.130, and Loki 3 takes OTLP through `otlphttp`.
 */
const CONTRIB_COMPONENTS: Record<Section, readonly string[]> = {
  receivers: ['otlp', 'filelog', 'journald', 'hostmetrics', 'kubeletstats', 'k8s_events', 'prometheus'],
  processors: [
    'memory_limiter',
    'batch',
    'k8sattributes',
    'resource',
    'resourcedetection',
    'attributes',
    'filter',
    'transform',
  ],
  exporters: ['otlp', 'otlphttp', 'debug', 'file'],
  extensions: ['health_check', 'file_storage', 'pprof', 'zpages'],
};

/** A component's type: its id up to the first `/` (`otlphttp/loki` is an `otlphttp`). */
const typeOf = (id: string) => id.split('/')[0]!;

/**
 * The pipelines hold together: every component they name is defined in its section, every defined one is
 * used (extensions by service.extensions), every type exists in otelcol-contrib, and each pipeline has a
 * receiver and an exporter, with memory_limiter first and batch last among its processors.
 */
function pipelineProblems(config: CollectorConfig): string[] {
  const out: string[] = [];
  const pipelines = Object.entries(config.service?.pipelines ?? {});
  if (pipelines.length === 0) out.push('service.pipelines is empty');
  const used: Record<Section, Set<string>> = {
    receivers: new Set(),
    processors: new Set(),
    exporters: new Set(),
    extensions: new Set(config.service?.extensions ?? []),
  };
  for (const [name, pipeline] of pipelines) {
    if (!SIGNALS.includes(typeOf(name))) out.push(`pipeline ${name}: ${typeOf(name)} is not a signal`);
    for (const section of ['receivers', 'exporters'] as const) {
      if ((pipeline[section] ?? []).length === 0) out.push(`pipeline ${name}: no ${SINGULAR[section]}`);
    }
    for (const section of ['receivers', 'processors', 'exporters'] as const) {
      for (const id of pipeline[section] ?? []) {
        used[section].add(id);
        if (!(id in (config[section] ?? {})))
          out.push(`pipeline ${name} names ${SINGULAR[section]} ${id}, which ${section} does not define`);
      }
    }
    const processors = (pipeline.processors ?? []).map(typeOf);
    if (processors.includes('memory_limiter') && processors[0] !== 'memory_limiter')
      out.push(`pipeline ${name}: memory_limiter is not its first processor`);
    if (processors.includes('batch') && processors.at(-1) !== 'batch')
      out.push(`pipeline ${name}: batch is not its last processor`);
  }
  for (const id of config.service?.extensions ?? []) {
    if (!(id in (config.extensions ?? {})))
      out.push(`service names extension ${id}, which extensions does not define`);
  }
  for (const section of SECTIONS) {
    for (const id of Object.keys(config[section] ?? {})) {
      if (!used[section].has(id)) out.push(`${SINGULAR[section]} ${id} is defined but not used`);
      if (!CONTRIB_COMPONENTS[section].includes(typeOf(id)))
        out.push(`${SINGULAR[section]} ${id}: ${typeOf(id)} is not a component of otelcol-contrib`);
    }
  }
  return out;
}

const ENV_REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Every string of a parsed document. */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsOf);
  return [];
}

/** The environment variables a configuration reads (`${env:NAME}`). */
const envReferences = (config: unknown) =>
  [...new Set(stringsOf(config).flatMap((s) => [...s.matchAll(ENV_REFERENCE)].map((m) => m[1]!)))].sort();

/** A string with its `${env:NAME}` references replaced as the collector does at start-up. */
const resolveEnv = (value: string, env: Record<string, string | undefined>) =>
  value.replace(ENV_REFERENCE, (_whole, name: string) => env[name] ?? '');

/** Every logs pipeline exports over OTLP/HTTP to a Loki OTLP endpoint: `<Loki>/otlp` (+ `/v1/logs`). */
function lokiExportProblems(config: CollectorConfig, env: Record<string, string | undefined> = {}): string[] {
  const out: string[] = [];
  const logs = Object.entries(config.service?.pipelines ?? {}).filter(([name]) => typeOf(name) === 'logs');
  if (logs.length === 0) out.push('no logs pipeline');
  for (const [name, pipeline] of logs) {
    for (const id of pipeline.exporters ?? []) {
      const exporter = (config.exporters?.[id] ?? {}) as { endpoint?: string; logs_endpoint?: string };
      if (typeOf(id) !== 'otlphttp') {
        out.push(`pipeline ${name}: exporter ${id} is not otlphttp, the way into Loki's OTLP endpoint`);
        continue;
      }
      if (exporter.logs_endpoint !== undefined)
        out.push(`pipeline ${name}: exporter ${id} sets logs_endpoint, which bypasses <endpoint>/v1/logs`);
      const endpoint = resolveEnv(exporter.endpoint ?? '', env);
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        out.push(`pipeline ${name}: exporter ${id} has no endpoint URL (${endpoint || 'empty'})`);
        continue;
      }
      if (url.pathname.replace(/\/+$/, '') !== '/otlp')
        out.push(
          `pipeline ${name}: exporter ${id} posts to ${url.pathname}/v1/logs, not Loki's /otlp/v1/logs`,
        );
    }
  }
  return out;
}

/** A URL, or one that names nothing when the text is not a URL (the checks report that as a mismatch). */
function urlOf(text: string | undefined): URL {
  try {
    return new URL(text ?? '');
  } catch {
    return new URL('invalid://invalid');
  }
}

/** `host:port` of an endpoint, with or without a scheme. */
function hostPort(endpoint: string): { host: string; port: string } {
  const url = new URL(/^[a-z]+:\/\//.test(endpoint) ? endpoint : `tcp://${endpoint}`);
  return { host: url.hostname, port: url.port };
}

interface OtlpReceiver {
  protocols?: { grpc?: { endpoint?: string }; http?: { endpoint?: string } };
}

/**
 * The Compose collector: OTLP in on 4318 (HTTP, the API's OTLP_ENDPOINT) and 4317 (gRPC) on every interface
 * of its container; traces out to Jaeger's OTLP/gRPC port in plain text, logs to the Compose Loki's /otlp;
 * its health_check extension on 13133. Every host it sends to is a Compose service.
 */
function composeCollectorProblems(config: CollectorConfig, compose: ComposeFile, lokiPort: number): string[] {
  const out: string[] = [];
  const otlp = config.receivers?.otlp as OtlpReceiver | undefined;
  for (const [protocol, port] of [
    ['http', '4318'],
    ['grpc', '4317'],
  ] as const) {
    const endpoint = otlp?.protocols?.[protocol]?.endpoint;
    if (endpoint === undefined) {
      out.push(`the otlp receiver has no ${protocol} endpoint`);
      continue;
    }
    const { host, port: listening } = hostPort(endpoint);
    if (host !== '0.0.0.0')
      out.push(`otlp ${protocol} listens on ${host}, which other containers cannot reach`);
    if (listening !== port) out.push(`otlp ${protocol} listens on ${listening}, not ${port}`);
  }
  const api = environmentOf(compose.services.api!);
  const target = urlOf(api.OTLP_ENDPOINT);
  const httpPort =
    otlp?.protocols?.http?.endpoint === undefined ? '' : hostPort(otlp.protocols.http.endpoint).port;
  if (target.hostname !== 'otel-collector' || target.port !== httpPort)
    out.push(`the API's OTLP_ENDPOINT ${api.OTLP_ENDPOINT} is not otel-collector:${httpPort}`);
  if (api.OTEL_LOGS_EXPORTER !== 'otlp')
    out.push(`the API's OTEL_LOGS_EXPORTER is ${api.OTEL_LOGS_EXPORTER}`);
  const mounted = (compose.services['otel-collector']?.volumes ?? []).some(
    (v) => typeof v !== 'string' && v.source?.endsWith(path.basename(COMPOSE_COLLECTOR)),
  );
  if (!mounted) out.push(`the Compose service otel-collector does not mount ${COMPOSE_COLLECTOR}`);

  const traces = config.service?.pipelines?.traces;
  if (traces === undefined) out.push('no traces pipeline');
  for (const id of traces?.exporters ?? []) {
    const exporter = (config.exporters?.[id] ?? {}) as { endpoint?: string; tls?: { insecure?: boolean } };
    if (typeOf(id) !== 'otlp') out.push(`traces exporter ${id} is not otlp (gRPC)`);
    if (exporter.endpoint !== 'jaeger:4317') out.push(`traces exporter ${id} sends to ${exporter.endpoint}`);
    if (exporter.tls?.insecure !== true)
      out.push(`traces exporter ${id} expects TLS, which Jaeger does not serve`);
  }
  out.push(...lokiExportProblems(config));
  for (const id of config.service?.pipelines?.logs?.exporters ?? []) {
    const { endpoint } = (config.exporters?.[id] ?? {}) as { endpoint?: string };
    const url = urlOf(endpoint);
    if (url.hostname !== 'loki' || url.port !== String(lokiPort))
      out.push(`logs exporter ${id} sends to ${url.host}, not the Compose Loki (loki:${lokiPort})`);
  }
  for (const host of ['jaeger', 'loki'])
    if (compose.services[host] === undefined) out.push(`${host} is not a Compose service`);
  const health = (config.extensions?.health_check ?? {}) as { endpoint?: string };
  if (health.endpoint === undefined || hostPort(health.endpoint).port !== '13133')
    out.push(`the health_check extension listens on ${health.endpoint}, not port 13133`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The node agent's parsing of container log lines

interface Operator {
  type: string;
  id?: string;
  if?: string;
  [key: string]: unknown;
}

interface Filelog {
  include?: string[];
  exclude?: string[];
  start_at?: string;
  include_file_path?: boolean;
  operators?: Operator[];
}

/** A filelog glob (doublestar: `*` within one path segment, `**` across them) as a regular expression. */
function globPattern(glob: string): RegExp {
  let pattern = '';
  for (let i = 0; i < glob.length; i += 1) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      pattern += '.*';
      i += 1;
    } else if (ch === '*') pattern += '[^/]*';
    else if (ch === '?') pattern += '[^/]';
    else pattern += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${pattern}$`);
}
const matchesAny = (globs: readonly string[] | undefined, file: string) =>
  (globs ?? []).some((g) => globPattern(g).test(file));

/**
 * The text a timestamp layout accepts, as a regular expression, for the directives of ISO times: Go's
 * reference-time layout (`gotime`) or strptime's. Any other directive throws, so a layout this check
 * cannot read is never taken for a match.
 */
function layoutPattern(layoutType: string | undefined, layout: string): RegExp {
  const directives: [string, string][] =
    layoutType === 'gotime'
      ? [
          ['2006', '\\d{4}'],
          ['01', '\\d{2}'],
          ['02', '\\d{2}'],
          ['15', '\\d{2}'],
          ['04', '\\d{2}'],
          ['05', '\\d{2}'],
          ['.000000000', '\\.\\d{9}'],
          ['.000000', '\\.\\d{6}'],
          ['.000', '\\.\\d{3}'],
          ['.999999999', '(\\.\\d{1,9})?'],
          ['Z07:00', '(Z|[+-]\\d{2}:\\d{2})'],
          ['Z0700', '(Z|[+-]\\d{4})'],
        ]
      : [
          ['%Y', '\\d{4}'],
          ['%m', '\\d{2}'],
          ['%d', '\\d{2}'],
          ['%H', '\\d{2}'],
          ['%M', '\\d{2}'],
          ['%S', '\\d{2}'],
          ['%L', '\\d{3}'],
          ['%z', '[+-]\\d{4}'],
        ];
  let pattern = '';
  let rest = layout;
  while (rest !== '') {
    const directive = directives.find(([token]) => rest.startsWith(token));
    if (directive !== undefined) {
      pattern += directive[1];
      rest = rest.slice(directive[0].length);
      continue;
    }
    const ch = rest[0]!;
    if (/[0-9a-zA-Z%]/.test(ch) && ch !== 'T' && ch !== 'Z')
      throw new Error(`layout ${layout}: "${rest}" is not a directive this check reads`);
    pattern += ch.replace(/[.+*?^${}()|[\]\\]/g, '\\$&');
    rest = rest.slice(1);
  }
  return new RegExp(`^${pattern}$`);
}

/** The regular expression of a stanza condition `body matches "<regex>"` (an expr string literal). */
function bodyMatches(condition: string | undefined): RegExp | undefined {
  const match = /^\s*body matches "((?:[^"\\]|\\.)*)"\s*$/.exec(condition ?? '');
  return match === null ? undefined : new RegExp(JSON.parse(`"${match[1]}"`) as string);
}

const attribute = (field: unknown) =>
  typeof field === 'string' && field.startsWith('attributes.')
    ? field.slice('attributes.'.length)
    : undefined;

/** Two files filelog finds under /var/log/pods: one of an agent pod's, one of an API pod's. */
interface AgentPaths {
  own: string;
  app: string;
}

/**
 * The filelog receiver reads every pod's files but the agent's own, and turns one of the API's lines (as
 * the app's own logger writes it) into a record: the container parser first (runtime format and the
 * k8s.* resource attributes from the path), then JSON only for a body that is a JSON object, with the
 * time and level parsed, then the trace context, then the message as the body.
 */
function filelogProblems(config: CollectorConfig, line: string, paths: AgentPaths): string[] {
  const out: string[] = [];
  const filelog = config.receivers?.filelog as Filelog | undefined;
  if (filelog === undefined) return ['no filelog receiver'];
  if (!(filelog.include ?? []).includes(POD_LOG_GLOB)) out.push(`filelog does not include ${POD_LOG_GLOB}`);
  if (!matchesAny(filelog.include, paths.app)) out.push(`filelog does not read the API's ${paths.app}`);
  if (matchesAny(filelog.exclude, paths.app)) out.push(`filelog excludes the API's ${paths.app}`);
  if (!matchesAny(filelog.exclude, paths.own)) out.push(`filelog reads the agent's own ${paths.own}`);
  if (filelog.start_at !== 'end')
    out.push(`start_at is ${filelog.start_at}: a restart sends every file again`);
  if (filelog.include_file_path !== true)
    out.push('include_file_path is not true: the container parser needs log.file.path');

  const operators = filelog.operators ?? [];
  const index = (type: string) => operators.findIndex((o) => o.type === type);
  const container = operators[0];
  if (container?.type !== 'container') out.push('the first operator is not the container parser');
  else if (container.add_metadata_from_filepath === false)
    out.push('the container parser does not set the k8s.* attributes (k8sattributes matches on k8s.pod.uid)');

  const fields = JSON.parse(line) as Record<string, unknown>;
  const json = operators[index('json_parser')];
  if (json === undefined) return [...out, 'no json_parser'];
  if (index('json_parser') < index('container')) out.push('json_parser runs before the container parser');
  const isJson = bodyMatches(json.if);
  if (isJson === undefined) out.push(`json_parser condition ${json.if} is not \`body matches "<regex>"\``);
  else {
    if (!isJson.test(line)) out.push(`json_parser skips the API's line (${json.if})`);
    if (isJson.test('GET /health 200 1ms')) out.push(`json_parser also takes plain text (${json.if})`);
  }
  if ((json.parse_from ?? 'body') !== 'body')
    out.push(`json_parser parses ${String(json.parse_from)}, not body`);
  if ((json.parse_to ?? 'attributes') !== 'attributes')
    out.push(`json_parser parses to ${String(json.parse_to)}, not attributes`);

  const timestamp = json.timestamp as
    { parse_from?: string; layout_type?: string; layout?: string } | undefined;
  const timeField = attribute(timestamp?.parse_from);
  if (timeField === undefined || !(timeField in fields))
    out.push(`timestamp parses ${timestamp?.parse_from}, not a field of the line`);
  else {
    try {
      if (!layoutPattern(timestamp?.layout_type, timestamp?.layout ?? '').test(String(fields[timeField])))
        out.push(`timestamp layout ${timestamp?.layout} does not read ${String(fields[timeField])}`);
    } catch (error) {
      out.push((error as Error).message);
    }
  }
  const severity = json.severity as { parse_from?: string; mapping?: Record<string, unknown> } | undefined;
  const levelField = attribute(severity?.parse_from);
  if (levelField === undefined || !(levelField in fields))
    out.push(`severity parses ${severity?.parse_from}, not a field of the line`);
  for (const [label, number] of Object.entries(PINO_LEVELS)) {
    const values = [severity?.mapping?.[label] ?? []].flat().map(String);
    if (!values.includes(label) || !values.includes(String(number)))
      out.push(`severity ${label} is not mapped from pino's ${label} and ${number}`);
  }

  const traceParser = operators[index('trace_parser')] as
    | (Operator & Record<'trace_id' | 'span_id' | 'trace_flags', { parse_from?: string } | undefined>)
    | undefined;
  if (traceParser === undefined) out.push('no trace_parser: records lose the trace id of their line');
  else {
    if (index('trace_parser') < index('json_parser')) out.push('trace_parser runs before json_parser');
    for (const key of ['trace_id', 'span_id', 'trace_flags'] as const) {
      const field = attribute(traceParser[key]?.parse_from);
      if (field !== key || !(field in fields))
        out.push(`trace_parser ${key} comes from ${traceParser[key]?.parse_from}, not the line's ${key}`);
    }
  }
  const move = operators.find((o) => o.type === 'move' && o.to === 'body');
  const messageField = attribute(move?.from);
  if (
    move === undefined ||
    messageField === undefined ||
    !(messageField in fields) ||
    fields[messageField] !== 'request completed'
  )
    out.push(`the body is not the line's message (move ${String(move?.from)} to body)`);
  else if (operators.indexOf(move) < index('json_parser'))
    out.push('the message is moved before json_parser runs');
  const ids = operators.map((o) => o.id ?? o.type);
  if (new Set(ids).size !== ids.length) out.push(`operator ids repeat: ${ids.join(', ')}`);
  return out;
}

interface K8sAttributes {
  passthrough?: boolean;
  filter?: { node_from_env_var?: string };
  extract?: { metadata?: string[]; labels?: { tag_name?: string; key?: string; from?: string }[] };
  pod_association?: { sources?: { from?: string; name?: string }[] }[];
}

/**
 * Pod metadata is added on the agent itself (passthrough false) from the pod uid the container parser set,
 * for this node's pods only, and service.name comes from the pod's app.kubernetes.io/name label.
 */
function k8sAttributesProblems(config: CollectorConfig, container: IContainer | undefined): string[] {
  const out: string[] = [];
  const k8s = config.processors?.k8sattributes as K8sAttributes | undefined;
  if (k8s === undefined) return ['no k8sattributes processor'];
  if (k8s.passthrough !== false) out.push('k8sattributes passes through: nothing would look the pods up');
  for (const key of ['k8s.namespace.name', 'k8s.pod.name', 'k8s.deployment.name', 'k8s.node.name']) {
    if (!(k8s.extract?.metadata ?? []).includes(key)) out.push(`k8sattributes does not extract ${key}`);
  }
  const byUid = (k8s.pod_association ?? []).some((a) =>
    (a.sources ?? []).some((s) => s.from === 'resource_attribute' && s.name === 'k8s.pod.uid'),
  );
  if (!byUid)
    out.push('k8sattributes does not associate records with pods by the resource attribute k8s.pod.uid');
  const nodeVariable = k8s.filter?.node_from_env_var;
  const nodeEnv = container?.env?.find((e) => e.name === nodeVariable);
  if (nodeVariable === undefined || nodeEnv?.valueFrom?.fieldRef?.fieldPath !== 'spec.nodeName')
    out.push(
      `k8sattributes watches pods of node ${nodeVariable}, which the container does not set from spec.nodeName`,
    );
  const label = (k8s.extract?.labels ?? []).find(
    (l) => l.key === 'app.kubernetes.io/name' && l.from === 'pod',
  );
  const resource = config.processors?.resource as
    { attributes?: { key?: string; from_attribute?: string; action?: string }[] } | undefined;
  const serviceName = (resource?.attributes ?? []).find((a) => a.key === 'service.name');
  if (
    label === undefined ||
    serviceName?.from_attribute !== (label.tag_name ?? 'k8s.pod.labels.app.kubernetes.io/name')
  )
    out.push("service.name is not taken from the pod's app.kubernetes.io/name label");
  else if (serviceName.action !== 'insert')
    out.push(`service.name is set with ${serviceName.action}, not insert`);
  const processors = config.service?.pipelines?.logs?.processors ?? [];
  if (processors.indexOf('resource') < processors.indexOf('k8sattributes'))
    out.push('the resource processor runs before k8sattributes has set the label it reads');
  return out;
}

/** Every `${env:NAME}` of the configuration is set in the container. */
function envProblems(config: CollectorConfig, container: IContainer | undefined): string[] {
  const set = new Set((container?.env ?? []).map((e) => e.name));
  return envReferences(config)
    .filter((name) => !set.has(name))
    .map((name) => `\${env:${name}} is not set in the container`);
}

// ---------------------------------------------------------------------------------------------------
// Loki

interface LokiConfig {
  auth_enabled?: boolean;
  server?: { http_listen_port?: number };
  common?: { path_prefix?: string; storage?: { filesystem?: Record<string, string> } };
  schema_config?: { configs?: { from?: string; store?: string; object_store?: string; schema?: string }[] };
  limits_config?: { allow_structured_metadata?: boolean; retention_period?: string };
  compactor?: { working_directory?: string; retention_enabled?: boolean; delete_request_store?: string };
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
  w: 604800,
  y: 31536000,
};

/** A Prometheus-style duration (`168h`, `7d`, `1h30m`) in seconds; NaN when it is not one. */
function seconds(duration: string | undefined): number {
  const parts = [...(duration ?? '').matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.map((p) => p[0]).join('') !== duration || parts.length === 0) return Number.NaN;
  return parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
}

/**
 * Loki as the Compose stack needs it: one tenant without authentication, the TSDB index with schema v13
 * and structured metadata allowed (OTLP ingestion needs both), retention applied by the compactor, and
 * everything it writes on the volume mounted at `dataDir`.
 */
function lokiProblems(config: LokiConfig, dataDir: string): string[] {
  const out: string[] = [];
  if (config.auth_enabled !== false)
    out.push('auth_enabled is not false: every request would need X-Scope-OrgID');
  if (config.server?.http_listen_port !== 3100)
    out.push(`Loki listens on ${config.server?.http_listen_port}`);
  const periods = [...(config.schema_config?.configs ?? [])].sort((a, b) =>
    String(a.from).localeCompare(String(b.from)),
  );
  const current = periods.at(-1);
  if (current === undefined) out.push('no schema_config');
  else {
    if (current.store !== 'tsdb')
      out.push(`the current schema stores its index in ${current.store}, not tsdb`);
    if (current.schema !== 'v13') out.push(`the current schema is ${current.schema}, not v13`);
    if (current.object_store !== 'filesystem')
      out.push(`chunks go to ${current.object_store}, not the filesystem`);
  }
  if (config.limits_config?.allow_structured_metadata !== true)
    out.push('allow_structured_metadata is not true: OTLP records with trace ids and attributes are refused');
  const retention = seconds(config.limits_config?.retention_period);
  if (!(retention >= 86400))
    out.push(`retention_period ${config.limits_config?.retention_period} is not a day or more`);
  if (config.compactor?.retention_enabled !== true) out.push('the compactor does not apply the retention');
  if (config.compactor?.delete_request_store === undefined)
    out.push('the compactor has no delete_request_store');
  const paths = [
    config.common?.path_prefix,
    ...Object.values(config.common?.storage?.filesystem ?? {}),
    config.compactor?.working_directory,
  ];
  for (const p of paths) {
    if (p === undefined || !(p === dataDir || p.startsWith(`${dataDir}/`)))
      out.push(`${p} is not on the data volume ${dataDir}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Grafana

interface DerivedField {
  name?: string;
  matcherType?: string;
  matcherRegex?: string;
  datasourceUid?: string;
  url?: string;
}
interface Datasource {
  name?: string;
  uid?: string;
  type?: string;
  url?: string;
  jsonData?: { derivedFields?: DerivedField[] };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

const TRACE_DATASOURCE_TYPES = ['jaeger', 'tempo', 'zipkin'];

/**
 * The Loki datasource links a record's trace_id to its trace: a derived field on the structured metadata
 * trace_id (where OTLP-ingested records keep it) opening the value, `$$`-escaped for provisioning, in a
 * provisioned trace datasource.
 */
function traceLinkProblems(datasources: readonly Datasource[]): string[] {
  const loki = datasources.find((d) => d.type === 'loki');
  if (loki === undefined) return ['no Loki datasource'];
  const out: string[] = [];
  if (loki.url !== 'http://loki:3100') out.push(`the Loki datasource points at ${loki.url}`);
  const links = (loki.jsonData?.derivedFields ?? []).filter((f) => f.matcherRegex === 'trace_id');
  if (links.length !== 1) return [...out, `${links.length} derived fields on trace_id, not 1`];
  const [link] = links as [DerivedField];
  if (link.matcherType !== 'label')
    out.push(
      `the trace link matches ${link.matcherType ?? 'the line'}, not the structured metadata (label) trace_id`,
    );
  const target = datasources.find((d) => d.uid === link.datasourceUid);
  if (target === undefined)
    out.push(`the trace link opens datasource ${link.datasourceUid}, which is not provisioned`);
  else if (!TRACE_DATASOURCE_TYPES.includes(target.type ?? ''))
    out.push(`the trace link opens ${target.uid}, a ${target.type} datasource, not a trace one`);
  if (link.url !== '$${__value.raw}')
    out.push(
      `the trace link's url is ${link.url}, not $\${__value.raw} (\`$$\` escapes \`$\` in provisioning)`,
    );
  return out;
}

const panelsOf = (panels: readonly Panel[]): Panel[] =>
  panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);

/**
 * Some dashboard has a logs panel, and every logs panel reads the Loki datasource and selects the service
 * by the name both paths give its records.
 */
function logsPanelProblems(
  dashboards: readonly { file: string; panels: Panel[] }[],
  datasources: readonly Datasource[],
  serviceName: string,
): string[] {
  const out: string[] = [];
  const loki = datasources.find((d) => d.type === 'loki');
  const panels = dashboards.flatMap(({ file, panels: p }) =>
    panelsOf(p)
      .filter((panel) => panel.type === 'logs')
      .map((panel) => ({ where: `${file} panel "${panel.title}"`, panel })),
  );
  if (panels.length === 0) out.push('no logs panel');
  for (const { where, panel } of panels) {
    const refs = [panel.datasource, ...(panel.targets ?? []).map((t) => t.datasource ?? panel.datasource)];
    for (const ref of refs) {
      if (loki === undefined || ref?.uid !== loki.uid || ref?.type !== 'loki')
        out.push(`${where}: datasource ${ref?.type}/${ref?.uid}, not the Loki datasource loki/${loki?.uid}`);
    }
    const selector = `service_name="${serviceName}"`;
    if (!(panel.targets ?? []).some((t) => t.expr?.includes(selector)))
      out.push(`${where}: no query on ${selector}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Inputs

const composeCollector = yamlFile<CollectorConfig>(COMPOSE_COLLECTOR);
const agentCollector = yamlFile<CollectorConfig>(AGENT_COLLECTOR);
const loki = yamlFile<LokiConfig>(LOKI_CONFIG);
const compose = loadCompose();
const lokiDataDir = () => {
  const volume = (compose.services.loki?.volumes ?? []).find(
    (v) => typeof v !== 'string' && v.type === 'volume',
  ) as { target?: string } | undefined;
  return volume?.target ?? '(no volume)';
};

/** One line of the API as its own logger writes it: the access line of a traced request. */
function apiLogLine(): string {
  const lines: string[] = [];
  const logger = pino(loggerOptions({ LOG_LEVEL: 'info' }, settings.OTEL_SERVICE_NAME.default, '0.1.0'), {
    write: (line: string) => void lines.push(line),
  });
  const span = trace.wrapSpanContext({
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
  });
  logger.info(
    {
      ...traceFields(span),
      request_id: 'support-ticket-4711',
      method: 'GET',
      route: '/v1/random',
      status: 200,
    },
    'request completed',
  );
  return lines[0]!.trimEnd();
}

const datasources = (): Datasource[] =>
  readdirSync(path.join(REPO_ROOT, DATASOURCES_DIR))
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => yamlFile<{ datasources?: Datasource[] }>(`${DATASOURCES_DIR}/${f}`).datasources ?? []);

function dashboardFiles(dir = DASHBOARDS_DIR): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? dashboardFiles(`${dir}/${e.name}`)
      : e.name.endsWith('.json')
        ? [`${dir}/${e.name}`]
        : [],
  );
}
const dashboards = () =>
  dashboardFiles().map((file) => ({
    file,
    panels: (JSON.parse(readRepoFile(file)) as { panels: Panel[] }).panels,
  }));

/** The app.kubernetes.io/name label of the API's pods, which the agent turns into service.name. */
const appPodName = () =>
  yamlFile<{ spec: { template: { metadata: { labels: Record<string, string> } } } }>(APP_DEPLOYMENT).spec
    .template.metadata.labels['app.kubernetes.io/name'];

// ---------------------------------------------------------------------------------------------------

describe('the collector configurations', () => {
  it.each([
    ['Compose', COMPOSE_COLLECTOR, composeCollector],
    ['node agent', AGENT_COLLECTOR, agentCollector],
  ])(
    'when the %s configuration is read, then its pipelines name defined, used contrib components',
    (_n, _f, config) => {
      expect(pipelineProblems(config)).toEqual([]);
    },
  );

  it('when the Compose collector runs, then it takes OTLP from the API on 4318 and sends traces to Jaeger and logs to Loki', () => {
    expect(composeCollectorProblems(composeCollector, compose, loki.server!.http_listen_port!)).toEqual([]);
    expect(Object.keys(composeCollector.service!.pipelines!).sort()).toEqual(['logs', 'traces']);
  });

  it("when the node agent exports, then its logs pipeline posts to the Loki OTLP endpoint the DaemonSet's LOKI_OTLP_ENDPOINT names", () => {
    // (k8sattributes reads K8S_NODE_NAME by name, not through a reference.)
    expect(envReferences(agentCollector)).toEqual(['LOKI_OTLP_ENDPOINT', 'POD_IP', 'TRACES_OTLP_ENDPOINT']);
    const endpoint = 'http://loki-gateway.observability.svc/otlp';
    expect(lokiExportProblems(agentCollector, { LOKI_OTLP_ENDPOINT: endpoint })).toEqual([]);
    expect(lokiExportProblems(agentCollector, {})).toEqual([
      'pipeline logs: exporter otlphttp/loki has no endpoint URL (empty)',
    ]);
  });

  describe('the checks catch the faults they guard against', () => {
    it('when an exporter definition is removed, then the pipeline naming it is reported', () => {
      const broken = clone(composeCollector);
      delete broken.exporters!['otlphttp/loki'];
      expect(pipelineProblems(broken)).toEqual([
        'pipeline logs names exporter otlphttp/loki, which exporters does not define',
      ]);
    });

    it('when a component is defined but used by no pipeline, or an extension is not enabled, then it is reported', () => {
      const broken = clone(agentCollector);
      broken.processors!['batch/unused'] = {};
      broken.service!.extensions = [];
      expect(pipelineProblems(broken)).toEqual([
        'processor batch/unused is defined but not used',
        'extension health_check is defined but not used',
      ]);
    });

    it('when the removed loki exporter or an unknown signal is used, then it is reported', () => {
      const broken = clone(composeCollector);
      broken.exporters = { loki: { endpoint: 'http://loki:3100/loki/api/v1/push' }, ...broken.exporters };
      broken.service!.pipelines!.logs!.exporters = ['loki'];
      delete broken.exporters['otlphttp/loki'];
      broken.service!.pipelines!['log/extra'] = { receivers: ['otlp'], exporters: ['loki'] };
      expect(pipelineProblems(broken)).toEqual([
        'pipeline log/extra: log is not a signal',
        'exporter loki: loki is not a component of otelcol-contrib',
      ]);
      expect(lokiExportProblems(broken)).toEqual([
        "pipeline logs: exporter loki is not otlphttp, the way into Loki's OTLP endpoint",
      ]);
    });

    it('when the processors are out of order, or a pipeline has no receiver, then it is reported', () => {
      const broken = clone(agentCollector);
      broken.service!.pipelines!.logs!.processors = ['k8sattributes', 'memory_limiter', 'batch', 'resource'];
      broken.service!.pipelines!.logs!.receivers = [];
      expect(pipelineProblems(broken)).toEqual([
        'pipeline logs: no receiver',
        'pipeline logs: memory_limiter is not its first processor',
        'pipeline logs: batch is not its last processor',
        'receiver filelog is defined but not used',
      ]);
    });

    it('when the logs go to the push API or Jaeger gets another endpoint, then the Compose check reports it', () => {
      const broken = clone(composeCollector);
      (broken.exporters!['otlphttp/loki'] as { endpoint: string }).endpoint =
        'http://loki:3100/loki/api/v1/push';
      (broken.exporters!['otlp/jaeger'] as { tls: { insecure: boolean } }).tls.insecure = false;
      (broken.receivers!.otlp as OtlpReceiver).protocols!.http!.endpoint = 'localhost:4318';
      expect(composeCollectorProblems(broken, compose, 3100)).toEqual([
        'otlp http listens on localhost, which other containers cannot reach',
        'traces exporter otlp/jaeger expects TLS, which Jaeger does not serve',
        "pipeline logs: exporter otlphttp/loki posts to /loki/api/v1/push/v1/logs, not Loki's /otlp/v1/logs",
      ]);
      const elsewhere = clone(compose);
      (elsewhere.services.api!.environment as Record<string, string>).OTLP_ENDPOINT = 'http://jaeger:4318';
      expect(composeCollectorProblems(composeCollector, elsewhere, 3100)).toEqual([
        "the API's OTLP_ENDPOINT http://jaeger:4318 is not otel-collector:4318",
      ]);
    });
  });
});

describe("the node agent's parsing of the API's lines", () => {
  const line = apiLogLine();
  const paths: AgentPaths = {
    own: `${POD_LOGS}/observability_otel-agent-x7k2p_3f0c9a51-5d1e-4e0b-9a57-6f3f2b8c1d20/otel-collector/0.log`,
    app: `${POD_LOGS}/reliability-api-production_reliability-api-6d5f7c9b8-x7k2p_0b6e2f4a-1c3d-4e5f-8a9b-0c1d2e3f4a5b/api/0.log`,
  };

  it("when a line of the app's logger is read, then it carries every field the operators parse", () => {
    const fields = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(fields)).toEqual(
      expect.arrayContaining(['time', 'level', 'msg', 'trace_id', 'span_id', 'trace_flags', 'request_id']),
    );
    expect(fields).toMatchObject({ level: 'info', msg: 'request completed', trace_flags: '01' });
  });

  it('when filelog reads /var/log/pods, then JSON lines become records with time, severity, trace context and message', () => {
    expect(filelogProblems(agentCollector, line, paths)).toEqual([]);
  });

  it('when the layouts and conditions are read, then they accept what pino writes and nothing else', () => {
    expect(layoutPattern('gotime', '2006-01-02T15:04:05.000Z07:00').test('2026-12-04T18:00:00.000Z')).toBe(
      true,
    );
    expect(layoutPattern('gotime', '2006-01-02T15:04:05.000Z07:00').test('2026-12-04 18:00:00')).toBe(false);
    expect(layoutPattern('strptime', '%Y-%m-%dT%H:%M:%S.%LZ').test('2026-12-04T18:00:00.000Z')).toBe(true);
    expect(() => layoutPattern('gotime', 'Jan 2 15:04:05')).toThrow(/not a directive this check reads/);
    expect(bodyMatches('body matches "^\\\\{"')?.test('{"a":1}')).toBe(true);
    expect(bodyMatches('body matches "^\\\\{"')?.test('a {"a":1}')).toBe(false);
    expect(globPattern('/var/log/pods/*/*/*.log').test('/var/log/pods/a_b_c/d/0.log')).toBe(true);
    expect(globPattern('/var/log/pods/*/*/*.log').test('/var/log/pods/a_b_c/d/e/0.log')).toBe(false);
  });

  describe('the checks catch the faults they guard against', () => {
    const receiver = (config: CollectorConfig) => config.receivers!.filelog as Filelog;
    const operator = (config: CollectorConfig, type: string) =>
      receiver(config).operators!.find((o) => o.type === type)!;
    const faults: { fault: string; report: RegExp; mutate: (c: CollectorConfig) => void }[] = [
      {
        fault: 'the trace_parser is removed',
        report: /^no trace_parser/,
        mutate: (c) =>
          (receiver(c).operators = receiver(c).operators!.filter((o) => o.type !== 'trace_parser')),
      },
      {
        fault: 'the trace id is read from another field',
        report: /^trace_parser trace_id comes from attributes.traceId/,
        mutate: (c) =>
          ((operator(c, 'trace_parser').trace_id as { parse_from: string }).parse_from =
            'attributes.traceId'),
      },
      {
        fault: 'the JSON condition looks for an array',
        report: /^json_parser skips the API's line/,
        mutate: (c) => (operator(c, 'json_parser').if = 'body matches "^\\\\["'),
      },
      {
        fault: 'the JSON condition takes every line',
        report: /^json_parser also takes plain text/,
        mutate: (c) => (operator(c, 'json_parser').if = 'body matches ".*"'),
      },
      {
        fault: 'the timestamp layout has no milliseconds and a space',
        report: /^timestamp layout 2006-01-02 15:04:05 does not read/,
        mutate: (c) =>
          ((operator(c, 'json_parser').timestamp as { layout: string }).layout = '2006-01-02 15:04:05'),
      },
      {
        fault: 'the severity comes from a field the line does not have',
        report: /^severity parses attributes.severity, not a field of the line/,
        mutate: (c) =>
          ((operator(c, 'json_parser').severity as { parse_from: string }).parse_from =
            'attributes.severity'),
      },
      {
        fault: 'the container parser is dropped',
        report: /^the first operator is not the container parser/,
        mutate: (c) => receiver(c).operators!.shift(),
      },
      {
        fault: "the agent's own files are no longer excluded",
        report: /^filelog reads the agent's own/,
        mutate: (c) => (receiver(c).exclude = []),
      },
      {
        fault: 'the include stops at one pod',
        report: /^filelog does not include \/var\/log\/pods\/\*\/\*\/\*\.log/,
        mutate: (c) => (receiver(c).include = ['/var/log/pods/observability_*/*/*.log']),
      },
      {
        fault: 'files are read from the beginning on every start',
        report: /^start_at is beginning/,
        mutate: (c) => (receiver(c).start_at = 'beginning'),
      },
      {
        fault: 'the message stays an attribute',
        report: /^the body is not the line's message/,
        mutate: (c) => (receiver(c).operators = receiver(c).operators!.filter((o) => o.type !== 'move')),
      },
    ];

    it.each(faults)('when $fault, then it is reported', ({ mutate, report }) => {
      const config = clone(agentCollector);
      expect(filelogProblems(config, line, paths)).toEqual([]);
      mutate(config);
      expect(filelogProblems(config, line, paths)).toContainEqual(expect.stringMatching(report));
    });
  });
});

describe('Loki and Grafana', () => {
  it('when Loki starts, then it keeps structured metadata in a TSDB v13 index on its volume for 7 days', () => {
    expect(lokiDataDir()).toBe('/loki');
    expect(lokiProblems(loki, lokiDataDir())).toEqual([]);
    expect(seconds(loki.limits_config?.retention_period)).toBe(7 * 86400);
  });

  it('when Grafana shows a record, then its trace_id links to the trace in a provisioned Jaeger', () => {
    expect(traceLinkProblems(datasources())).toEqual([]);
    expect(datasources().find((d) => d.type === 'jaeger')).toMatchObject({
      uid: 'jaeger',
      url: 'http://jaeger:16686',
    });
  });

  it('when the logs panel is read, then it reads the Loki datasource and selects the name both paths give the API', () => {
    // OTLP path: the SDK's service.name is OTEL_SERVICE_NAME (the Compose API keeps the default). Agent path:
    // service.name is the pod's app.kubernetes.io/name label.
    const name = settings.OTEL_SERVICE_NAME.default;
    expect(environmentOf(compose.services.api!).OTEL_SERVICE_NAME).toBeUndefined();
    expect(appPodName()).toBe(name);
    expect(logsPanelProblems(dashboards(), datasources(), name)).toEqual([]);
  });

  describe('the checks catch the faults they guard against', () => {
    it('when Loki loses structured metadata, moves back to schema v12 or keeps data off its volume, then it is reported', () => {
      const broken = clone(loki);
      broken.limits_config!.allow_structured_metadata = false;
      broken.schema_config!.configs![0]!.schema = 'v12';
      broken.compactor!.working_directory = '/tmp/compactor';
      broken.limits_config!.retention_period = 'a week';
      expect(lokiProblems(broken, '/loki')).toEqual([
        'the current schema is v12, not v13',
        'allow_structured_metadata is not true: OTLP records with trace ids and attributes are refused',
        'retention_period a week is not a day or more',
        '/tmp/compactor is not on the data volume /loki',
      ]);
      const later = clone(loki);
      later.schema_config!.configs!.push({
        from: '2030-01-01',
        store: 'boltdb-shipper',
        object_store: 'filesystem',
        schema: 'v13',
      });
      expect(lokiProblems(later, '/loki')).toEqual([
        'the current schema stores its index in boltdb-shipper, not tsdb',
      ]);
    });

    it('when the trace link names a datasource that is not provisioned or matches the line, then it is reported', () => {
      const broken = clone(datasources());
      const link = broken.find((d) => d.type === 'loki')!.jsonData!.derivedFields![0]!;
      link.datasourceUid = 'tempo';
      link.matcherType = 'regex';
      link.url = '${__value.raw}';
      expect(traceLinkProblems(broken)).toEqual([
        'the trace link matches regex, not the structured metadata (label) trace_id',
        'the trace link opens datasource tempo, which is not provisioned',
        "the trace link's url is ${__value.raw}, not $${__value.raw} (`$$` escapes `$` in provisioning)",
      ]);
      const promOnly = clone(datasources()).map((d) =>
        d.type === 'jaeger' ? { ...d, type: 'prometheus' } : d,
      );
      expect(traceLinkProblems(promOnly)).toEqual([
        'the trace link opens jaeger, a prometheus datasource, not a trace one',
      ]);
    });

    it('when the logs panel reads Prometheus or another service, then it is reported', () => {
      const broken = clone(dashboards());
      const panel = broken.flatMap((d) => panelsOf(d.panels)).find((p) => p.type === 'logs')!;
      panel.datasource = { type: 'prometheus', uid: 'prometheus' };
      panel.targets![0]!.expr = '{service_name="api"}';
      expect(logsPanelProblems(broken, datasources(), 'reliability-api')).toEqual([
        expect.stringMatching(
          /panel "Log lines": datasource prometheus\/prometheus, not the Loki datasource loki\/loki$/,
        ),
        expect.stringMatching(/panel "Log lines": no query on service_name="reliability-api"$/),
      ]);
      panel.targets![0]!.datasource = { type: 'loki', uid: 'logs' };
      expect(logsPanelProblems(broken, datasources(), 'api')).toContainEqual(
        expect.stringMatching(
          /panel "Log lines": datasource loki\/logs, not the Loki datasource loki\/loki$/,
        ),
      );
      expect(logsPanelProblems([], datasources(), 'reliability-api')).toEqual(['no logs panel']);
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// deploy/kubernetes/logging

/**
 * Every object valid against the schema of its kind: the shared helper's (kubernetes-models, which it has
 * for the Namespace, RBAC and DaemonSet too), and here the PriorityClass, which only this directory uses.
 */
function loggingSchemaErrors(objects: readonly K8sObject[]): string[] {
  return objects.flatMap((object) => {
    if (`${object.apiVersion}/${object.kind}` !== 'scheduling.k8s.io/v1/PriorityClass')
      return schemaErrors([object]);
    try {
      new PriorityClass(clone(object) as never).validate();
      return [];
    } catch (error) {
      return [`${describeObject(object)}: ${error instanceof Error ? error.message : String(error)}`];
    }
  });
}

const AGENT = 'otel-agent';
const NAMESPACE = 'observability';
type AgentDaemonSet = IDaemonSet & { metadata: { name: string; namespace?: string } };
const daemonSetOf = (objects: readonly K8sObject[]) =>
  objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === AGENT) as unknown as
    AgentDaemonSet | undefined;
const agentContainerOf = (objects: readonly K8sObject[]) =>
  daemonSetOf(objects)?.spec?.template.spec?.containers[0];

/**
 * The shared pod policy of the app, run on the agent's pod template (presented as a Deployment: the shared
 * helpers read the pod templates of the app's workload kinds, which a DaemonSet is not).
 */
function podPolicyOnAgent(check: Check, objects: readonly K8sObject[]): string[] {
  const daemonSet = daemonSetOf(objects);
  if (daemonSet === undefined) return [`no DaemonSet/${AGENT}`];
  const asWorkload = { ...clone(daemonSet), kind: 'Deployment' } as unknown as K8sObject;
  return check([asWorkload]).map((line) => line.replace(/^Deployment\//, 'DaemonSet/'));
}

/**
 * What the app's pod policy reports on the agent, and nothing else: it runs as root, because the kubelet's
 * log files are root's and unreadable by others (see daemonset.yaml). Everything else of the policy holds:
 * no capability, no privilege escalation, a read-only root filesystem, RuntimeDefault seccomp, no host
 * namespace, pinned image, resources.
 */
const ROOT_EXCEPTION = [
  `DaemonSet/${AGENT}/otel-collector: runAsNonRoot is not true`,
  `DaemonSet/${AGENT}/otel-collector: runs as user 0`,
  `DaemonSet/${AGENT}/otel-collector: runs as group 0`,
];
const SHARED_POLICY: [string, Check][] = [
  ['imageTags', podPolicy.imageTags],
  ['resources', podPolicy.resources],
  ['seccomp', podPolicy.seccomp],
  ['containerHardening', podPolicy.containerHardening],
  ['nonRoot', podPolicy.nonRoot],
];

/**
 * The agent's own rules: on every node (all taints tolerated, a priority class that exists), /var/log/pods
 * the only host path and mounted read-only, the configuration from the rendered ConfigMap at the path its
 * --config names, probes on the health_check extension's port, the Compose collector's image.
 */
function agentProblems(
  objects: readonly K8sObject[],
  config: CollectorConfig,
  configText: string,
  image: string | undefined,
): string[] {
  const daemonSet = daemonSetOf(objects);
  if (daemonSet === undefined) return [`no DaemonSet/${AGENT}`];
  const out: string[] = [];
  const pod = daemonSet.spec?.template.spec;
  const container = pod?.containers[0];
  if (daemonSet.metadata.namespace !== NAMESPACE)
    out.push(`the DaemonSet is in ${daemonSet.metadata.namespace}`);
  if (
    !(pod?.tolerations ?? []).some(
      (t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined,
    )
  )
    out.push('not every taint is tolerated: tainted nodes would have no agent');
  if (pod?.priorityClassName === undefined) out.push('no priorityClassName');
  else if (!objects.some((o) => o.kind === 'PriorityClass' && o.metadata.name === pod.priorityClassName))
    out.push(`priority class ${pod.priorityClassName} is not rendered`);
  for (const volume of pod?.volumes ?? []) {
    if (volume.hostPath === undefined) continue;
    if (volume.hostPath.path !== POD_LOGS) out.push(`host path ${volume.hostPath.path} is mounted`);
    for (const mount of (container?.volumeMounts ?? []).filter((m) => m.name === volume.name)) {
      if (mount.readOnly !== true)
        out.push(`host path ${volume.hostPath.path} is mounted writable at ${mount.mountPath}`);
    }
  }
  if (!(pod?.volumes ?? []).some((v) => v.hostPath?.path === POD_LOGS))
    out.push(`${POD_LOGS} is not mounted`);

  const configArg = (container?.args ?? []).find((a) => a.startsWith('--config='))?.slice('--config='.length);
  const configVolume = (pod?.volumes ?? []).find((v) => v.configMap !== undefined);
  const configMount = (container?.volumeMounts ?? []).find((m) => m.name === configVolume?.name);
  const configMap = all(objects as K8sObject[], 'ConfigMap').find(
    (c) => c.metadata.name === configVolume?.configMap?.name,
  );
  if (configArg === undefined || configMount === undefined || configMap === undefined)
    out.push('the configuration is not mounted from a rendered ConfigMap where --config names it');
  else {
    const key = path.posix.relative(configMount.mountPath, configArg);
    if (configMap.data?.[key] !== configText)
      out.push(`ConfigMap/${configMap.metadata.name} ${key} is not ${AGENT_COLLECTOR}`);
  }

  const health = (config.extensions?.health_check ?? {}) as { endpoint?: string };
  const healthPort = health.endpoint === undefined ? undefined : Number(health.endpoint.split(':').at(-1));
  const portOf = (port: number | string | undefined) =>
    typeof port === 'number' ? port : container?.ports?.find((p) => p.name === port)?.containerPort;
  for (const probe of ['livenessProbe', 'readinessProbe'] as const) {
    const get = container?.[probe]?.httpGet;
    if (get === undefined) out.push(`no ${probe}`);
    else if (portOf(get.port) !== healthPort)
      out.push(`${probe} asks port ${String(get.port)}, not the health_check extension's ${healthPort}`);
  }
  if (container?.image !== image) out.push(`image ${container?.image}, not the Compose collector's ${image}`);
  if (!(container?.env ?? []).some((e) => e.name === 'LOKI_OTLP_ENDPOINT' && e.value !== undefined))
    out.push('LOKI_OTLP_ENDPOINT has no value');
  if (pod?.hostNetwork === true) out.push('the agent shares the node network');
  return out;
}

const RBAC_READS: Record<string, string[]> = { '': ['namespaces', 'pods'], apps: ['replicasets'] };
const READ_VERBS = ['get', 'list', 'watch'];

/** Read-only access to exactly what k8sattributes looks up, bound to the agent's service account. */
function rbacProblems(objects: readonly K8sObject[]): string[] {
  const out: string[] = [];
  const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === AGENT) as
    (IClusterRole & K8sObject) | undefined;
  if (role === undefined) return [`no ClusterRole/${AGENT}`];
  const granted: Record<string, string[]> = {};
  for (const rule of role.rules ?? []) {
    const verbs = rule.verbs.filter((v) => !READ_VERBS.includes(v));
    if (verbs.length > 0)
      out.push(`ClusterRole/${AGENT} grants ${verbs.join(', ')} on ${(rule.resources ?? []).join(', ')}`);
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        if (READ_VERBS.every((v) => rule.verbs.includes(v))) (granted[group] ??= []).push(resource);
      }
    }
  }
  for (const group of Object.keys(granted)) granted[group]!.sort();
  if (JSON.stringify(granted) !== JSON.stringify(RBAC_READS))
    out.push(`ClusterRole/${AGENT} reads ${JSON.stringify(granted)}, not ${JSON.stringify(RBAC_READS)}`);
  const binding = objects.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === AGENT) as
    (IClusterRoleBinding & K8sObject) | undefined;
  const pod = daemonSetOf(objects)?.spec?.template.spec;
  const bound = (binding?.subjects ?? []).some(
    (s) => s.kind === 'ServiceAccount' && s.name === pod?.serviceAccountName && s.namespace === NAMESPACE,
  );
  if (binding?.roleRef.name !== AGENT || binding.roleRef.kind !== 'ClusterRole' || !bound)
    out.push(`ClusterRole/${AGENT} is not bound to the agent's service account ${pod?.serviceAccountName}`);
  if (!objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === pod?.serviceAccountName))
    out.push(`ServiceAccount/${pod?.serviceAccountName} is not rendered`);
  if (pod?.automountServiceAccountToken !== true)
    out.push('the agent does not mount its token: k8sattributes cannot call the API');
  return out;
}

const kubectl = requireKubectl();

describe.skipIf(!kubectl)('deploy/kubernetes/logging', () => {
  let rendered: K8sObject[];
  beforeAll(() => {
    rendered = kustomize(LOGGING_DIR);
  });

  it('when it is rendered, then it holds the agent and what it needs, each object valid against its schema', () => {
    expect(rendered.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/otel-agent',
      'ClusterRoleBinding/otel-agent',
      expect.stringMatching(/^ConfigMap\/otel-agent-config-[a-z0-9]{10}$/) as unknown as string,
      'DaemonSet/otel-agent',
      'Namespace/observability',
      'PriorityClass/node-log-agent',
      'Service/otel-collector',
      'ServiceAccount/otel-agent',
    ]);
    expect(loggingSchemaErrors(rendered)).toEqual([]);
    const namespaced = rendered.filter((o) => ['ConfigMap', 'DaemonSet', 'ServiceAccount'].includes(o.kind));
    expect(namespaced.map((o) => o.metadata.namespace)).toEqual(namespaced.map(() => NAMESPACE));
    // hostPath is refused by the baseline Pod Security level: the namespace enforces privileged, and says so.
    const namespace = rendered.find((o) => o.kind === 'Namespace')!;
    expect(namespace.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'privileged',
      'pod-security.kubernetes.io/warn': 'baseline',
    });
  });

  it("when the agent runs, then it reads the nodes' /var/log/pods read-only with its configuration, on every node", () => {
    expect(
      agentProblems(
        rendered,
        agentCollector,
        readRepoFile(AGENT_COLLECTOR),
        compose.services['otel-collector']?.image,
      ),
    ).toEqual([]);
    expect(agentContainerOf(rendered)?.env?.find((e) => e.name === 'LOKI_OTLP_ENDPOINT')?.value).toBe(
      'http://loki-gateway.observability.svc/otlp',
    );
    expect(envProblems(agentCollector, agentContainerOf(rendered))).toEqual([]);
    expect(k8sAttributesProblems(agentCollector, agentContainerOf(rendered))).toEqual([]);
    const ownPod = `${POD_LOGS}/${NAMESPACE}_${AGENT}-x7k2p_3f0c9a51/${agentContainerOf(rendered)!.name}/0.log`;
    expect(matchesAny((agentCollector.receivers!.filelog as Filelog).exclude, ownPod)).toBe(true);
  });

  it("when the app's ConfigMap sends its traces to otel-collector.observability.svc:4318, then that Service reaches this node's agent, which forwards them", () => {
    expect(gatewayProblems(rendered, agentCollector, appOtlpEndpoint())).toEqual([]);
  });

  it('when the gateway is broken, then the check names what no longer reaches the trace backend', () => {
    const objects = structuredClone(rendered);
    const service = objects.find((o) => o.kind === 'Service')! as K8sObject & {
      spec: Record<string, unknown>;
    };
    service.spec.internalTrafficPolicy = 'Cluster';
    (service.spec.selector as Record<string, string>)['app.kubernetes.io/name'] = 'otel-collector';
    const config = clone(agentCollector);
    config.service!.pipelines!.traces!.exporters = ['otlphttp/loki'];
    expect(gatewayProblems(objects, config, appOtlpEndpoint())).toEqual([
      'Service otel-collector: selects no agent pod',
      'Service otel-collector: internalTrafficPolicy is not Local',
      'traces pipeline: does not export to TRACES_OTLP_ENDPOINT',
    ]);
    expect(gatewayProblems(rendered, agentCollector, 'http://otel-collector.monitoring.svc:4318')).toEqual([
      'the app sends OTLP to http://otel-collector.monitoring.svc:4318, which is not this Service',
    ]);
  });

  it('when its access is read, then it only reads pods, namespaces and replicasets, with its own service account', () => {
    expect(rbacProblems(rendered)).toEqual([]);
  });

  it.each(SHARED_POLICY)(
    "when the app's %s rule runs on the agent, then it reports nothing but the stated root exception",
    (name, check) => {
      expect(podPolicyOnAgent(check, rendered)).toEqual(name === 'nonRoot' ? ROOT_EXCEPTION : []);
    },
  );

  describe('the checks catch the faults they guard against', () => {
    const daemonSet = (o: K8sObject[]) => daemonSetOf(o)!;
    const pod = (o: K8sObject[]) => daemonSet(o).spec!.template.spec!;
    const faults: {
      fault: string;
      check: (o: K8sObject[]) => string[];
      report: RegExp;
      mutate: (o: K8sObject[]) => void;
    }[] = [
      {
        fault: 'a field has the wrong type',
        check: loggingSchemaErrors,
        report: /^DaemonSet\/observability\/otel-agent: .*revisionHistoryLimit/,
        mutate: (o) =>
          ((daemonSet(o).spec as unknown as Record<string, unknown>).revisionHistoryLimit = 'five'),
      },
      {
        fault: 'the priority class has a value of the wrong type',
        check: loggingSchemaErrors,
        report: /^PriorityClass\/node-log-agent: .*value/,
        mutate: (o) =>
          ((o.find((x) => x.kind === 'PriorityClass') as Record<string, unknown>).value = 'high'),
      },
      {
        fault: 'a kind without a schema is added',
        check: loggingSchemaErrors,
        report: /^Secret\/loki-credentials: no schema for v1 Secret$/,
        mutate: (o) => o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'loki-credentials' } }),
      },
      {
        fault: 'the pod logs are mounted writable',
        check: (o) =>
          agentProblems(
            o,
            agentCollector,
            readRepoFile(AGENT_COLLECTOR),
            compose.services['otel-collector']?.image,
          ),
        report: /^host path \/var\/log\/pods is mounted writable/,
        mutate: (o) =>
          (pod(o).containers[0]!.volumeMounts!.find((m) => m.mountPath === POD_LOGS)!.readOnly = false),
      },
      {
        fault: 'the whole node filesystem is mounted',
        check: (o) =>
          agentProblems(
            o,
            agentCollector,
            readRepoFile(AGENT_COLLECTOR),
            compose.services['otel-collector']?.image,
          ),
        report: /^host path \/ is mounted$/,
        mutate: (o) => (pod(o).volumes!.find((v) => v.hostPath !== undefined)!.hostPath!.path = '/'),
      },
      {
        fault: 'the tolerations are dropped',
        check: (o) =>
          agentProblems(
            o,
            agentCollector,
            readRepoFile(AGENT_COLLECTOR),
            compose.services['otel-collector']?.image,
          ),
        report: /^not every taint is tolerated/,
        mutate: (o) =>
          (pod(o).tolerations = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }]),
      },
      {
        fault: 'the probes ask another port',
        check: (o) =>
          agentProblems(
            o,
            agentCollector,
            readRepoFile(AGENT_COLLECTOR),
            compose.services['otel-collector']?.image,
          ),
        report: /^readinessProbe asks port 8888, not the health_check extension's 13133$/,
        mutate: (o) => (pod(o).containers[0]!.readinessProbe!.httpGet!.port = 8888),
      },
      {
        fault: 'the configuration is mounted elsewhere than --config reads it',
        check: (o) =>
          agentProblems(
            o,
            agentCollector,
            readRepoFile(AGENT_COLLECTOR),
            compose.services['otel-collector']?.image,
          ),
        report: /is not deploy\/kubernetes\/logging\/otel-collector-config.yaml$/,
        mutate: (o) => (pod(o).containers[0]!.args = ['--config=/etc/otelcol-contrib/collector.yaml']),
      },
      {
        fault: 'the ClusterRole may change pods',
        check: rbacProblems,
        report: /^ClusterRole\/otel-agent grants delete on pods, namespaces$/,
        mutate: (o) =>
          (o.find((x) => x.kind === 'ClusterRole') as unknown as IClusterRole).rules![0]!.verbs.push(
            'delete',
          ),
      },
      {
        fault: 'the ClusterRole reads secrets too',
        check: rbacProblems,
        report: /reads .*"secrets"/,
        mutate: (o) =>
          (o.find((x) => x.kind === 'ClusterRole') as unknown as IClusterRole).rules![0]!.resources!.push(
            'secrets',
          ),
      },
      {
        fault: 'the token is not mounted',
        check: rbacProblems,
        report: /^the agent does not mount its token/,
        mutate: (o) => (pod(o).automountServiceAccountToken = false),
      },
      {
        fault: 'the agent may escalate privileges',
        check: (o) => podPolicyOnAgent(podPolicy.containerHardening, o),
        report: /^DaemonSet\/otel-agent\/otel-collector: privilege escalation is allowed$/,
        mutate: (o) => (pod(o).containers[0]!.securityContext!.allowPrivilegeEscalation = true),
      },
      {
        fault: 'the agent gets CAP_DAC_READ_SEARCH',
        check: (o) => podPolicyOnAgent(podPolicy.containerHardening, o),
        report: /adds capabilities DAC_READ_SEARCH$/,
        mutate: (o) => (pod(o).containers[0]!.securityContext!.capabilities!.add = ['DAC_READ_SEARCH']),
      },
      {
        fault: 'the agent runs privileged',
        check: (o) => podPolicyOnAgent(podPolicy.containerHardening, o),
        report: /: privileged$/,
        mutate: (o) => (pod(o).containers[0]!.securityContext!.privileged = true),
      },
    ];

    it.each(faults)('when $fault, then it is reported', ({ check, mutate, report }) => {
      const objects = clone(rendered);
      expect(check(objects)).toEqual([]);
      mutate(objects);
      expect(check(objects)).toContainEqual(expect.stringMatching(report));
    });

    it('when the pod gives away more than running as root (group 0 for its volumes), then it is reported beyond the exception', () => {
      const objects = clone(rendered);
      pod(objects).securityContext!.fsGroup = 0;
      expect(podPolicyOnAgent(podPolicy.nonRoot, objects)).toEqual([
        ...ROOT_EXCEPTION,
        'DaemonSet/otel-agent/otel-collector: fsGroup is 0',
      ]);
    });

    it('when k8sattributes passes through, loses its pod uid association or its node, then it is reported', () => {
      const config = clone(agentCollector);
      const k8s = config.processors!.k8sattributes as K8sAttributes;
      k8s.passthrough = true;
      k8s.pod_association = [{ sources: [{ from: 'connection' }] }];
      expect(k8sAttributesProblems(config, agentContainerOf(rendered))).toEqual([
        'k8sattributes passes through: nothing would look the pods up',
        'k8sattributes does not associate records with pods by the resource attribute k8s.pod.uid',
      ]);
      const container = clone(agentContainerOf(rendered)!);
      container.env = container.env!.filter((e) => e.name !== 'K8S_NODE_NAME');
      expect(k8sAttributesProblems(agentCollector, container)).toEqual([
        'k8sattributes watches pods of node K8S_NODE_NAME, which the container does not set from spec.nodeName',
      ]);
      const resource = clone(agentCollector);
      (resource.processors!.resource as { attributes: { action: string }[] }).attributes[0]!.action =
        'upsert';
      expect(k8sAttributesProblems(resource, agentContainerOf(rendered))).toEqual([
        'service.name is set with upsert, not insert',
      ]);
    });

    it('when a variable the configuration reads is not set, then it is reported', () => {
      const objects = clone(rendered);
      const container = pod(objects).containers[0]!;
      container.env = container.env!.filter((e) => e.name !== 'POD_IP');
      expect(envProblems(agentCollector, container)).toEqual(['${env:POD_IP} is not set in the container']);
    });
  });
});

/** The OTLP endpoint the app's base ConfigMap gives it. */
function appOtlpEndpoint(): string {
  const configMap = readYaml('deploy/kubernetes/base/configmap.yaml') as { data: Record<string, string> };
  return configMap.data.OTLP_ENDPOINT!;
}

/**
 * The node-local OTLP gateway: a Service named as the app's OTLP_ENDPOINT, in this namespace, on 4318,
 * selecting the agent's pods, kept on the sender's node; the agent receives OTLP and its traces pipeline
 * exports to TRACES_OTLP_ENDPOINT.
 */
function gatewayProblems(objects: K8sObject[], config: CollectorConfig, appEndpoint: string): string[] {
  const problems: string[] = [];
  const service = objects.find((o) => o.kind === 'Service') as
    | (K8sObject & {
        spec: {
          selector?: Record<string, string>;
          internalTrafficPolicy?: string;
          ports?: { port: number; targetPort?: string | number }[];
        };
      })
    | undefined;
  const url = new URL(appEndpoint);
  if (
    service === undefined ||
    url.hostname !== `${service.metadata.name}.${service.metadata.namespace}.svc` ||
    !(service.spec.ports ?? []).some((p) => String(p.port) === url.port)
  ) {
    return [`the app sends OTLP to ${appEndpoint}, which is not this Service`];
  }
  const daemonSet = objects.find((o) => o.kind === 'DaemonSet') as
    (K8sObject & { spec: { template: { metadata?: { labels?: Record<string, string> } } } }) | undefined;
  const podLabels = daemonSet?.spec.template.metadata?.labels ?? {};
  const selector = service.spec.selector ?? {};
  if (Object.keys(selector).length === 0 || !Object.entries(selector).every(([k, v]) => podLabels[k] === v))
    problems.push(`Service ${service.metadata.name}: selects no agent pod`);
  if (service.spec.internalTrafficPolicy !== 'Local')
    problems.push(`Service ${service.metadata.name}: internalTrafficPolicy is not Local`);
  const traces = config.service?.pipelines?.traces;
  if (!(traces?.receivers ?? []).includes('otlp')) problems.push('traces pipeline: does not receive OTLP');
  const exportsToBackend = (traces?.exporters ?? []).some(
    (id) =>
      (config.exporters?.[id] as { endpoint?: string } | undefined)?.endpoint ===
      '${env:TRACES_OTLP_ENDPOINT}',
  );
  if (!exportsToBackend) problems.push('traces pipeline: does not export to TRACES_OTLP_ENDPOINT');
  return problems;
}
