// Log records over OTLP (OTEL_LOGS_EXPORTER=otlp): every line the logger writes to stdout is also handed,
// already serialized and redacted, to the OpenTelemetry logs SDK, which batches it to `<endpoint>/v1/logs`
// on the same collector as the traces, with the line's trace and span ids as the record's trace context.
//
// The bridge from a pino line to a log record is written here, on the official SDK and exporter: the
// maintained alternatives do not fit. @opentelemetry/instrumentation-pino sends logs by patching pino as it
// is required, which these ES modules never go through; pino-opentelemetry-transport pins an older SDK
// (a second copy, with gRPC) and runs in a worker thread that would outlive a drained process.
import { ROOT_CONTEXT, TraceFlags, isSpanContextValid, trace } from '@opentelemetry/api';
import { SeverityNumber, type AnyValueMap, type LogRecord } from '@opentelemetry/api-logs';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { Config } from '../config/schema.js';
import { withDeadline } from '../lib/deadline.js';
import { TRACER_NAME, otlpEndpoint, serviceResource } from './tracing.js';

export type LogExportConfig = Pick<
  Config,
  'ENVIRONMENT' | 'OTEL_SERVICE_NAME' | 'OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_ENDPOINT'
>;

export interface LogExport {
  /** Takes one serialized line (pino's `streamWrite` hook); never throws, never blocks on the network. */
  write(this: void, line: string): void;
  /**
   * Exports what is queued (within LOG_EXPORT_DEADLINE_MS), then stops. False when records were lost: an
   * export the collector refused or never answered, or a queue not emptied in time.
   */
  shutdown(): Promise<boolean>;
}

const SEVERITY: Record<string, SeverityNumber> = {
  trace: SeverityNumber.TRACE,
  debug: SeverityNumber.DEBUG,
  info: SeverityNumber.INFO,
  warn: SeverityNumber.WARN,
  error: SeverityNumber.ERROR,
  fatal: SeverityNumber.FATAL,
};
// pino's numeric levels, for a logger configured without the label formatter.
const LEVEL_LABELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
// Fields of the line that become the record's own parts or its resource, not attributes.
const OWN_FIELDS = new Set([
  'level',
  'time',
  'msg',
  'trace_id',
  'span_id',
  'trace_flags',
  'service',
  'version',
]);

// The last lines of a stopping process get this long to reach the collector; a dead one must not hold up
// the exit.
export const LOG_EXPORT_DEADLINE_MS = 2_000;
// Bounds every attribute value, as for spans: one odd line cannot bloat an export.
const ATTRIBUTE_VALUE_LIMIT = 4_096;
// Lines queued while an export is in flight; past this the SDK drops new ones rather than grow.
const MAX_QUEUE = 8_192;

/** One pino JSON line as a log record: severity, time, body, attributes and the line's trace context. */
export function toLogRecord(line: string): LogRecord {
  let fields: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('not an object');
    fields = parsed as Record<string, unknown>;
  } catch {
    return { body: line.trimEnd() };
  }
  const label = typeof fields.level === 'number' ? LEVEL_LABELS[fields.level] : fields.level;
  const record: LogRecord = { context: ROOT_CONTEXT };
  if (typeof label === 'string' && label in SEVERITY) {
    record.severityNumber = SEVERITY[label];
    record.severityText = label.toUpperCase();
  }
  const time =
    typeof fields.time === 'string' || typeof fields.time === 'number' ? new Date(fields.time) : undefined;
  if (time !== undefined && !Number.isNaN(time.getTime())) record.timestamp = time;
  if (typeof fields.msg === 'string') record.body = fields.msg;
  const attributes: AnyValueMap = {};
  for (const [key, value] of Object.entries(fields)) {
    if (OWN_FIELDS.has(key)) continue;
    if (key === 'err' && value !== null && typeof value === 'object') {
      // The semantic conventions' exception attributes, which backends show as the record's error.
      const err = value as { type?: unknown; message?: unknown; stack?: unknown };
      if (typeof err.type === 'string') attributes['exception.type'] = err.type;
      if (typeof err.message === 'string') attributes['exception.message'] = err.message;
      if (typeof err.stack === 'string') attributes['exception.stacktrace'] = err.stack;
      continue;
    }
    attributes[key] = value as AnyValueMap[string];
  }
  record.attributes = attributes;
  const spanContext = {
    traceId: String(fields.trace_id),
    spanId: String(fields.span_id),
    traceFlags: fields.trace_flags === '00' ? TraceFlags.NONE : TraceFlags.SAMPLED,
  };
  if (isSpanContextValid(spanContext)) record.context = trace.setSpanContext(ROOT_CONTEXT, spanContext);
  return record;
}

/**
 * Starts the export to the configured OTLP endpoint. The SDK is imported here: a service that does not
 * export its logs never loads it.
 */
export async function startLogExport(config: LogExportConfig, version: string): Promise<LogExport> {
  const endpoint = otlpEndpoint(config);
  if (endpoint === undefined)
    throw new Error('log export needs OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT');
  const [sdk, otlp, resources, core] = await Promise.all([
    import('@opentelemetry/sdk-logs'),
    import('@opentelemetry/exporter-logs-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const exporter = new otlp.OTLPLogExporter({
    url: `${endpoint.replace(/\/+$/, '')}/v1/logs`,
    timeoutMillis: 5_000,
  });
  // The SDK reports a failed export only through diag; counted here, so a shutdown can say records were lost.
  let lost = 0;
  const counting: LogRecordExporter = {
    export(records, done) {
      exporter.export(records, (result) => {
        if (result.code !== core.ExportResultCode.SUCCESS) lost += records.length;
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
  const provider = new sdk.LoggerProvider({
    resource: serviceResource(resources, config, version),
    logRecordLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LIMIT },
    processors: [
      new sdk.BatchLogRecordProcessor({
        exporter: counting,
        maxQueueSize: MAX_QUEUE,
        exportTimeoutMillis: 5_000,
      }),
    ],
  });
  const logger = provider.getLogger(TRACER_NAME, version);
  let stopped: Promise<boolean> | undefined;
  return {
    write(line) {
      if (stopped !== undefined) return;
      try {
        logger.emit(toLogRecord(line));
      } catch {
        // A line that cannot be exported is still on stdout; logging must never fail the caller.
      }
    },
    shutdown() {
      stopped ??= withDeadline(provider.shutdown(), LOG_EXPORT_DEADLINE_MS).then(
        () => lost === 0,
        () => false,
      );
      return stopped;
    },
  };
}
