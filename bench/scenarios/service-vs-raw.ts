// The service against the raw node:http baseline, case by case: the service runs in variants (rate limiting
// on the memory or the Redis store, tracing on), each started on its own for its cases, and every case is
// loaded on both targets, the service and its own baseline run.
import { load, verify, type LoadRequest, type LoadSettings, type Measurement } from '../lib/loadgen.js';
import { TARGETS, stop, type Server, type Target } from '../lib/processes.js';
import { flagNote, formatTable, serviceLog } from '../lib/report.js';
import { REDIS_URL, pgliteDir, startService, startSink } from '../lib/setup.js';
import { round } from '../lib/statistics.js';

/** How the service under test is configured; every variant has every protection on. */
export type VariantName = 'memory' | 'redis' | 'traced' | 'traced-unsampled';

interface Variant {
  /** What the variant changes, for the table and the JSON. */
  describe: string;
  env: (ctx: { sinkUrl: string }) => Record<string, string>;
}

export const VARIANTS: Record<VariantName, Variant> = {
  memory: { describe: 'rate limits on the memory store, tracing off (the default)', env: () => ({}) },
  redis: {
    describe: 'rate limits on the Redis store (one EVALSHA per request)',
    env: () => ({ RATE_LIMIT_STORAGE_URI: REDIS_URL, REDIS_KEY_PREFIX: `bench-${process.pid}:` }),
  },
  traced: {
    describe: 'tracing on, every request sampled and exported over OTLP/HTTP',
    env: ({ sinkUrl }) => ({ OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: 'always_on' }),
  },
  'traced-unsampled': {
    describe: 'tracing on, sampler always_off (the cost of the instrumentation alone)',
    env: ({ sinkUrl }) => ({ OTLP_ENDPOINT: sinkUrl, OTEL_TRACES_SAMPLER: 'always_off' }),
  },
};

export interface Case {
  name: string;
  path: string;
  /** Sends `Authorization: Bearer <access token of the demo admin>` on every request. */
  bearer: boolean;
  variant: VariantName;
  /** The share of raw node:http's req/s this case aims at, when it has a target. */
  target?: number;
}

