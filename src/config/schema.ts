// The one schema for every setting: its name, type, default and description. loadConfig() validates the
// environment against it and docs/configuration.md is rendered from it (a test keeps the two equal).
import { z } from 'zod';
import { bool, int, list, ratePolicy, ratio, trustProxy, url } from './parsers.js';

export const ENVIRONMENTS = ['development', 'test', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A development-only signing key; staging and production refuse it (see loadConfig). */
export const DEFAULT_SECRET_KEY = 'dev-insecure-secret-key-change-me';

interface Setting<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** Raw default as it would appear in the environment; undefined means "unset". */
  default?: string;
  /** Default as documented, when it is not a plain value (e.g. depends on ENVIRONMENT). */
  defaultDoc?: string;
  description: string;
  /** Secret values are never echoed in configuration errors. */
  secret?: boolean;
}

// `const` keeps each literal default in the type, so Config knows which settings are never undefined.
const setting = <const T extends Setting>(s: T): T => s;

export const settings = {
  ENVIRONMENT: setting({
    schema: z.enum(ENVIRONMENTS),
    default: 'development',
    description:
      'Deployment environment. staging and production refuse unsafe defaults (secret key, embedded database, in-memory rate-limit store).',
  }),
  HOST: setting({
    schema: z.string().trim().min(1),
    default: '0.0.0.0',
    description: 'Address to listen on.',
  }),
  PORT: setting({
    schema: int(0, 65535),
    default: '8000',
    description: 'HTTP port for the API (0 picks a free port).',
  }),
  LOG_LEVEL: setting({
    schema: z.enum(LOG_LEVELS),
    default: 'info',
    description: 'Minimum level of JSON log lines.',
  }),
  LOG_FORMAT: setting({
    schema: z.enum(['auto', 'json', 'pretty']),
    default: 'auto',
    description:
      'How log lines are written: `json`, one JSON object per line (what log collectors read); `pretty`, colored and aligned for a person; `auto`, pretty in development when stdout is a terminal, JSON otherwise.',
  }),
  DATABASE_URL: setting({
    schema: url(['postgres:', 'postgresql:', 'pglite:']),
    defaultDoc: 'unset: embedded PGlite under `DATA_DIR`',
    description:
      'PostgreSQL connection URL. `pglite://memory` runs an in-memory embedded database (tests); unset uses an embedded file-backed PGlite.',
    secret: true,
  }),
  DATA_DIR: setting({
    schema: z.string().trim().min(1),
    default: './data',
    description: 'Directory for the embedded PGlite database when `DATABASE_URL` is unset.',
  }),
  DB_POOL_SIZE: setting({
    schema: int(1, 1000),
    default: '10',
    description: 'Maximum PostgreSQL connections per process.',
  }),
  DB_STATEMENT_TIMEOUT_MS: setting({
    schema: int(0, 3_600_000),
    default: '1000',
    description:
      'Server-side statement timeout for every query of the API, so a stuck query cannot hold a connection. The client gives up 500 ms after it (a silent network), and the request answers 503. `migrate` and `backup` run without one. 0 disables both.',
  }),
  DB_CONNECT_TIMEOUT_MS: setting({
    schema: int(100, 60_000),
    default: '1000',
    description:
      'Longest a request waits for a database connection (a pooled one or a new one) before it answers 503 with `Retry-After`.',
  }),
  MIGRATE_ON_START: setting({
    schema: bool,
    defaultDoc: '`true` in development and test, `false` in staging and production',
    description:
      'Apply pending migrations when `serve` starts. In staging and production a deploy job runs them.',
  }),
  REDIS_URL: setting({
    schema: url(['redis:', 'rediss:']),
    description: 'Redis for shared state. Optional: when it is down the service degrades instead of failing.',
    secret: true,
  }),
  REDIS_KEY_PREFIX: setting({
    schema: z.string().trim().min(1).max(64),
    default: 'reliability-api:',
    description:
      'Prefix of every Redis key and pub/sub channel this service uses, so environments or services can share one Redis.',
  }),
  RATE_LIMIT_STORAGE_URI: setting({
    schema: url(['memory:', 'redis:', 'rediss:']),
    default: 'memory://',
    description:
      'Rate-limit counters store: `memory://` (per process) or a Redis URL (shared by every replica).',
    secret: true,
  }),
  RATE_LIMITS: setting({
    schema: z
      .string()
      .trim()
      .transform((v, ctx) => {
        try {
          return JSON.parse(v) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON' });
          return z.NEVER;
        }
      })
      .pipe(
        z
          .object({
            api: z.record(z.string(), ratePolicy).optional(),
            auth: z.record(z.string(), ratePolicy).optional(),
            api_keys: z.record(z.string(), ratePolicy).optional(),
          })
          .strict(),
      ),
    default: '{}',
    defaultDoc: '`{}` (the built-in policies, see docs/rate-limiting.md)',
    description:
      'Rate-limit policies as JSON, merged over the defaults: `{"api":{"anonymous":{"limit":60,"window_seconds":60,"burst":20},"user":{...},"api_key":{...},"admin":{...}},"auth":{"anonymous":{...}},"api_keys":{"<key id>":{...}}}`.',
  }),
  RATE_LIMIT_REDIS_TIMEOUT_MS: setting({
    schema: int(1, 5_000),
    default: '50',
    description:
      'Deadline of one rate-limit call to Redis (request limits and failed-login limits). Past it (or on any Redis error) the local limiter decides, so Redis trouble never stalls a request.',
  }),
  RATE_LIMIT_FAILURE_MODE: setting({
    schema: z.enum(['open', 'closed']),
    default: 'open',
    description:
      'When the Redis store fails: `open` lets the local (per-process) limiter decide; `closed` answers 503.',
  }),
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: setting({
    schema: int(0, 60_000),
    default: '1000',
    description:
      'Answer 503 to non-probe requests while the mean event-loop delay exceeds this (0 disables).',
  }),
  LOAD_SHED_MAX_HEAP_USED_RATIO: setting({
    schema: ratio(),
    default: '0.9',
    description:
      'Answer 503 to non-probe requests while the V8 heap is fuller than this share of its limit (0 disables).',
  }),
  CIRCUIT_BREAKER_CACHE_URL: setting({
    schema: url(['redis:', 'rediss:']),
    description:
      'Redis holding the shared fallback cache of outbound calls (beacon rounds); unset keeps it in process. A cache outage degrades to no cache.',
    secret: true,
  }),
  OUTBOUND_TIMEOUT_MS: setting({
    schema: int(1, 60_000),
    default: '2000',
    description: 'Deadline of one attempt of an outbound HTTP call (beacon, Prometheus, LLM providers).',
  }),
  OUTBOUND_MAX_RETRIES: setting({
    schema: int(0, 10),
    default: '2',
    description:
      'Retries of an idempotent outbound call after a connection error, a timeout, 429, 502, 503 or 504, with exponential backoff and full jitter.',
  }),
  OUTBOUND_MAX_CONCURRENCY: setting({
    schema: int(1, 10_000),
    default: '32',
    description:
      'Bulkhead: most calls in flight to one dependency; up to as many more wait, the rest fail at once.',
  }),
  BREAKER_CONSECUTIVE_FAILURES: setting({
    schema: int(1, 1000),
    default: '5',
    description: "A dependency's circuit breaker opens after this many consecutive failed calls.",
  }),
  BREAKER_FAILURE_RATIO: setting({
    schema: ratio(),
    default: '0.5',
    description:
      'The breaker also opens when this share of calls failed over the last 30 s (with at least 10 calls).',
  }),
  BREAKER_COOLDOWN_SECONDS: setting({
    schema: int(1, 3600),
    default: '30',
    description: 'How long an open breaker fails fast before it lets one trial call through (half-open).',
  }),
  BEACON_URL: setting({
    schema: url(['http:', 'https:']),
    default: 'https://api.drand.sh',
    description:
      'Base URL of the drand-compatible HTTP randomness beacon relayed by `/v1/beacon` (default: the League of Entropy mainnet).',
  }),
  IDEMPOTENCY_TTL_SECONDS: setting({
    schema: int(60, 604_800),
    default: '86400',
    description:
      'How long the first response to an `Idempotency-Key` is kept and replayed to retries with the same key and body.',
  }),
  IDEMPOTENCY_LEASE_SECONDS: setting({
    schema: int(3, 3_600),
    default: '15',
    description:
      'How long an `Idempotency-Key` stays claimed by a request that is still running without renewing it: the replica running the request renews it every third of this, so it bounds how long retries get 409 after that replica crashed.',
  }),
  SECRET_KEY: setting({
    schema: z.string().min(1),
    default: DEFAULT_SECRET_KEY,
    defaultDoc: 'a development-only key',
    description:
      'Key that signs and verifies access tokens with HS256 when JWT_PRIVATE_KEY is not set. staging and production require at least 32 bytes and refuse the default.',
    secret: true,
  }),
  CORS_ALLOW_ORIGINS: setting({
    schema: list.pipe(z.array(z.union([z.literal('*'), url(['http:', 'https:'])]))),
    default: '',
    defaultDoc: 'none',
    description: 'Comma-separated origins allowed by CORS (`*` allows any). Empty disables CORS.',
  }),
  TRUST_PROXY: setting({
    schema: trustProxy,
    default: 'false',
    description:
      'Whether to take the client IP from `X-Forwarded-For`: `false`, `true`, the number of proxy hops, or a comma-separated list of proxy addresses/CIDRs.',
  }),
  BODY_LIMIT_BYTES: setting({
    schema: int(1, 104_857_600),
    default: '1048576',
    description: 'Largest accepted request body; larger bodies get 413.',
  }),
  WEB_CONCURRENCY: setting({
    schema: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^(auto|[1-9]\d{0,2})$/, 'must be auto or a number of processes from 1 to 999')
      .transform((v): number | 'auto' => (v === 'auto' ? 'auto' : Number(v))),
    default: '1',
    description:
      'Worker processes behind one primary that supervises them (VMs and PaaS; on Kubernetes scale pods instead). `1`: no primary, a single process. `auto`: the CPUs this process may use (its cgroup quota, else the available cores). More than one needs PostgreSQL (`DATABASE_URL`).',
  }),
  MAX_REQUESTS: setting({
    schema: int(0, 1_000_000_000),
    default: '0',
    description:
      'With worker processes: a worker is replaced after serving this many requests (plus a random `MAX_REQUESTS_JITTER`), its successor listening before it drains, so no request fails. 0 never recycles.',
  }),
  MAX_REQUESTS_JITTER: setting({
    schema: int(0, 1_000_000_000),
    default: '0',
    description:
      "Up to this many requests are added at random to each worker's `MAX_REQUESTS`, so workers do not recycle together.",
  }),
  WORKER_MAX_RESTARTS: setting({
    schema: int(1, 1000),
    default: '10',
    description:
      'With worker processes: crashed workers are replaced with exponential backoff; more than this many replacements within a minute is a crash loop, and the primary stops the service with exit code 1.',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: setting({
    schema: int(1, 3600),
    default: '65',
    description:
      'An idle keep-alive connection is closed after this long. Above the 60 s idle timeout of common load balancers (AWS ALB, nginx), so the balancer closes first and never sends a request on a socket the app just closed.',
  }),
  HTTP_HEADERS_TIMEOUT_SECONDS: setting({
    schema: int(1, 600),
    default: '10',
    description:
      'A request line and headers must arrive within this long, or the connection gets 408 and is closed: slow-header (slowloris) clients cannot hold sockets.',
  }),
  HTTP_REQUEST_TIMEOUT_SECONDS: setting({
    schema: int(1, 3600),
    default: '30',
    description:
      'A whole request (headers and body) must arrive within this long, or it gets 408: a trickled body cannot hold a socket. At least `HTTP_HEADERS_TIMEOUT_SECONDS`.',
  }),
  SHUTDOWN_DRAIN_SECONDS: setting({
    schema: int(0, 600),
    default: '5',
    description:
      'After SIGTERM, seconds to keep serving while readiness reports 503, so load balancers stop sending traffic first.',
  }),
  SHUTDOWN_TIMEOUT_SECONDS: setting({
    schema: int(1, 3600),
    default: '25',
    description: 'After the drain, the longest wait for in-flight requests before the process exits with 1.',
  }),
  EVENT_LOOP_STALL_EXIT_SECONDS: setting({
    schema: int(0, 3600),
    defaultDoc:
      '`30` in staging and production (less when `SHUTDOWN_DRAIN_SECONDS` + `SHUTDOWN_TIMEOUT_SECONDS` is less), `0` (off) in development and test',
    description:
      'Stall guard: when the event loop has not turned for this many seconds, a watchdog thread logs one line to stderr and kills the process (SIGKILL) so its supervisor restarts it. 0 turns it off. At most `SHUTDOWN_DRAIN_SECONDS` + `SHUTDOWN_TIMEOUT_SECONDS`.',
  }),
  METRICS_PORT: setting({
    schema: int(0, 65535),
    defaultDoc: 'unset: `/metrics` on `PORT`',
    description: 'Serve `/metrics` on this separate port instead of the API port.',
  }),
  OTLP_ENDPOINT: setting({
    schema: url(['http:', 'https:']),
    description:
      'OpenTelemetry OTLP/HTTP base URL for traces (spans go to `<url>/v1/traces`); unset, with `OTEL_EXPORTER_OTLP_ENDPOINT` also unset, disables tracing.',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: setting({
    schema: url(['http:', 'https:']),
    description:
      'The standard OpenTelemetry name for `OTLP_ENDPOINT`; `OTLP_ENDPOINT` wins when both are set.',
  }),
  OTEL_LOGS_EXPORTER: setting({
    schema: z.enum(['none', 'otlp']),
    default: 'none',
    description:
      '`otlp`: every log line is also exported as an OpenTelemetry log record, with its trace and span ids, to `<OTLP endpoint>/v1/logs` (the collector the traces go to; needs `OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`). Stdout JSON lines are written either way.',
  }),
  OTEL_SERVICE_NAME: setting({
    schema: z.string().trim().min(1),
    default: 'reliability-api',
    description: 'The `service.name` of every span and exported log record.',
  }),
  OTEL_TRACES_SAMPLER: setting({
    schema: z.enum([
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ]),
    default: 'parentbased_always_on',
    description: 'Trace sampler, as in the OpenTelemetry specification.',
  }),
  OTEL_TRACES_SAMPLER_ARG: setting({
    schema: ratio(),
    default: '1',
    description: 'Sampling ratio of the `traceidratio` samplers.',
  }),
  SLO_TARGET_SUCCESS_RATIO: setting({
    schema: z
      .string()
      .trim()
      .regex(/^0\.\d+$/, 'must be a ratio between 0 and 1 (exclusive)')
      .transform(Number),
    default: '0.999',
    description:
      'Availability objective: the share of requests that must not fail with 5xx. `/v1/slo` and the shipped burn-rate alerts derive from it.',
  }),
  SLO_TARGET_P99_LATENCY_SECONDS: setting({
    schema: z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/, 'must be a number of seconds')
      .transform(Number)
      .pipe(z.number().positive()),
    default: '0.25',
    description: 'Latency objective: the 99th percentile of request duration must stay under this.',
  }),
  PROMETHEUS_BASE_URL: setting({
    schema: url(['http:', 'https:']),
    defaultDoc: "unset: `/v1/slo` computes from this process's own metrics",
    description:
      'Prometheus that scrapes the service; `/v1/slo` reads the shipped recording rules from it, through the resilient client.',
  }),
  LOG_FILE_PATH: setting({
    schema: z.string().trim().min(1),
    description:
      "A JSON log file (this service's own output, e.g. redirected stdout) that `/v1/admin/errors` reads besides its in-memory ring.",
  }),
  TRIAGE_LLM_PROVIDER: setting({
    schema: z.enum(['none', 'openai', 'gemini']),
    default: 'none',
    description:
      'LLM that summarizes grouped errors in `/v1/admin/errors/summary`: `openai` (any OpenAI-compatible chat completions API, e.g. Groq, via `TRIAGE_LLM_BASE_URL`) or `gemini`.',
  }),
  TRIAGE_LLM_BASE_URL: setting({
    schema: url(['http:', 'https:']),
    defaultDoc:
      '`https://api.openai.com/v1` for openai, `https://generativelanguage.googleapis.com/v1beta` for gemini',
    description: 'Base URL of the triage LLM API.',
  }),
  TRIAGE_LLM_MODEL: setting({
    schema: z.string().trim().min(1),
    defaultDoc: '`gpt-4o-mini` for openai, `gemini-2.0-flash` for gemini',
    description: 'Model name of the triage LLM.',
  }),
  TRIAGE_LLM_API_KEY: setting({
    schema: z.string().trim().min(1),
    description: 'API key of the triage LLM provider.',
    secret: true,
  }),
  ANONYMOUS_ACCESS: setting({
    schema: bool,
    defaultDoc: '`true` in development and test, `false` in staging and production',
    description:
      'Let the random endpoints answer calls without credentials. Otherwise they need a user token or an API key with `random:read`.',
  }),
  ALLOW_SIGNUP: setting({
    schema: bool,
    default: 'false',
    description: 'Open `POST /v1/auth/register` to anyone; when false it answers 404.',
  }),
  ACCESS_TOKEN_EXPIRE_MINUTES: setting({
    schema: int(1, 1440),
    default: '15',
    description: 'Lifetime of access tokens (JWT).',
  }),
  REFRESH_TOKEN_EXPIRE_DAYS: setting({
    schema: int(1, 365),
    default: '14',
    description: 'Lifetime of a session: its refresh tokens stop working after this many days.',
  }),
  JWT_ISSUER: setting({
    schema: z.string().trim().min(1),
    default: 'reliability-api',
    description: 'The `iss` claim written and required in access tokens.',
  }),
  JWT_AUDIENCE: setting({
    schema: z.string().trim().min(1),
    default: 'reliability-api',
    description: 'The `aud` claim written and required in access tokens.',
  }),
  JWT_PRIVATE_KEY: setting({
    schema: z
      .string()
      .trim()
      .includes('PRIVATE KEY', { message: 'must be a PEM (PKCS#8) Ed25519 private key' }),
    description:
      'Ed25519 private key (PEM, PKCS#8). When set, access tokens are signed with EdDSA and the public key is served at `/.well-known/jwks.json`; otherwise HS256 with `SECRET_KEY`.',
    secret: true,
  }),
  JWT_KEY_ID: setting({
    schema: z.string().trim().min(1).max(128),
    defaultDoc: "the key's JWK thumbprint",
    description: 'The `kid` of the signing key.',
  }),
  JWT_PREVIOUS_PUBLIC_KEYS: setting({
    schema: z.string().trim().min(1),
    description:
      'A JWKS document (`{"keys":[...]}`) of public keys still accepted during a key rotation, each with its `kid`.',
  }),
  PASSWORD_MIN_LENGTH: setting({
    schema: int(8, 1024),
    default: '12',
    description: 'Shortest accepted password (characters).',
  }),
  PASSWORD_MAX_LENGTH: setting({
    schema: int(8, 4096),
    default: '1024',
    description: 'Longest accepted password (characters); bounds the hashing cost an attacker can ask for.',
  }),
  PASSWORD_HASH_CONCURRENCY: setting({
    schema: int(1, 64),
    defaultDoc: 'the number of usable cores minus one (at least 1)',
    description:
      'Password hashes computed at once (bulkhead). Fewer than the cores leaves one for the event loop during a login storm.',
  }),
  PASSWORD_HASH_QUEUE: setting({
    schema: int(0, 10_000),
    default: '64',
    description:
      'Password hashes allowed to wait for the bulkhead; beyond that, sign-ins get 503 with Retry-After.',
  }),
  LOGIN_MAX_FAILURES: setting({
    schema: int(1, 1000),
    default: '5',
    description:
      'Failed logins allowed per username and client IP within `LOGIN_FAILURE_WINDOW_SECONDS` (four times as many per client IP) before 429.',
  }),
  LOGIN_FAILURE_WINDOW_SECONDS: setting({
    schema: int(1, 86_400),
    default: '900',
    description: 'Window over which failed logins are counted.',
  }),
  SEED_DEMO_USER: setting({
    schema: bool,
    default: 'false',
    description:
      'Development only: create a demo admin at start-up and log its credentials once. Refused in staging and production.',
  }),
  FAULT_INJECTION_ENABLED: setting({
    schema: bool,
    default: 'false',
    description:
      'Honour the `X-Fault-Delay-Ms` and `X-Fault-Status` request headers on API routes (never on probes or metrics), for drills and shutdown tests.',
  }),
  APP_COMMIT: setting({
    schema: z.string().trim().min(1),
    default: 'unknown',
    description: 'Source revision reported by `/version` and metrics; the image build sets it.',
  }),
  SETTINGS_SECRETS_DIR: setting({
    schema: z.string().trim().min(1),
    defaultDoc: '`/run/secrets` when it exists',
    description:
      'Directory of secret files, one per setting, named like the setting (e.g. `/run/secrets/SECRET_KEY`). `NAME_FILE` points one setting at a file.',
  }),
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof settings;
type Parsed<K extends SettingName> = z.output<(typeof settings)[K]['schema']>;
type HasDefault<K extends SettingName> = (typeof settings)[K] extends { default: string } ? K : never;

/** The validated, frozen configuration handed to buildApp(). */
export type Config = {
  readonly [K in SettingName]: K extends HasDefault<K> ? Parsed<K> : Parsed<K> | undefined;
} & {
  readonly MIGRATE_ON_START: boolean;
  readonly ANONYMOUS_ACCESS: boolean;
  readonly EVENT_LOOP_STALL_EXIT_SECONDS: number;
};
