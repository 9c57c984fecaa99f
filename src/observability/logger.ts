// Logger options shared by the service and its CLI: pino JSON lines with ISO times, a fixed `service`
// field, redaction of every credential-bearing field we know of, and trace ids when tracing is on.
import type { FastifyBaseLogger } from 'fastify';
import type { FastifyChildLoggerFactory } from 'fastify/types/logger.js';
import pino, { type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from '../config/schema.js';
import { otlpEndpoint, traceLogMixin } from './tracing.js';

/**
 * Paths censored in every line. pino's wildcards match one level, so the common nestings are listed: a
 * credential at top level, one level down (headers, bodies, config), and in a logged request. Redaction
 * runs on every line, so the list stays as short as that coverage allows.
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  '*.authorization',
  '*.cookie',
  '*.password',
  '*.new_password',
  '*.current_password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.api_key',
  '*.secret',
  '*.SECRET_KEY',
  '*.DATABASE_URL',
  '*.REDIS_URL',
  '*["x-api-key"]',
  '*["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
];

export type LoggerConfig = Pick<Config, 'LOG_LEVEL'> &
  Partial<Pick<Config, 'OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'LOG_FORMAT' | 'ENVIRONMENT'>>;

/** Pretty lines for a person at a terminal in development; JSON for everything that reads logs. */
export function prettyLogs(config: LoggerConfig, isTTY = process.stdout.isTTY === true): boolean {
  if (config.LOG_FORMAT === 'pretty') return true;
  return config.LOG_FORMAT === 'auto' && config.ENVIRONMENT === 'development' && isTTY;
}

export function loggerOptions(config: LoggerConfig, service: string, version: string): pino.LoggerOptions {
  const options = {
    level: config.LOG_LEVEL,
    base: { service, version },
    messageKey: 'msg',
    timestamp: isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label: string) => ({ level: label }) },
  } satisfies pino.LoggerOptions;
  // `trace_id` and `span_id` of the active span on every line. The mixin runs for each line written, so it
  // is only there when tracing is on.
  return otlpEndpoint(config) === undefined ? options : { ...options, mixin: traceLogMixin };
}

export function createLogger(
  config: LoggerConfig,
  service: string,
  version: string,
  destination?: DestinationStream,
  /** Also given every line, as written (OTLP export): pino's streamWrite hook, so stdout stays as it is. */
  tap?: (line: string) => void,
): Logger {
  const options: pino.LoggerOptions = loggerOptions(config, service, version);
  if (tap !== undefined)
    options.hooks = {
      streamWrite: (line: string) => {
        tap(line);
        return line;
      },
    };
  if (destination === undefined && prettyLogs(config))
    // pino-pretty as a stream in this process: lines still go through pino as JSON (and to the tap).
    return pino(
      options,
      pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service,version' }),
    );
  return pino(options, destination ?? new StdoutLines());
}

// pino's isoTime builds a Date and formats it for every line (about 3% of a small request's CPU in the
// bench profile). Within one second only the milliseconds change, so the rest of the string is kept; no
// library offers this, and the test compares it with Date#toISOString over every millisecond of a second.
let cachedSecond = Number.NaN;
let secondPrefix = '';
export function isoTimeAt(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  const ms = epochMs - second * 1000;
  return `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}
const isoTime = () => isoTimeAt(Date.now());

/** Lines buffered until this many bytes are waiting; one write(2) then carries a dozen access lines or more. */
const DEFERRED_BYTES = 3_072;
/**
 * The most one write(2) carries, in whole lines (sonic-boom only splits a line longer than this): PIPE_BUF
 * on Linux, the size up to which a write to a pipe is atomic, so the lines of worker processes sharing one
 * stdout pipe (WEB_CONCURRENCY > 1, a container's log pipe) never interleave.
 */
const MAX_WRITE_BYTES = 4_096;
/** A deferred line waits at most this long, so a quiet service's access log is still near real time. */
const DEFERRED_FLUSH_MS = 100;

/**
 * stdout for the service: pino's destination (sonic-boom), where an ordinary line is written at once and an
 * access line (see deferWrites) may wait in a 3 KiB buffer for at most 100 ms. Writes are synchronous, as
 * pino's default destination's are: one write(2) on the event loop per batch costs less than handing each
 * batch to libuv's thread pool (a futex wake and an eventfd round trip each), and a stdout that stops
 * taking lines slows the service down instead of growing its memory. A write(2) per access line was a
 * quarter of a small request's cost; batching keeps every line, in order, and a warning, the demo password
 * or "ready to serve" is on stdout when the call that logs it returns. On exit pino's destination writes
 * what is buffered; only a SIGKILL can lose the last 100 ms of access lines.
 */
export class StdoutLines implements DestinationStream {
  readonly #boom: ReturnType<typeof pino.destination>;
  /** The view an access logger writes through: no flush of its own. */
  readonly deferred: DestinationStream;

  constructor(fd = 1, flushMs = DEFERRED_FLUSH_MS) {
    this.#boom = pino.destination({
      fd,
      sync: true,
      minLength: DEFERRED_BYTES,
      maxWrite: MAX_WRITE_BYTES,
      periodicFlush: flushMs,
    });
    const boom = this.#boom;
    this.deferred = { write: (line: string) => boom.write(line) };
  }

  write(line: string): void {
    this.#boom.write(line);
    this.#boom.flush();
  }

  flush(cb?: (error?: Error) => void): void {
    this.#boom.flush(cb);
  }

  flushSync(): void {
    this.#boom.flushSync();
  }

  /** Writes what is buffered, stops the timer and closes the descriptor. */
  end(): void {
    this.#boom.end();
  }
}

/**
 * Makes `logger` (a child of a logger writing to StdoutLines) write through the deferred view: its lines
 * may wait in the buffer. A logger writing anywhere else (a test's capture, a pretty stream) is unchanged.
 */
export function deferWrites(logger: object): void {
  // pino exports its symbols for this: the child's own stream shadows the one it shares with its parent.
  const holder = logger as Record<symbol, unknown>;
  const stream = holder[pino.symbols.streamSym];
  if (stream instanceof StdoutLines) holder[pino.symbols.streamSym] = stream.deferred;
}

/**
 * Fastify's request loggers, created on first use. Fastify makes a pino child for every request (with the
 * request id bound: a copy of the bindings, their redaction and serialization, and new level methods),
 * about 4% of a small request's CPU; most requests never log outside the access line, which is written by
 * its own logger. The child, when one is made, is the one Fastify would have made.
 */
class RequestLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined;
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get #logger(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options));
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level;
  }
  set level(level: string) {
    this.#logger.level = level;
  }
  fatal: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.fatal(...args);
  error: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.error(...args);
  warn: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.warn(...args);
  info: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.info(...args);
  debug: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.debug(...args);
  trace: pino.LogFn = (...args: Parameters<pino.LogFn>) => this.#logger.trace(...args);
  silent: pino.LogFn = () => {};

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger.child(bindings, options);
  }
}

/** Fastify's childLoggerFactory: request loggers made on first use (RequestLogger). */
export const lazyRequestLogger: FastifyChildLoggerFactory = (logger, bindings, options) =>
  new RequestLogger(logger, bindings, options);