export const CASES: readonly Case[] = [
  { name: 'single', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory', target: 0.65 },
  { name: 'integers', path: '/v1/random/integers?count=100', bearer: false, variant: 'memory' },
  { name: 'me', path: '/v1/auth/me', bearer: true, variant: 'memory', target: 0.6 },
  { name: 'single-bearer', path: '/v1/random?min=1&max=100', bearer: true, variant: 'memory' },
  // The first case again: the spread between the two runs is the noise any other difference must exceed
  // (tracing off, the default, adds no code at all to the request path, so it is the memory variant).
  { name: 'single-repeat', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory' },
  { name: 'single-redis', path: '/v1/random?min=1&max=100', bearer: false, variant: 'redis', target: 0.5 },
  { name: 'single-traced', path: '/v1/random?min=1&max=100', bearer: false, variant: 'traced' },
  {
    name: 'single-traced-unsampled',
    path: '/v1/random?min=1&max=100',
    bearer: false,
    variant: 'traced-unsampled',
  },
];

export interface CaseResult extends Measurement {
  case: string;
  path: string;
  bearer: boolean;
  target: Target;
  bodyBytes: number;
  flagged: boolean;
}

export interface Comparison {
  cases: readonly Case[];
  variants: VariantName[];
  results: CaseResult[];
  /** OTLP/HTTP trace exports the sink received from the traced variants. */
  traceExports: number;
}

/**
 * Runs `cases`, variant by variant: the memory variant on `servers.service`, every other on a service of its
 * own (logging to bench/results/<stamp>-service-<variant>.log), stopped after its cases.
 */
export async function runComparison(
  settings: LoadSettings,
  context: { stamp: string; servers: Record<Target, Server>; accessToken: string; cases: readonly Case[] },
): Promise<Comparison> {
  const { generator, duration, warmup, connections } = settings;
  const { stamp, servers, accessToken, cases } = context;
  const headersOf = (c: Case): Record<string, string> =>
    c.bearer ? { authorization: `Bearer ${accessToken}` } : {};
  const sink = await startSink();
  try {
    const variants = [...new Set(cases.map((c) => c.variant))];
    const results: CaseResult[] = [];
    for (const variant of variants) {
      let service: Server = servers.service;
      if (variant !== 'memory') {
        service = await startService(
          serviceLog(stamp, variant),
          pgliteDir(),
          VARIANTS[variant].env({ sinkUrl: sink.url }),
        );
      }
      const baseOf = (target: Target) => (target === 'raw' ? servers.raw : service).baseUrl;
      console.log(`variant ${variant}: ${VARIANTS[variant].describe}`);
      for (const c of cases.filter((k) => k.variant === variant)) {
        for (const target of TARGETS) {
          const request: LoadRequest = { url: `${baseOf(target)}${c.path}`, headers: headersOf(c) };
          const bodyBytes = await verify(request.url, request.headers);
          process.stdout.write(`  ${c.name} / ${target} ... `);
          // Each run gets its own warm-up so the JIT and connection setup of that route are out of the numbers.
          if (warmup > 0) await load(generator, request, warmup, connections);
          const m = await load(generator, request, duration, connections);
          const flagged = m.non2xx > 0 || m.errors > 0;
          results.push({ case: c.name, path: c.path, bearer: c.bearer, target, bodyBytes, flagged, ...m });
          console.log(
            `${m.requestsPerSecond.toFixed(0)} req/s${flagged ? ` (${m.non2xx} non-2xx, ${m.errors} errors)` : ''}`,
          );
        }
      }
      if (service !== servers.service) await stop(service.child);
    }
    return { cases, variants, results, traceExports: sink.exports() };
  } finally {
    await sink.close();
  }
}

function ratioOf(results: CaseResult[], name: string): number | null {
  const service = results.find((r) => r.case === name && r.target === 'service');
  const raw = results.find((r) => r.case === name && r.target === 'raw');
  if (!service || !raw || raw.requestsPerSecond === 0) return null;
  return service.requestsPerSecond / raw.requestsPerSecond;
}

export function comparisonTable(results: CaseResult[]): string {
  const header = [
    'case',
    'variant',
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'service/raw',
    'goal',
    'notes',
  ];
  const rows = results.map((r) => {
    const ratio = r.target === 'service' ? ratioOf(results, r.case) : null;
    const c = CASES.find((k) => k.name === r.case)!;
    return [
      `GET ${r.path}${r.bearer ? ' +Bearer' : ''}`,
      c.variant,
      r.target,
      r.requestsPerSecond.toFixed(0),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      r.maxMs.toFixed(2),
      ratio === null ? '' : ratio.toFixed(2),
      ratio === null || c.target === undefined ? '' : `>= ${c.target.toFixed(2)}`,
      flagNote(r),
    ];
  });
  return formatTable(header, rows, new Set([3, 4, 5, 6, 7]));
}

/** The comparison's sections of the JSON results: results, variants, ratios, traceExportsReceived. */
export function comparisonJson({ cases, variants, results, traceExports }: Comparison) {
  return {
    results: results.map((r) => ({
      case: r.case,
      path: r.path,
      bearer: r.bearer,
      target: r.target,
      requestsPerSecond: round(r.requestsPerSecond, 1),
      latencyP50Ms: round(r.p50Ms, 3),
      latencyP99Ms: round(r.p99Ms, 3),
      latencyMaxMs: round(r.maxMs, 3),
      requests: r.requests,
      non2xx: r.non2xx,
      errors: r.errors,
      errorDetail: r.errorDetail,
      flagged: r.flagged,
      bodyBytes: r.bodyBytes,
    })),
    variants: Object.fromEntries(variants.map((v) => [v, VARIANTS[v].describe])),
    ratios: cases.map((c) => {
      const ratio = ratioOf(results, c.name);
      return {
        case: c.name,
        variant: c.variant,
        serviceOverRawRequestsPerSecond: ratio === null ? null : round(ratio, 3),
        target: c.target ?? null,
      };
    }),
    traceExportsReceived: traceExports,
  };
}
