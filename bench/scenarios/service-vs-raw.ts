// The service against the raw node:http baseline, case by case, on one Node.js runtime: the service runs in
// variants (rate limiting on the memory or the Redis store, tracing on), each started on its own for its
// cases, and every case is loaded in interleaved pairs, raw then service, BENCH_PAIRS times, so that drift on
// a shared machine hits both targets alike. A case's result is the median of its pairs' ratios (service
// req/s over the raw req/s of the same pair); a spread (max - min of those ratios) over NOISY_SPREAD marks it
// noisy, not a result. Each measured run also reads the server's CPU time from /proc, before and after, for
// the CPU microseconds per request.
import { createApiKey, demoCredentials, login } from '../lib/identity.js';
import { load, verify, type LoadRequest, type LoadSettings, type Measurement } from '../lib/loadgen.js';
import { cpuSeconds, stop, type Runtime, type Server, type Target } from '../lib/processes.js';
import { formatTable, serviceLog } from '../lib/report.js';
import { REDIS_URL, pgliteDir, startService, startSink } from '../lib/setup.js';
import { median, round } from '../lib/statistics.js';

/** A case whose pair ratios spread wider than this (max - min) is noisy: shown, flagged, not a result. */
export const NOISY_SPREAD = 0.05;
/** The order of the two runs of a pair. */
const PAIR_ORDER: readonly Target[] = ['raw', 'service'];

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
    describe:
      "tracing on, 10% of requests sampled (parentbased_traceidratio 0.1, the production ConfigMap's) and exported over OTLP/HTTP",
    env: ({ sinkUrl }) => ({
      OTLP_ENDPOINT: sinkUrl,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.1',
    }),
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
  /** Sends `X-API-Key: <a key of the demo admin with the random:read scope>` on every request. */
  apiKey?: true;
  variant: VariantName;
  /** The share of raw node:http's req/s this case aims at, when it has a target. */
  target?: number;
  /** Also compared with another case of the same run: its service req/s over that case's, and the goal. */
  versus?: { case: string; goal: number };
}

