import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from '../../src/config/docs.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { DEFAULT_SECRET_KEY, settings } from '../../src/config/schema.js';

const noDotenv = { cwd: '/nonexistent' };
const strongSecret = 'x'.repeat(40);
const production = {
  ENVIRONMENT: 'production',
  SECRET_KEY: strongSecret,
  DATABASE_URL: 'postgres://app@db:5432/app',
  RATE_LIMIT_STORAGE_URI: 'redis://redis:6379',
  SETTINGS_SECRETS_DIR: '/nonexistent',
};

function issuesOf(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return Object.fromEntries((error as ConfigError).issues.map((i) => [i.key, i.message]));
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('when the environment is empty, then every documented default applies', () => {
    const config = loadConfig({ SETTINGS_SECRETS_DIR: '/nonexistent' }, noDotenv);
    expect(config).toMatchObject({
      ENVIRONMENT: 'development',
      PORT: 8000,
      HOST: '0.0.0.0',
      DATABASE_URL: undefined,
      RATE_LIMIT_STORAGE_URI: 'memory://',
      SHUTDOWN_DRAIN_SECONDS: 5,
      SHUTDOWN_TIMEOUT_SECONDS: 25,
      METRICS_PORT: undefined,
      MIGRATE_ON_START: true,
      TRUST_PROXY: false,
      CORS_ALLOW_ORIGINS: [],
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('when values are given, then they are parsed to their types', () => {
    const config = loadConfig(
      {
        PORT: '9000',
        MIGRATE_ON_START: 'false',
        CORS_ALLOW_ORIGINS: 'https://a.example, https://b.example',
        TRUST_PROXY: '10.0.0.0/8,127.0.0.1',
        METRICS_PORT: '9100',
      },
      noDotenv,
    );
    expect(config.PORT).toBe(9000);
    expect(config.MIGRATE_ON_START).toBe(false);
    expect(config.CORS_ALLOW_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(config.TRUST_PROXY).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(config.METRICS_PORT).toBe(9100);
    expect(loadConfig({ TRUST_PROXY: '2' }, noDotenv).TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'true' }, noDotenv).TRUST_PROXY).toBe(true);
  });

  it('when several settings are invalid, then one error names every one of them', () => {
    const issues = issuesOf(() =>
      loadConfig(
        { PORT: 'eighty', LOG_LEVEL: 'loud', ENVIRONMENT: 'qa', DB_POOL_SIZE: '0', REDIS_URL: 'localhost' },
        noDotenv,
      ),
    );
    expect(Object.keys(issues).sort()).toEqual([
      'DB_POOL_SIZE',
      'ENVIRONMENT',
      'LOG_LEVEL',
      'PORT',
      'REDIS_URL',
    ]);
    expect(issues.PORT).toMatch(/whole number/);
  });

  it('when a secret is invalid, then the error does not echo its value', () => {
    const issues = issuesOf(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db/app' }, noDotenv));
    expect(issues.DATABASE_URL).toBeDefined();
    expect(issues.DATABASE_URL).not.toContain('hunter2');
  });

  it('when MIGRATE_ON_START is unset, then it follows the environment', () => {
    expect(loadConfig({ ENVIRONMENT: 'test' }, noDotenv).MIGRATE_ON_START).toBe(true);
    expect(loadConfig(production, noDotenv).MIGRATE_ON_START).toBe(false);
    expect(loadConfig({ ...production, MIGRATE_ON_START: 'true' }, noDotenv).MIGRATE_ON_START).toBe(true);
  });

  it('when EVENT_LOOP_STALL_EXIT_SECONDS is unset, then the stall guard is off in development and test and 30 s elsewhere', () => {
    expect(loadConfig({ ENVIRONMENT: 'test' }, noDotenv).EVENT_LOOP_STALL_EXIT_SECONDS).toBe(0);
    expect(loadConfig({}, noDotenv).EVENT_LOOP_STALL_EXIT_SECONDS).toBe(0);
    expect(loadConfig(production, noDotenv).EVENT_LOOP_STALL_EXIT_SECONDS).toBe(30);
    expect(loadConfig({ ENVIRONMENT: 'test', EVENT_LOOP_STALL_EXIT_SECONDS: '7' }, noDotenv)).toMatchObject({
      EVENT_LOOP_STALL_EXIT_SECONDS: 7,
    });
  });

  it('when the stall guard would fire later than a shutdown may take, then it is refused', () => {
    const short = { ...production, SHUTDOWN_DRAIN_SECONDS: '5', SHUTDOWN_TIMEOUT_SECONDS: '10' };
    // Unset, it follows the shorter bound; set above it, it is refused.
    expect(loadConfig(short, noDotenv).EVENT_LOOP_STALL_EXIT_SECONDS).toBe(15);
    const issues = issuesOf(() => loadConfig({ ...short, EVENT_LOOP_STALL_EXIT_SECONDS: '30' }, noDotenv));
    expect(issues.EVENT_LOOP_STALL_EXIT_SECONDS).toContain(
      'must not exceed SHUTDOWN_DRAIN_SECONDS + SHUTDOWN_TIMEOUT_SECONDS (15)',
    );
    expect(
      loadConfig(
        { ...production, EVENT_LOOP_STALL_EXIT_SECONDS: '0', SHUTDOWN_TIMEOUT_SECONDS: '10' },
        noDotenv,
      ).EVENT_LOOP_STALL_EXIT_SECONDS,
    ).toBe(0);
  });

  it('when the headers timeout exceeds the request timeout, then it is refused (Node would refuse the server)', () => {
    const issues = issuesOf(() =>
      loadConfig({ HTTP_HEADERS_TIMEOUT_SECONDS: '40', HTTP_REQUEST_TIMEOUT_SECONDS: '30' }, noDotenv),
    );
    expect(issues.HTTP_HEADERS_TIMEOUT_SECONDS).toBe('must not exceed HTTP_REQUEST_TIMEOUT_SECONDS');
  });

  describe('in staging and production', () => {
    it('when the settings are safe, then start-up is allowed', () => {
      expect(loadConfig(production, noDotenv).ENVIRONMENT).toBe('production');
      expect(loadConfig({ ...production, ENVIRONMENT: 'staging' }, noDotenv).ENVIRONMENT).toBe('staging');
    });

    it('when the defaults are kept, then the secret key, embedded database and memory store are all refused', () => {
      const issues = issuesOf(() =>
        loadConfig({ ENVIRONMENT: 'staging', SETTINGS_SECRETS_DIR: '/nonexistent' }, noDotenv),
      );
      expect(Object.keys(issues).sort()).toEqual(['DATABASE_URL', 'RATE_LIMIT_STORAGE_URI', 'SECRET_KEY']);
    });

    it('when the secret key is shorter than 32 bytes, then it is refused', () => {
      const issues = issuesOf(() => loadConfig({ ...production, SECRET_KEY: 'x'.repeat(31) }, noDotenv));
      expect(issues.SECRET_KEY).toMatch(/32 bytes/);
      expect(() => loadConfig({ ...production, SECRET_KEY: 'x'.repeat(32) }, noDotenv)).not.toThrow();
    });

    it('when the secret key is the development default, then it is refused', () => {
      const issues = issuesOf(() => loadConfig({ ...production, SECRET_KEY: DEFAULT_SECRET_KEY }, noDotenv));
      expect(issues.SECRET_KEY).toMatch(/default/);
    });

    it('when the database is an embedded pglite URL, then it is refused', () => {
      const issues = issuesOf(() => loadConfig({ ...production, DATABASE_URL: 'pglite://memory' }, noDotenv));
      expect(Object.keys(issues)).toEqual(['DATABASE_URL']);
    });
  });

  describe('secret files', () => {
    it('when NAME_FILE is set, then the value is read from that file without its trailing newline', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
      writeFileSync(path.join(dir, 'key'), `${strongSecret}\n`);
      const config = loadConfig(
        { ...production, SECRET_KEY: undefined, SECRET_KEY_FILE: path.join(dir, 'key') },
        noDotenv,
      );
      expect(config.SECRET_KEY).toBe(strongSecret);
    });

    it('when both NAME and NAME_FILE are set, then the ambiguity is an error', () => {
      const issues = issuesOf(() => loadConfig({ SECRET_KEY: 'a', SECRET_KEY_FILE: '/dev/null' }, noDotenv));
      expect(issues.SECRET_KEY).toMatch(/both/);
    });

    it('when NAME_FILE points nowhere, then the error names the file setting', () => {
      const issues = issuesOf(() => loadConfig({ SECRET_KEY_FILE: '/nonexistent/secret' }, noDotenv));
      expect(issues.SECRET_KEY_FILE).toMatch(/cannot read/);
    });

    it('when a secrets directory holds a file named after a setting, then it is used unless the environment sets it', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'secrets-'));
      writeFileSync(path.join(dir, 'DATABASE_URL'), 'postgres://from-file@db/app');
      writeFileSync(path.join(dir, 'PORT'), '7000');
      const config = loadConfig({ SETTINGS_SECRETS_DIR: dir, PORT: '7001' }, noDotenv);
      expect(config.DATABASE_URL).toBe('postgres://from-file@db/app');
      expect(config.PORT).toBe(7001);
    });
  });

  describe('.env', () => {
    it('when in development, then .env fills settings the environment does not set', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dotenv-'));
      writeFileSync(path.join(dir, '.env'), 'PORT=8111\nLOG_LEVEL=debug\n');
      const config = loadConfig({ LOG_LEVEL: 'warn' }, { cwd: dir });
      expect(config.PORT).toBe(8111);
      expect(config.LOG_LEVEL).toBe('warn');
    });

    it('when not in development, then .env is ignored', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dotenv-'));
      writeFileSync(path.join(dir, '.env'), 'PORT=8111\n');
      expect(loadConfig({ ENVIRONMENT: 'test' }, { cwd: dir }).PORT).toBe(8000);
    });
  });
});

