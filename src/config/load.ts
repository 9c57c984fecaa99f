// loadConfig(): the only place that reads the environment, `.env` and secret files. It reports every
// invalid setting in one error and returns a frozen, typed Config.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { DEFAULT_SECRET_KEY, settings, type Config, type SettingName } from './schema.js';

export interface ConfigIssue {
  key: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.key}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface LoadConfigOptions {
  /** Directory holding `.env` (read in development only). Defaults to the working directory. */
  cwd?: string;
}

type RawEnv = Record<string, string | undefined>;

const DEFAULT_SECRETS_DIR = '/run/secrets';
const MIN_SECRET_BYTES = 32;

function readSecretFile(file: string, key: string, issues: ConfigIssue[]): string | undefined {
  try {
    // Trailing newlines come from `echo secret > file`; they are never part of the secret.
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    issues.push({
      key,
      message: `cannot read secret file ${file} (${(error as NodeJS.ErrnoException).code})`,
    });
    return undefined;
  }
}

/** Resolves each setting's raw string: environment, then NAME_FILE, then the secrets directory, then `.env`. */
function resolveRaw(env: RawEnv, cwd: string, issues: ConfigIssue[]): RawEnv {
  const environment = env.ENVIRONMENT?.trim() || settings.ENVIRONMENT.default;
  let dotenv: RawEnv = {};
  const dotenvPath = path.join(cwd, '.env');
  if (environment === 'development' && existsSync(dotenvPath)) {
    dotenv = parseEnv(readFileSync(dotenvPath, 'utf8'));
  }
  const lookup = (key: string): string | undefined => (env[key] !== undefined ? env[key] : dotenv[key]);

  const secretsDir =
    lookup('SETTINGS_SECRETS_DIR') ?? (existsSync(DEFAULT_SECRETS_DIR) ? DEFAULT_SECRETS_DIR : undefined);

  const raw: RawEnv = { SETTINGS_SECRETS_DIR: secretsDir };
  for (const key of Object.keys(settings) as SettingName[]) {
    if (key === 'SETTINGS_SECRETS_DIR') continue;
    const direct = env[key];
    const fileRef = lookup(`${key}_FILE`);
    if (direct !== undefined && fileRef !== undefined) {
      issues.push({ key, message: `set both ${key} and ${key}_FILE; choose one` });
      continue;
    }
    if (direct !== undefined) {
      raw[key] = direct;
    } else if (fileRef !== undefined) {
      raw[key] = readSecretFile(fileRef, `${key}_FILE`, issues);
    } else if (secretsDir !== undefined && existsSync(path.join(secretsDir, key))) {
      raw[key] = readSecretFile(path.join(secretsDir, key), key, issues);
    } else {
      raw[key] = dotenv[key];
    }
  }
  return raw;
}

/** Cross-setting rules: what staging and production refuse to start with. */
function productionIssues(config: Record<string, unknown>, invalid: Set<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.ENVIRONMENT !== 'staging' && config.ENVIRONMENT !== 'production') return issues;
  const env = String(config.ENVIRONMENT);
  const secret = config.SECRET_KEY as string;
  if (invalid.has('SECRET_KEY')) {
    // already reported
  } else if (secret === DEFAULT_SECRET_KEY) {
    issues.push({ key: 'SECRET_KEY', message: `the development default is refused in ${env}` });
  } else if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
    issues.push({ key: 'SECRET_KEY', message: `must be at least ${MIN_SECRET_BYTES} bytes in ${env}` });
  }
  const databaseUrl = config.DATABASE_URL as string | undefined;
  if (!invalid.has('DATABASE_URL') && (databaseUrl === undefined || databaseUrl.startsWith('pglite:'))) {
    issues.push({
      key: 'DATABASE_URL',
      message: `the embedded database is refused in ${env}; set a PostgreSQL URL`,
    });
  }
  if (!invalid.has('RATE_LIMIT_STORAGE_URI') && String(config.RATE_LIMIT_STORAGE_URI).startsWith('memory:')) {
    issues.push({
      key: 'RATE_LIMIT_STORAGE_URI',
      message: `memory:// is refused in ${env}; replicas must share a Redis store`,
    });
  }
  if (config.SEED_DEMO_USER === true) {
    issues.push({
      key: 'SEED_DEMO_USER',
      message: `a demo admin with a logged password is refused in ${env}`,
    });
  }
  return issues;
}

/**
 * A signal that arrives while the event loop is stalled is acted on only when the stall guard fires, so the
 * guard must fire within the time a normal shutdown may take: otherwise a stalled process outlasts it.
 */
