// Logger options shared by the service and its CLI: pino JSON lines with ISO times, a fixed `service`
// field, redaction of every credential-bearing field we know of, and trace ids when tracing is on.
import pino, { type DestinationStream, type Logger } from 'pino';
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
    timestamp: pino.stdTimeFunctions.isoTime,
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
  return pino(options, destination ?? pino.destination({ sync: false }));
}