describe('docs/configuration.md', () => {
  it('is the rendering of the settings schema (run `npm run docs:config` after changing a setting)', () => {
    const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderConfigDocs());
  });

  it('documents every setting the issue contract names', () => {
    const contract = [
      'PORT',
      'HOST',
      'ENVIRONMENT',
      'LOG_LEVEL',
      'DATABASE_URL',
      'DB_POOL_SIZE',
      'REDIS_URL',
      'RATE_LIMIT_STORAGE_URI',
      'CIRCUIT_BREAKER_CACHE_URL',
      'SECRET_KEY',
      'CORS_ALLOW_ORIGINS',
      'TRUST_PROXY',
      'BODY_LIMIT_BYTES',
      'SHUTDOWN_DRAIN_SECONDS',
      'SHUTDOWN_TIMEOUT_SECONDS',
      'MIGRATE_ON_START',
      'METRICS_PORT',
      'OTLP_ENDPOINT',
    ];
    for (const key of contract) expect(Object.keys(settings)).toContain(key);
  });
});

describe('LOG_FORMAT', () => {
  it('when auto, then pretty only in development at a terminal; json and pretty are what they say', async () => {
    const { prettyLogs } = await import('../../src/observability/logger.js');
    const base = { LOG_LEVEL: 'info' as const };
    expect(prettyLogs({ ...base, LOG_FORMAT: 'auto', ENVIRONMENT: 'development' }, true)).toBe(true);
    expect(prettyLogs({ ...base, LOG_FORMAT: 'auto', ENVIRONMENT: 'development' }, false)).toBe(false);
    expect(prettyLogs({ ...base, LOG_FORMAT: 'auto', ENVIRONMENT: 'production' }, true)).toBe(false);
    expect(prettyLogs({ ...base, LOG_FORMAT: 'json', ENVIRONMENT: 'development' }, true)).toBe(false);
    expect(prettyLogs({ ...base, LOG_FORMAT: 'pretty', ENVIRONMENT: 'production' }, false)).toBe(true);
  });
});
