// Redis killed mid-run, on the service only: the service limits on a private redis-server, which is
// SIGKILLed a third of the way into a load run. Every answer must still be 200 (the policies are above the
// load, so the insurance limiter refuses nothing) and none may wait much past the limiter's Redis deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import { load, verify, type LoadRequest, type LoadSettings, type Measurement } from '../lib/loadgen.js';
import { stop } from '../lib/processes.js';
import { formatTable, serviceLog } from '../lib/report.js';
import { REDIS_DEADLINE_MS, pgliteDir, startPrivateRedis, startService } from '../lib/setup.js';
import { round } from '../lib/statistics.js';

const OUTAGE_PATH = '/v1/random?min=1&max=100';

export interface OutageResult extends Measurement {
  flagged: boolean;
  killedAfterSeconds: number;
  readiness: unknown;
  storeErrors: number;
}

/** Logs the service to bench/results/<stamp>-service-outage.log. */
export async function redisOutage(settings: LoadSettings, stamp: string): Promise<OutageResult> {
  const { generator, duration, warmup, connections } = settings;
  const redis = await startPrivateRedis();
  const data = pgliteDir();
  const service = await startService(serviceLog(stamp, 'outage'), data, {
    RATE_LIMIT_STORAGE_URI: redis.url,
    REDIS_URL: redis.url,
  });
  try {
    const request: LoadRequest = { url: `${service.baseUrl}${OUTAGE_PATH}` };
    await verify(request.url);
    process.stdout.write(`  Redis killed after ${(duration / 3).toFixed(1)} s of ${duration} s ... `);
    if (warmup > 0) await load(generator, request, warmup, connections);
    const [run] = await Promise.allSettled([
      load(generator, request, duration, connections),
      sleep((duration * 1_000) / 3).then(() => redis.child.kill('SIGKILL')),
    ]);
    if (run.status === 'rejected') throw run.reason;
    const m = run.value;
    const readiness = (await (await fetch(`${service.baseUrl}/health/ready`)).json()) as unknown;
    const metrics = await (await fetch(`${service.baseUrl}/metrics`)).text();
    const storeErrors = [...metrics.matchAll(/^rate_limit_store_errors_total(?:\{[^}]*\})? (\S+)$/gm)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
    const flagged = m.non2xx > 0 || m.errors > 0;
    console.log(
      `${m.requestsPerSecond.toFixed(0)} req/s, max ${m.maxMs.toFixed(1)} ms, ${m.non2xx} non-2xx, ${m.errors} errors`,
    );
    return { ...m, flagged, killedAfterSeconds: duration / 3, readiness, storeErrors };
  } finally {
    await stop(service.child);
    await stop(redis.child);
  }
}

export function outageTable(o: OutageResult): string {
  const header = ['load', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'store errors'];
  const row = [
    `GET /v1/random, Redis killed at ${o.killedAfterSeconds.toFixed(1)} s`,
    o.requestsPerSecond.toFixed(0),
    o.p50Ms.toFixed(2),
    o.p99Ms.toFixed(2),
    o.maxMs.toFixed(2),
    String(o.non2xx),
    String(o.errors),
    String(o.storeErrors),
  ];
  return formatTable(header, [row], new Set([1, 2, 3, 4, 5, 6, 7]));
}

/** The `redis_outage` section of the JSON results (null when Redis was not there to run it). */
export function outageJson(outage: OutageResult | undefined, duration: number) {
  return outage === undefined
    ? null
    : {
        path: OUTAGE_PATH,
        killedAfterSeconds: round(outage.killedAfterSeconds, 1),
        durationSeconds: duration,
        requestsPerSecond: round(outage.requestsPerSecond, 1),
        latencyP50Ms: round(outage.p50Ms, 3),
        latencyP99Ms: round(outage.p99Ms, 3),
        latencyMaxMs: round(outage.maxMs, 3),
        limiterRedisDeadlineMs: REDIS_DEADLINE_MS,
        non2xx: outage.non2xx,
        errors: outage.errors,
        rateLimitStoreErrors: outage.storeErrors,
        readinessAfter: outage.readiness,
        flagged: outage.flagged,
      };
}
