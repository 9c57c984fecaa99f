// OpenTelemetry tracing: when an OTLP endpoint is configured, a tracer provider that batches spans to
// `<endpoint>/v1/traces` and is registered as the process's global provider; and the trace ids of log lines.
import {
  DiagLogLevel,
  TraceFlags,
  context,
  diag,
  isSpanContextValid,
  propagation,
  trace,
  type Span,
} from '@opentelemetry/api';
import type * as Resources from '@opentelemetry/resources';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config/schema.js';
import { withDeadline } from '../lib/deadline.js';
import type { Log } from '../lib/log.js';

/** The tracer every instrumentation of this service asks the global API for (a no-op while tracing is off). */
export const TRACER_NAME = 'reliability-api';

export type TracingConfig = Pick<
  Config,
  | 'ENVIRONMENT'
  | 'OTLP_ENDPOINT'
  | 'OTEL_EXPORTER_OTLP_ENDPOINT'
  | 'OTEL_SERVICE_NAME'
  | 'OTEL_TRACES_SAMPLER'
  | 'OTEL_TRACES_SAMPLER_ARG'
>;

/** The OTLP base URL, or undefined when tracing is off. */
export function otlpEndpoint(
  config: Partial<Pick<Config, 'OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_ENDPOINT'>>,
): string | undefined {
  return config.OTLP_ENDPOINT ?? config.OTEL_EXPORTER_OTLP_ENDPOINT;
}

/** The resource of every span and exported log record: which service, which version, where. */
export function serviceResource(
  resources: typeof Resources,
  config: Pick<Config, 'ENVIRONMENT' | 'OTEL_SERVICE_NAME'>,
  version: string,
) {
  return resources.defaultResource().merge(
    resources.resourceFromAttributes({
      'service.name': config.OTEL_SERVICE_NAME,
      'service.version': version,
      // The current name, and the older one that Jaeger and many dashboards still group by.
      'deployment.environment.name': config.ENVIRONMENT,
      'deployment.environment': config.ENVIRONMENT,
    }),
  );
}

export interface TraceFields {
  trace_id: string;
  span_id: string;
  /** W3C trace flags as two hex digits: `01` when the trace is sampled (exported), `00` when not. */
  trace_flags: string;
}

/** The log fields that lead from a log line to its trace, or undefined for a span without valid ids. */
export function traceFields(span: Span | undefined): TraceFields | undefined {
  if (span === undefined) return undefined;
  const ids = span.spanContext();
  return isSpanContextValid(ids)
    ? {
        trace_id: ids.traceId,
        span_id: ids.spanId,
        trace_flags: ids.traceFlags & TraceFlags.SAMPLED ? '01' : '00',
      }
    : undefined;
}

/** pino mixin: the ids of the span active where the line is written. It must return a fresh object. */
export function traceLogMixin(): Partial<TraceFields> {
  return traceFields(trace.getSpan(context.active())) ?? {};
}

// A flush on close that outlives this is cut short: a dead collector must not hold up the shutdown.
const FLUSH_DEADLINE_MS = 5_000;
// Bounds every attribute value (SQL text, user agents), so one odd request cannot bloat an export.
const ATTRIBUTE_VALUE_LIMIT = 4_096;

export interface Tracing {
  /** Exports what is buffered, then unregisters the global provider so a later app starts clean. */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing for one app. The SDK is imported here, not at the top of the file: it costs start-up time
 * and memory that a service without tracing never needs.
 */
export async function startTracing(
  config: TracingConfig,
  service: { version: string },
  log: Log,
): Promise<Tracing> {
  const endpoint = otlpEndpoint(config);
  if (endpoint === undefined) throw new Error('tracing needs OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT');
  const [node, base, otlp, resources, core, hooks] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
  ]);

  const ratio = () => new base.TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG);
  const samplers: Record<TracingConfig['OTEL_TRACES_SAMPLER'], () => Sampler> = {
    always_on: () => new base.AlwaysOnSampler(),
    always_off: () => new base.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: () => new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() }),
    parentbased_always_off: () => new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new base.ParentBasedSampler({ root: ratio() }),
  };

  const provider = new node.NodeTracerProvider({
    resource: serviceResource(resources, config, service.version),
    sampler: samplers[config.OTEL_TRACES_SAMPLER](),
    spanLimits: { attributeValueLengthLimit: ATTRIBUTE_VALUE_LIMIT },
    spanProcessors: [
      new base.BatchSpanProcessor(
        new otlp.OTLPTraceExporter({
          url: `${endpoint.replace(/\/+$/, '')}/v1/traces`,
          timeoutMillis: 5_000,
        }),
        { exportTimeoutMillis: 5_000 },
      ),
    ],
  });

  // Registered by hand rather than provider.register(), which ignores a refused registration: two apps
  // tracing in one process would otherwise silently share the first one's provider.
  if (!trace.setGlobalTracerProvider(provider)) {
    await provider.shutdown();
    throw new Error('another tracer provider is already registered in this process; close its app first');
  }
  context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  // The SDK reports failed exports through diag, which is silent unless a logger is set.
  diag.setLogger(
    {
      error: (message, ...args) => log.warn({ detail: args.map(String) }, `opentelemetry: ${message}`),
      warn: (message, ...args) => log.warn({ detail: args.map(String) }, `opentelemetry: ${message}`),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );

  let stopped: Promise<void> | undefined;
  return {
    shutdown() {
      stopped ??= (async () => {
        try {
          await withDeadline(provider.shutdown(), FLUSH_DEADLINE_MS);
        } catch (error) {
          log.warn({ err: error }, 'tracing: spans not exported before shutdown');
        } finally {
          trace.disable();
          context.disable();
          propagation.disable();
          diag.disable();
        }
      })();
      return stopped;
    },
  };
}
