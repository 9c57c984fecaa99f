// Logger options shared by the service and its CLI: pino JSON lines with ISO times, a fixed `service`
// field and redaction of every credential-bearing field we know of.
import pino, { type BaseLogger, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/schema.js';

/**
 * Paths censored in every line. pino's wildcards match one level, so the common nestings are listed:
 * a credential logged at top level, inside an object, or in request headers.
 */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'password',
  'new_password',
  'current_password',
  'token',
  'access_token',
  'refresh_token',
  'api_key',
  'secret',
  'SECRET_KEY',
  'DATABASE_URL',
  'REDIS_URL',
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
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** The logging surface adapters need; both pino and Fastify's logger satisfy it. */
export type Log = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>, service: string, version: string) {
  return {
    level: config.LOG_LEVEL,
    base: { service, version },
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label: string) => ({ level: label }) },
  } satisfies pino.LoggerOptions;
}

export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  service: string,
  version: string,
  destination?: DestinationStream,
): Logger {
  return pino(loggerOptions(config, service, version), destination ?? pino.destination({ sync: false }));
}