function stallGuardIssues(config: Record<string, unknown>): ConfigIssue[] {
  const guard = config.EVENT_LOOP_STALL_EXIT_SECONDS;
  const drain = config.SHUTDOWN_DRAIN_SECONDS;
  const timeout = config.SHUTDOWN_TIMEOUT_SECONDS;
  if (typeof guard !== 'number' || typeof drain !== 'number' || typeof timeout !== 'number') return [];
  if (guard === 0 || guard <= drain + timeout) return [];
  return [
    {
      key: 'EVENT_LOOP_STALL_EXIT_SECONDS',
      message: `must not exceed SHUTDOWN_DRAIN_SECONDS + SHUTDOWN_TIMEOUT_SECONDS (${drain + timeout}): a signal during a stall waits for the guard`,
    },
  ];
}

export function loadConfig(env: RawEnv, options: LoadConfigOptions = {}): Config {
  const issues: ConfigIssue[] = [];
  const raw = resolveRaw(env, options.cwd ?? process.cwd(), issues);
  const out: Record<string, unknown> = {};

  for (const [key, spec] of Object.entries(settings)) {
    const value = raw[key];
    const def = 'default' in spec ? spec.default : undefined;
    const input = value === undefined || (value.trim() === '' && def !== '') ? def : value;
    if (input === undefined) {
      out[key] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(input);
    if (result.success) {
      out[key] = result.data;
    } else {
      const shown = 'secret' in spec && spec.secret ? '' : ` (got ${JSON.stringify(input)})`;
      const message = result.error.issues.map((i) => i.message).join(', ');
      issues.push({ key, message: `${message}${shown}` });
    }
  }

  const relaxed = out.ENVIRONMENT === 'development' || out.ENVIRONMENT === 'test';
  if (out.MIGRATE_ON_START === undefined) out.MIGRATE_ON_START = relaxed;
  if (out.ANONYMOUS_ACCESS === undefined) out.ANONYMOUS_ACCESS = relaxed;
  if (out.EVENT_LOOP_STALL_EXIT_SECONDS === undefined) {
    // Within the shutdown bound (see stallGuardIssues) when that is shorter than the usual 30 s.
    const bound = Number(out.SHUTDOWN_DRAIN_SECONDS) + Number(out.SHUTDOWN_TIMEOUT_SECONDS);
    out.EVENT_LOOP_STALL_EXIT_SECONDS = relaxed ? 0 : Math.min(30, Number.isFinite(bound) ? bound : 30);
  }
  issues.push(...stallGuardIssues(out));
  const embedded = typeof out.DATABASE_URL !== 'string' || out.DATABASE_URL.startsWith('pglite:');
  if (
    out.WEB_CONCURRENCY !== undefined &&
    out.WEB_CONCURRENCY !== 1 &&
    embedded &&
    !issues.some((i) => i.key === 'DATABASE_URL')
  ) {
    issues.push({
      key: 'WEB_CONCURRENCY',
      message:
        'several worker processes need PostgreSQL (DATABASE_URL): the embedded database belongs to one process',
    });
  }
  if (
    out.OTEL_LOGS_EXPORTER === 'otlp' &&
    out.OTLP_ENDPOINT === undefined &&
    out.OTEL_EXPORTER_OTLP_ENDPOINT === undefined &&
    !issues.some((i) => i.key === 'OTLP_ENDPOINT' || i.key === 'OTEL_EXPORTER_OTLP_ENDPOINT')
  ) {
    issues.push({
      key: 'OTEL_LOGS_EXPORTER',
      message: 'otlp needs a collector: set OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT)',
    });
  }
  issues.push(...productionIssues(out, new Set(issues.map((i) => i.key.replace(/_FILE$/, '')))));
  if (
    typeof out.PASSWORD_MIN_LENGTH === 'number' &&
    typeof out.PASSWORD_MAX_LENGTH === 'number' &&
    out.PASSWORD_MIN_LENGTH > out.PASSWORD_MAX_LENGTH
  ) {
    issues.push({ key: 'PASSWORD_MIN_LENGTH', message: 'must not exceed PASSWORD_MAX_LENGTH' });
  }
  if (
    typeof out.HTTP_HEADERS_TIMEOUT_SECONDS === 'number' &&
    typeof out.HTTP_REQUEST_TIMEOUT_SECONDS === 'number' &&
    out.HTTP_HEADERS_TIMEOUT_SECONDS > out.HTTP_REQUEST_TIMEOUT_SECONDS
  ) {
    // Node refuses a server whose headers timeout exceeds its request timeout.
    issues.push({
      key: 'HTTP_HEADERS_TIMEOUT_SECONDS',
      message: 'must not exceed HTTP_REQUEST_TIMEOUT_SECONDS',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze(out) as Config;
}