export const CASES: readonly Case[] = [
  { name: 'single', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory', target: 0.6 },
  {
    name: 'integers',
    path: '/v1/random/integers?count=100',
    bearer: false,
    variant: 'memory',
    target: 0.55,
  },
  { name: 'me', path: '/v1/auth/me', bearer: true, variant: 'memory', target: 0.55 },
  { name: 'single-bearer', path: '/v1/random?min=1&max=100', bearer: true, variant: 'memory' },
  // The first case again: the spread between the two runs is the noise any other difference must exceed
  // (tracing off, the default, adds no code at all to the request path, so it is the memory variant).
  { name: 'single-repeat', path: '/v1/random?min=1&max=100', bearer: false, variant: 'memory' },
  {
    name: 'single-apikey-redis',
    path: '/v1/random?min=1&max=100',
    bearer: false,
    apiKey: true,
    variant: 'redis',
    target: 0.45,
  },
  {
    name: 'single-traced-10pct',
    path: '/v1/random?min=1&max=100',
    bearer: false,
    variant: 'traced',
    versus: { case: 'single', goal: 0.85 },
  },
  {
    name: 'single-traced-unsampled',
    path: '/v1/random?min=1&max=100',
    bearer: false,
    variant: 'traced-unsampled',
  },
];

/** One measured run: the load generator's numbers and the server's CPU time over the same interval. */
export interface Run extends Measurement {
  /** 1-based. */
  pair: number;
  target: Target;
  /** utime + stime of the server's processes over the run (the service's whole process tree). */
  cpuSeconds: number;
  cpuUsPerRequest: number;
  flagged: boolean;
}

/** A target's runs of a case: medians, except `maxMs` (the largest) and the error counts (sums). */
export interface TargetSummary {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  cpuUsPerRequest: number;
  non2xx: number;
  errors: number;
  bodyBytes: number;
}

export interface CaseResult {
  case: Case;
  runs: Run[];
  targets: Record<Target, TargetSummary>;
  /** Service req/s over raw req/s, pair by pair. */
  pairRatios: number[];
  medianRatio: number | null;
  /** max - min of pairRatios. */
  spread: number | null;
  noisy: boolean;
  /** A run had non-2xx answers or socket errors. */
  errored: boolean;
  /** noisy or errored: not a result. */
  flagged: boolean;
}

export interface Comparison {
  runtime: Runtime;
  pairs: number;
  variants: VariantName[];
  results: CaseResult[];
  /** OTLP/HTTP trace exports the sink received from the traced variants. */
  traceExports: number;
}

/** A load run with the server's CPU time read from /proc right before and right after it. */
async function measuredRun(
  server: Server,
  settings: LoadSettings,
  request: LoadRequest,
): Promise<Omit<Run, 'pair' | 'target'>> {
  const pid = server.child.pid;
  if (pid === undefined) throw new Error(`${server.target} has no pid`);
  const before = cpuSeconds(pid);
  const m = await load(settings.generator, request, settings.duration, settings.connections);
  const cpu = cpuSeconds(pid) - before;
  return {
    ...m,
    cpuSeconds: cpu,
    cpuUsPerRequest: m.requests > 0 ? (cpu * 1e6) / m.requests : Number.NaN,
    flagged: m.non2xx > 0 || m.errors > 0,
  };
}

function summarize(runs: Run[], bodyBytes: number): TargetSummary {
  const med = (pick: (r: Run) => number) => median(runs.map(pick));
  return {
    requestsPerSecond: med((r) => r.requestsPerSecond),
    p50Ms: med((r) => r.p50Ms),
    p99Ms: med((r) => r.p99Ms),
    maxMs: Math.max(...runs.map((r) => r.maxMs)),
    cpuUsPerRequest: med((r) => r.cpuUsPerRequest),
    non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    bodyBytes,
  };
}

function caseResult(c: Case, runs: Run[], bodyBytes: Record<Target, number>, pairs: number): CaseResult {
  const of = (target: Target) => runs.filter((r) => r.target === target);
  const pairRatios: number[] = [];
  for (let pair = 1; pair <= pairs; pair++) {
    const raw = runs.find((r) => r.pair === pair && r.target === 'raw');
    const service = runs.find((r) => r.pair === pair && r.target === 'service');
    if (raw && service && raw.requestsPerSecond > 0) {
      pairRatios.push(service.requestsPerSecond / raw.requestsPerSecond);
    }
  }
  const medianRatio = pairRatios.length > 0 ? median(pairRatios) : null;
  const spread = pairRatios.length > 0 ? Math.max(...pairRatios) - Math.min(...pairRatios) : null;
  const noisy = spread !== null && spread > NOISY_SPREAD;
  const errored = runs.some((r) => r.flagged);
  return {
    case: c,
    runs,
    targets: {
      service: summarize(of('service'), bodyBytes.service),
      raw: summarize(of('raw'), bodyBytes.raw),
    },
    pairRatios,
    medianRatio,
    spread,
    noisy,
    errored,
    flagged: noisy || errored || medianRatio === null,
  };
}

/**
 * Runs `cases` on `context.runtime`, variant by variant: the memory variant on `servers.service`, every
 * other on a service of its own (logging to bench/results/<stamp>-service-<logPrefix><variant>.log), stopped
 * after its cases. Each case: both targets warmed up once (BENCH_WARMUP, discarded), then `pairs` pairs of
 * measured runs, raw then service.
 */
export async function runComparison(
  settings: LoadSettings,
  context: {
    stamp: string;
    runtime: Runtime;
    servers: Record<Target, Server>;
    accessToken: string;
    cases: readonly Case[];
    pairs: number;
    logPrefix: string;
  },
): Promise<Comparison> {
  const { generator, warmup, connections } = settings;
  const { stamp, runtime, servers, accessToken, cases, pairs, logPrefix } = context;
  // An API key per service (each variant's service has a database of its own), made on first use.
  const apiKeys = new Map<Server, string>();
  const apiKeyOf = async (service: Server, token: string) => {
    let key = apiKeys.get(service);
    if (key === undefined) {
      key = await createApiKey(service.baseUrl, token);
      apiKeys.set(service, key);
    }
    return key;
  };
  const sink = await startSink();
  try {
    const variants = [...new Set(cases.map((c) => c.variant))];
    const results: CaseResult[] = [];
    for (const variant of variants) {
      let service: Server = servers.service;
      let token = accessToken;
      const variantCases = cases.filter((k) => k.variant === variant);
      if (variant !== 'memory') {
        const logFile = serviceLog(stamp, `${logPrefix}${variant}`);
        service = await startService(logFile, pgliteDir(), VARIANTS[variant].env({ sinkUrl: sink.url }), {
          runtime,
        });
        if (variantCases.some((k) => k.bearer || k.apiKey === true))
          token = await login(service.baseUrl, await demoCredentials(logFile));
      }
      const serverOf = (target: Target) => (target === 'raw' ? servers.raw : service);
      console.log(`variant ${variant} (node ${runtime.version}): ${VARIANTS[variant].describe}`);
      for (const c of variantCases) {
        const headers: Record<string, string> = c.bearer ? { authorization: `Bearer ${token}` } : {};
        if (c.apiKey === true) headers['x-api-key'] = await apiKeyOf(service, token);
        const requestOf = (target: Target): LoadRequest => ({
          url: `${serverOf(target).baseUrl}${c.path}`,
          headers,
        });
        const bodyBytes = {} as Record<Target, number>;
        for (const target of PAIR_ORDER) {
          const request = requestOf(target);
          bodyBytes[target] = await verify(request.url, request.headers);
        }
        process.stdout.write(`  ${c.name}:`);
        // The JIT and the route's first calls are out of the numbers: one warm-up per target and case.
        if (warmup > 0) {
          for (const target of PAIR_ORDER) await load(generator, requestOf(target), warmup, connections);
        }
        const runs: Run[] = [];
        for (let pair = 1; pair <= pairs; pair++) {
          for (const target of PAIR_ORDER) {
            const run = await measuredRun(serverOf(target), settings, requestOf(target));
            runs.push({ pair, target, ...run });
          }
          const [raw, svc] = runs.slice(-2) as [Run, Run];
          process.stdout.write(
            ` ${raw.requestsPerSecond.toFixed(0)}/${svc.requestsPerSecond.toFixed(0)}` +
              (raw.requestsPerSecond > 0
                ? ` (${(svc.requestsPerSecond / raw.requestsPerSecond).toFixed(3)})`
                : ''),
          );
        }
        const result = caseResult(c, runs, bodyBytes, pairs);
        results.push(result);
        console.log(
          ` -> ${result.medianRatio?.toFixed(3) ?? 'n/a'}, spread ${result.spread?.toFixed(3) ?? 'n/a'}` +
            (result.noisy ? ' NOISY' : '') +
            (result.errored ? ' (non-2xx or errors)' : ''),
        );
      }
      if (service !== servers.service) await stop(service.child);
    }
    return { runtime, pairs, variants, results, traceExports: sink.exports() };
  } finally {
    await sink.close();
  }
}

/** The median service req/s of a case, the ceiling the fixed-rate latency run takes half of. */
export function serviceRequestsPerSecond(comparison: Comparison, caseName: string): number | undefined {
  return comparison.results.find((r) => r.case.name === caseName)?.targets.service.requestsPerSecond;
}

function notes(r: CaseResult, target: Target): string {
  const out: string[] = [];
  const t = r.targets[target];
  if (t.non2xx > 0 || t.errors > 0) out.push(`FLAGGED: ${t.non2xx} non-2xx, ${t.errors} errors`);
  if (target === 'service' && r.noisy) {
    out.push(`noisy: spread ${r.spread!.toFixed(3)} > ${NOISY_SPREAD}, not a result`);
  }
  return out.join('; ');
}

export function comparisonTable({ runtime, pairs, results }: Comparison): string {
  const header = [
    'case',
    'variant',
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'cpu us/req',
    'service/raw',
    'spread',
    'goal',
    'notes',
  ];
  const rows = results.flatMap((r) =>
    (['service', 'raw'] as const).map((target) => {
      const t = r.targets[target];
      const ratio = target === 'service' ? r.medianRatio : null;
      const ratioCell = ratio === null ? '' : r.flagged ? `(${ratio.toFixed(2)})` : ratio.toFixed(2);
      return [
        `GET ${r.case.path}${r.case.bearer ? ' +Bearer' : ''}${r.case.apiKey === true ? ' +API key' : ''}`,
        r.case.variant,
        target,
        t.requestsPerSecond.toFixed(0),
        t.p50Ms.toFixed(2),
        t.p99Ms.toFixed(2),
        t.maxMs.toFixed(2),
        Number.isFinite(t.cpuUsPerRequest) ? t.cpuUsPerRequest.toFixed(1) : '',
        ratioCell,
        target === 'service' && r.spread !== null ? r.spread.toFixed(3) : '',
        target === 'service' && r.case.target !== undefined ? `>= ${r.case.target.toFixed(2)}` : '',
        notes(r, target),
      ];
    }),
  );
  return (
    `Service vs raw on Node ${runtime.version}: medians of ${pairs} interleaved pair(s) per case ` +
    `(a ratio in parentheses is flagged, not a result)\n` +
    formatTable(header, rows, new Set([3, 4, 5, 6, 7, 8, 9])) +
    versusLines(results)
  );
}

/** The case-to-case comparisons (`versus`): service req/s and CPU per request over the other case's. */
function versusLines(results: readonly CaseResult[]): string {
  const lines = results.flatMap((r) => {
    const other = r.case.versus && results.find((o) => o.case.name === r.case.versus!.case);
    if (!r.case.versus || !other) return [];
    const rps = r.targets.service.requestsPerSecond / other.targets.service.requestsPerSecond;
    const cpu = r.targets.service.cpuUsPerRequest / other.targets.service.cpuUsPerRequest;
    return [
      `${r.case.name} vs ${other.case.name}: ${rps.toFixed(2)} of its req/s (goal >= ${r.case.versus.goal.toFixed(2)}), ` +
        `${cpu.toFixed(2)}x its CPU per request` +
        (r.flagged || other.flagged ? ' (a case is flagged: not a result)' : ''),
    ];
  });
  return lines.length === 0 ? '' : `\n${lines.join('\n')}`;
}

const summaryJson = (t: TargetSummary) => ({
  requestsPerSecond: round(t.requestsPerSecond, 1),
  latencyP50Ms: round(t.p50Ms, 3),
  latencyP99Ms: round(t.p99Ms, 3),
  latencyMaxMs: round(t.maxMs, 3),
  cpuUsPerRequest: Number.isFinite(t.cpuUsPerRequest) ? round(t.cpuUsPerRequest, 2) : null,
  non2xx: t.non2xx,
  errors: t.errors,
  bodyBytes: t.bodyBytes,
});

/** One runtime's comparison for the JSON results: every case's summary, ratios and runs. */
export function comparisonJson({ runtime, pairs, variants, results, traceExports }: Comparison) {
  return {
    node: runtime.version,
    execPath: runtime.execPath,
    pairs,
    pairOrder: PAIR_ORDER,
    noisySpread: NOISY_SPREAD,
    variants: Object.fromEntries(variants.map((v) => [v, VARIANTS[v].describe])),
    cases: results.map((r) => ({
      case: r.case.name,
      variant: r.case.variant,
      path: r.case.path,
      bearer: r.case.bearer,
      apiKey: r.case.apiKey === true,
      goal: r.case.target ?? null,
      versus: r.case.versus ?? null,
      medianRatio: r.medianRatio === null ? null : round(r.medianRatio, 3),
      pairRatios: r.pairRatios.map((x) => round(x, 3)),
      spread: r.spread === null ? null : round(r.spread, 3),
      noisy: r.noisy,
      flagged: r.flagged,
      service: summaryJson(r.targets.service),
      raw: summaryJson(r.targets.raw),
      runs: r.runs.map((run) => ({
        pair: run.pair,
        target: run.target,
        requestsPerSecond: round(run.requestsPerSecond, 1),
        latencyP50Ms: round(run.p50Ms, 3),
        latencyP99Ms: round(run.p99Ms, 3),
        latencyMaxMs: round(run.maxMs, 3),
        requests: run.requests,
        cpuSeconds: round(run.cpuSeconds, 2),
        cpuUsPerRequest: Number.isFinite(run.cpuUsPerRequest) ? round(run.cpuUsPerRequest, 2) : null,
        non2xx: run.non2xx,
        errors: run.errors,
        errorDetail: run.errorDetail,
      })),
    })),
    traceExportsReceived: traceExports,
  };
}

/** One runtime's cases for bench/results/history.jsonl. */
export function comparisonHistory({ runtime, results }: Comparison) {
  return results.map((r) => ({
    node: runtime.version,
    case: r.case.name,
    variant: r.case.variant,
    medianRatio: r.medianRatio === null ? null : round(r.medianRatio, 3),
    spread: r.spread === null ? null : round(r.spread, 3),
    flagged: r.flagged,
    noisy: r.noisy,
    requestsPerSecond: {
      service: round(r.targets.service.requestsPerSecond, 1),
      raw: round(r.targets.raw.requestsPerSecond, 1),
    },
    cpuUsPerRequest: {
      service: Number.isFinite(r.targets.service.cpuUsPerRequest)
        ? round(r.targets.service.cpuUsPerRequest, 2)
        : null,
      raw: Number.isFinite(r.targets.raw.cpuUsPerRequest) ? round(r.targets.raw.cpuUsPerRequest, 2) : null,
    },
  }));
}
