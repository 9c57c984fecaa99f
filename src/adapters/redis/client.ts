// A Redis client tuned so that Redis trouble never stalls a request: no offline queue (commands fail at
// once while disconnected), short connect and command deadlines, and reconnection in the background.
// Every command is measured (when given a registry) and traced (inside a trace).
import { SpanKind, SpanStatusCode, context, trace, type Attributes } from '@opentelemetry/api';
import { Redis, type Command } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Log } from '../../lib/log.js';
import { BoundHistogram, type HistogramSeries } from '../../observability/bound-metrics.js';
import { TRACER_NAME } from '../../observability/tracing.js';

export interface RedisOptions {
  url: string;
  logger: Log;
  /** Per-command deadline. A cache or limiter that waits longer than this is slower than having none. */
  commandTimeoutMs?: number;
  connectionName?: string;
  /** Registry for `redis_command_duration_seconds`; without one, commands are traced but not measured. */
  metrics?: Registry;
  /**
   * Concurrent commands share one round trip. Their spans are then left out: ioredis sends the batch on a
   * later tick, under whichever request opened it. A caller that needs spans makes its own.
   */
  autoPipelining?: boolean;
  /** Log connection state changes (true by default); off for a client whose caller reports its failures. */
  logState?: boolean;
}

export function createRedis(options: RedisOptions): Redis {
  const log = options.logger;
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: options.commandTimeoutMs ?? 500,
    connectionName: options.connectionName,
    enableAutoPipelining: options.autoPipelining === true,
    // Reconnect forever, backing off to 2 s: Redis is optional, so we keep trying instead of giving up.
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
  });
  instrumentRedis(client, options.metrics, { traced: options.autoPipelining !== true });
  if (options.logState === false) {
    client.on('error', () => undefined); // an 'error' without a listener would be thrown
    return client;
  }
  // Log state changes, not every failed reconnect attempt (that would be a line every 2 s during an outage).
  let healthy: boolean | undefined;
  client.on('ready', () => {
    if (healthy !== true) log.info({ redis: redactUrl(options.url) }, 'redis connected');
    healthy = true;
  });
  client.on('error', (error: Error) => {
    if (healthy !== false) log.warn({ redis: redactUrl(options.url), err: error }, 'redis unavailable');
    healthy = false;
  });
  return client;
}

// From 0.5 ms (a GET on the same network) to 1 s (twice the default command deadline).
export const REDIS_COMMAND_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
const DURATION_METRIC = 'redis_command_duration_seconds';

function commandHistogram(registry: Registry): BoundHistogram<'command'> {
  // Every client of one app shares the series; prom-client refuses a second metric of the same name.
  // A bound histogram: the rate limiter sends one command per request.
  const existing = registry.getSingleMetric(DURATION_METRIC);
  if (existing !== undefined) return existing as unknown as BoundHistogram<'command'>;
  return new BoundHistogram({
    name: DURATION_METRIC,
    help: 'Time of one Redis command, from send to reply (or failure), by command name.',
    labelNames: ['command'],
    buckets: REDIS_COMMAND_DURATION_BUCKETS,
    registers: [registry],
  });
}

// Marks a command already observed: ioredis may send one command more than once (a resend after a reconnect).
const OBSERVED = Symbol('observed');

/**
 * ioredis has no command hooks, and the OpenTelemetry ioredis instrumentation patches the module through
 * require hooks that this ESM build never goes through (ioredis's own diagnostics_channel events are
 * process-wide, with no way to tell which app's registry a command belongs to). So the clients this project
 * creates get their sendCommand wrapped. Spans carry the command name only: arguments hold keys that may
 * name users. Commands outside any trace (connection handshakes, background work) are measured but start
 * no trace of their own.
 *
 * `traced: false` is for a client with enableAutoPipelining: ioredis sends an auto-pipelined batch on the
 * next tick, in the context of the request that opened it, so its commands' spans would hang under the
 * wrong request.
 */
export function instrumentRedis(
  client: Redis,
  registry: Registry | undefined,
  options: { traced?: boolean } = {},
): void {
  const traced = options.traced ?? true;
  const histogram = registry === undefined ? undefined : commandHistogram(registry);
  // The label is bounded: ioredis's built-in command names; anything else counts as "other".
  const known = new Set(client.getBuiltinCommands());
  const children = new Map<string, HistogramSeries>();
  const attributes: Attributes = {
    'db.system.name': 'redis',
    'db.namespace': String(client.options.db ?? 0),
  };
  if (client.options.host !== undefined) attributes['server.address'] = client.options.host;
  if (client.options.port !== undefined) attributes['server.port'] = client.options.port;

  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: Command & { [OBSERVED]?: true }, ...rest) => {
    if (command[OBSERVED] !== true) {
      command[OBSERVED] = true;
      const lower = command.name.toLowerCase();
      const name = known.has(lower) ? lower : 'other';
      const started = performance.now();
      const span =
        !traced || trace.getSpan(context.active()) === undefined
          ? undefined
          : trace.getTracer(TRACER_NAME).startSpan(name, {
              kind: SpanKind.CLIENT,
              attributes: { ...attributes, 'db.operation.name': name },
            });
      const settle = (error?: unknown) => {
        if (histogram !== undefined) {
          let child = children.get(name);
          if (child === undefined) children.set(name, (child = histogram.series({ command: name })));
          child.observe((performance.now() - started) / 1000);
        }
        if (span === undefined) return;
        if (error !== undefined) {
          span.recordException(error as Error);
          span.setAttribute('error.type', (error as Error).name || 'error');
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        }
        span.end();
      };
      // Observing the command's own promise leaves what sendCommand returns to the caller untouched.
      command.promise.then(
        () => settle(),
        (error: unknown) => settle(error ?? new Error('redis command failed')),
      );
    }
    return send(command, ...rest);
  };
}

export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
