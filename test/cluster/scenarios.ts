// The scenarios, each under steady load through nginx: what it does, what it measured, and the
// invariants that must hold (correctness, asserted in CI) next to the figures (reported, bounded only
// generously).
import { setTimeout as sleep } from 'node:timers/promises';
import { Load, summarize, type Sample, type Summary } from './rig/load.js';
import type { Replica } from './rig/replica.js';
import { session, type Rig } from './rig/rig.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  summary: Summary;
  /** What "recovery" means for this scenario, and how long it took (ms). */
  recovery: { what: string; ms: number } | undefined;
  checks: Check[];
  notes: string[];
}

export interface Timing {
  /** Steady load, requests per second. */
  rate: number;
  /** How long outages last, in seconds. */
  outageSeconds: number;
  /** Load before and after each disturbance, in seconds. */
  settleSeconds: number;
}

const check = (name: string, ok: boolean, detail: string): Check => ({ name, ok, detail });
const failures = (samples: Sample[]) =>
  samples.filter((s) => s.outcome === '5xx' || s.outcome === 'socket' || s.outcome === 'timeout');
export const describeSamples = (samples: Sample[]) =>
  samples
    .slice(0, 5)
    .map(
      (s) =>
        `${s.kind} ${s.status ?? s.outcome}${s.detail ? ` "${s.detail}"` : ''} at ${Math.round(s.at)} ms`,
    )
    .join(', ');

/** Polls `fn` every 100 ms until it returns true; the ms it took, or undefined after `timeoutMs`. */
async function within(fn: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const started = performance.now();
  for (;;) {
    if (await fn()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) return undefined;
    await sleep(100);
  }
}

const allReady = (replicas: Replica[], status: number) => async () =>
  (await Promise.all(replicas.map((r) => r.ready()))).every((s) => s === status);

async function underLoad(
  record: (load: Load) => void,
  rig: Rig,
  timing: Timing,
  act: (load: Load) => Promise<void>,
): Promise<Load> {
  const load = new Load(rig.nginx.url, rig.credentials, timing.rate);
  record(load);
  load.start();
  await sleep(timing.settleSeconds * 1000);
  try {
    await act(load);
  } finally {
    await sleep(timing.settleSeconds * 1000);
    await load.stop();
  }
  return load;
}

function slowest(samples: Sample[], boundMs: number): Check {
  const over = samples.filter((s) => s.ms > boundMs);
  return check(
    `no request over ${boundMs / 1000} s`,
    over.length === 0,
    over.length === 0 ? 'none' : describeSamples(over),
  );
}

export async function rollingRestart(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  const notes: string[] = [];
  const exits: (number | null)[] = [];
  let slowestReady = 0;
  const load = await underLoad(record, rig, timing, async () => {
    for (const replica of rig.replicas) {
      // Out of the balancer first (a Service drops a terminating pod the same way), then SIGTERM.
      await rig.nginx.setDown(replica.upstream, true);
      const { code, ms } = await replica.terminate();
      exits.push(code);
      const ready = await replica.start();
      await rig.nginx.setDown(replica.upstream, false);
      slowestReady = Math.max(slowestReady, ready);
      notes.push(
        `replica ${replica.index}: drained and exited ${code} in ${Math.round(ms)} ms, replacement ready in ${Math.round(ready)} ms`,
      );
    }
  });
  const failed = failures(load.samples).concat(load.samples.filter((s) => s.outcome === '503'));
  return {
    name: 'rolling restart',
    summary: summarize(load.samples),
    recovery: { what: 'slowest replacement ready', ms: slowestReady },
    checks: [
      check(
        '0 failed requests',
        failed.length === 0,
        failed.length === 0 ? 'none' : `${failed.length}: ${describeSamples(failed)}`,
      ),
      check(
        'every replica exited 0',
        exits.every((c) => c === 0),
        exits.join(', '),
      ),
      slowest(load.samples, 5_000),
    ],
    notes,
  };
}

export async function replicaKilled(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  const victim = rig.replicas[1]!;
  let killedAt = 0;
  let exitedAt = 0;
  let ready = 0;
  const load = await underLoad(record, rig, timing, async (l) => {
    killedAt = l.now();
    await victim.kill();
    exitedAt = l.now();
    await sleep(Math.min(5, timing.outageSeconds) * 1000);
    ready = await victim.start();
  });
  // In flight at the kill: sent before the process was gone and not answered before the signal. A
  // request nginx wrote to the replica while the kernel tore it down is one of them: it reached the
  // replica, which died with it. Counted over all replicas (the client cannot tell which one served).
  const inFlight = load.samples.filter((s) => s.at <= exitedAt && s.at + s.ms >= killedAt).length;
  const after = load.between(killedAt - 5_000);
  const idempotent = failures(after).filter((s) => !['refresh', 'create_key'].includes(s.kind));
  const posts = failures(after).filter((s) => ['refresh', 'create_key'].includes(s.kind));
  return {
    name: 'replica SIGKILLed',
    summary: summarize(load.samples),
    recovery: { what: 'restarted replica ready', ms: ready },
    checks: [
      check(
        'idempotent requests: 0 failed',
        idempotent.length === 0,
        idempotent.length === 0 ? 'none' : describeSamples(idempotent),
      ),
      check(
        'non-idempotent failures <= requests in flight at the kill',
        posts.length <= inFlight,
        `${posts.length} failed${posts.length ? ` (${describeSamples(posts)})` : ''}, ${inFlight} in flight (all replicas)`,
      ),
      slowest(load.samples, 5_000),
    ],
    notes: [
      `SIGKILL at ${Math.round(killedAt)} ms, process gone at ${Math.round(exitedAt)} ms; ${inFlight} requests in flight then (on all replicas)`,
    ],
  };
}

export async function postgresStopped(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  let stoppedAt = 0;
  let startedAt = 0;
  let notReadyMs: number | undefined;
  let readyAgainMs: number | undefined;
  const load = await underLoad(record, rig, timing, async (l) => {
    stoppedAt = l.now();
    await rig.postgres.stop('fast');
    notReadyMs = await within(allReady(rig.replicas, 503), 5_000);
    await sleep(Math.max(0, timing.outageSeconds * 1000 - (l.now() - stoppedAt)));
    startedAt = l.now();
    await rig.postgres.start();
    readyAgainMs = await within(allReady(rig.replicas, 200), 15_000);
  });
  const during = load.between(stoppedAt + 100, startedAt);
  // Draws need nothing but the process; an API key's draw and /v1/auth/me need the database only for
  // what a replica has not cached yet (a replica restarted just before has a cold cache), so they may
  // answer 200 or the same 503; refreshes and key creations always need it.
  const bound = during.filter((s) => s.kind !== 'random');
  const free = during.filter((s) => s.kind === 'random');
  const badBound = bound.filter(
    (s) => s.outcome !== '2xx' && !(s.outcome === '503' && s.problem === true && s.ms < 2_000),
  );
  const badFree = free.filter((s) => s.outcome !== '2xx');
  return {
    name: `PostgreSQL stopped ${timing.outageSeconds} s`,
    summary: summarize(load.samples),
    recovery:
      readyAgainMs === undefined
        ? undefined
        : { what: 'every replica ready after the restart', ms: readyAgainMs },
    checks: [
      check(
        'every replica not ready within 2 s',
        notReadyMs !== undefined && notReadyMs <= 2_000,
        `${notReadyMs === undefined ? 'never' : Math.round(notReadyMs)} ms`,
      ),
      check(
        'database-bound requests: 503 problem+json with Retry-After within 2 s',
        badBound.length === 0,
        `${bound.length} sent, ${badBound.length} otherwise${badBound.length ? `: ${describeSamples(badBound)}` : ''}`,
      ),
      check(
        'requests that do not need it: 200',
        badFree.length === 0,
        `${free.length} sent, ${badFree.length} failed${badFree.length ? `: ${describeSamples(badFree)}` : ''}`,
      ),
      check(
        'ready again within 5 s without a restart',
        readyAgainMs !== undefined && readyAgainMs <= 5_000,
        `${readyAgainMs === undefined ? 'never' : Math.round(readyAgainMs)} ms`,
      ),
      slowest(load.samples, 5_000),
    ],
    notes: [],
  };
}

/** Ends `tokens`' session on `replica` directly (not through nginx). */
function logoutOn(replica: Replica, tokens: { accessToken: string; refreshToken: string }) {
  return fetch(`${replica.url}/v1/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: tokens.refreshToken }),
  });
}

/** Until `token` is refused by `replica` (401), or undefined after `timeoutMs`. */
async function refusedBy(replica: Replica, headers: Record<string, string>, path: string, timeoutMs: number) {
  return within(async () => {
    try {
      const response = await fetch(`${replica.url}${path}`, { headers, signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      return response.status === 401;
    } catch {
      return false;
    }
  }, timeoutMs);
}

async function globalLimit(rig: Rig, key: string): Promise<{ admitted: number; sent: number }> {
  const sent = rig.limit * 3;
  let admitted = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 12 }, async () => {
      while (next < sent) {
        const replica = rig.replicas[next++ % rig.replicas.length]!;
        const response = await fetch(`${replica.url}/v1/random`, { headers: { 'x-api-key': key } });
        await response.arrayBuffer();
        if (response.status === 200) admitted++;
      }
    }),
  );
  return { admitted, sent };
}

/** The replicas' rate_limit_store_errors_total, summed: each is a decision the local limiter made. */
async function storeErrors(rig: Rig): Promise<number> {
  const counts = await Promise.all(
    rig.replicas.map(async (r) => {
      const text = await (await fetch(`${r.url}/metrics`)).text();
      const line = /^rate_limit_store_errors_total (\S+)$/m.exec(text);
      if (line === null) throw new Error(`replica ${r.index}: no rate_limit_store_errors_total in /metrics`);
      return Number(line[1]);
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

interface SharedLimit {
  admitted: number;
  sent: number;
  /** Measurements discarded because a replica decided locally during them (its Redis call missed the deadline). */
  discarded: string[];
}

/**
 * L requests per key admitted across the replicas, sending 3 L. A Redis call that misses its 50 ms deadline
 * (an event-loop stall on a loaded machine is enough) makes that replica decide locally for a second, by
 * design; such a measurement says nothing about sharing, so it is counted and made again on the next key.
 * Only a measurement without a single local decision is the result.
 */
async function measureSharedLimit(rig: Rig, keys: { key: string }[]): Promise<SharedLimit> {
  const discarded: string[] = [];
  for (const { key } of keys) {
    const before = await storeErrors(rig);
    const result = await globalLimit(rig, key);
    const local = (await storeErrors(rig)) - before;
    if (local === 0) return { ...result, discarded };
    discarded.push(`${result.admitted} of ${result.sent} admitted with ${local} local decisions`);
  }
  return { admitted: Number.NaN, sent: rig.limit * 3, discarded };
}

const sharedLimitCheck = (name: string, rig: Rig, limit: SharedLimit | undefined): Check =>
  check(
    name,
    limit !== undefined && Math.abs(limit.admitted - rig.limit) <= rig.limit * 0.05,
    limit === undefined
      ? 'not measured'
      : `${Number.isNaN(limit.admitted) ? 'no measurement without a local decision' : `${limit.admitted} of ${limit.sent} admitted`}, L = ${rig.limit}` +
          (limit.discarded.length > 0 ? `; made again after: ${limit.discarded.join('; ')}` : ''),
  );

export async function redisKilled(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  const [a, b, c] = rig.replicas as [Replica, Replica, Replica];
  const notes: string[] = [];
  const checks: Check[] = [];
  let limit: SharedLimit | undefined;
  const load = await underLoad(record, rig, timing, async () => {
    const doomed = await session(rig.nginx.url);
    const owner = await session(rig.nginx.url);
    const keyResponse = await fetch(`${rig.nginx.url}/v1/api-keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.accessToken}` },
      body: JSON.stringify({ name: 'revoked-during-redis-outage', scopes: ['random:read'] }),
    });
    const key = (await keyResponse.json()) as { id: string; key: string };
    await rig.redis.kill();
    await sleep(1_000);
    // Made during the outage, on replica A: a logout and a key deletion.
    const logout = await logoutOn(a, doomed);
    const deletion = await fetch(`${a.url}/v1/api-keys/${key.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${owner.accessToken}` },
    });
    notes.push(`during the outage: logout ${logout.status}, key deletion ${deletion.status} on replica A`);
    await sleep(Math.max(0, timing.outageSeconds * 1000 - 1_000));
    await rig.redis.start();
    const back = performance.now();
    const waits = await Promise.all(
      [b, c].flatMap((r) => [
        refusedBy(r, { authorization: `Bearer ${doomed.accessToken}` }, '/v1/auth/me', 5_000),
        refusedBy(r, { 'x-api-key': key.key }, '/v1/random', 5_000),
      ]),
    );
    const worst = Math.max(...waits.map((w) => (w === undefined ? Infinity : w)));
    checks.push(
      check(
        'logout and key deletion refused on B and C within 1 s of Redis returning',
        worst <= 1_000 + (performance.now() - back) * 0,
        `${worst === Infinity ? 'never' : `${Math.round(worst)} ms`}`,
      ),
    );
    // The limiter goes back to Redis a second after Redis answers again.
    const redisUp = await within(async () => {
      const states = await Promise.all(
        rig.replicas.map(async (r) => {
          const response = await fetch(`${r.url}/health/ready`);
          return ((await response.json()) as { status: string }).status;
        }),
      );
      return states.every((s) => s === 'ready');
    }, 10_000);
    notes.push(
      `every replica back on Redis (readiness "ready") after ${redisUp === undefined ? 'never' : Math.round(redisUp)} ms`,
    );
    await sleep(1_500);
    limit = await measureSharedLimit(rig, rig.limited.afterRedis);
  });
  const failed = failures(load.samples);
  checks.unshift(
    check(
      'no request failed',
      failed.length === 0,
      failed.length === 0 ? 'none' : `${failed.length}: ${describeSamples(failed)}`,
    ),
  );
  checks.push(
    sharedLimitCheck('one limit shared again afterwards (within 5% of L)', rig, limit),
    slowest(load.samples, 5_000),
  );
  return {
    name: `Redis killed ${timing.outageSeconds} s`,
    summary: summarize(load.samples),
    recovery: undefined,
    checks,
    notes,
  };
}

export async function sharedLimit(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  let limit: SharedLimit | undefined;
  const load = await underLoad(record, rig, { ...timing, settleSeconds: 1 }, async () => {
    limit = await measureSharedLimit(rig, rig.limited.check);
  });
  const failed = failures(load.samples);
  return {
    name: 'one key limit across 3 replicas',
    summary: summarize(load.samples),
    recovery: undefined,
    checks: [
      sharedLimitCheck('admitted within 5% of L', rig, limit),
      check('no request failed', failed.length === 0, failed.length === 0 ? 'none' : describeSamples(failed)),
    ],
    notes: [],
  };
}

export async function revocation(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  const [a, b, c] = rig.replicas as [Replica, Replica, Replica];
  let worst: number | undefined;
  const load = await underLoad(record, rig, { ...timing, settleSeconds: 1 }, async () => {
    const doomed = await session(rig.nginx.url);
    const logout = await logoutOn(a, doomed);
    if (logout.status !== 204) throw new Error(`logout answered ${logout.status}`);
    const waits = await Promise.all(
      [b, c].map((r) =>
        refusedBy(r, { authorization: `Bearer ${doomed.accessToken}` }, '/v1/auth/me', 5_000),
      ),
    );
    worst = waits.some((w) => w === undefined) ? undefined : Math.max(...(waits as number[]));
  });
  const failed = failures(load.samples);
  return {
    name: 'logout on A, refused by B and C',
    summary: summarize(load.samples),
    recovery: worst === undefined ? undefined : { what: 'slowest replica refusing the token', ms: worst },
    checks: [
      check(
        'refused by B and C within 1 s',
        worst !== undefined && worst <= 1_000,
        `${worst === undefined ? 'never' : Math.round(worst)} ms`,
      ),
      check('no request failed', failed.length === 0, failed.length === 0 ? 'none' : describeSamples(failed)),
    ],
    notes: [],
  };
}

export async function networkCut(
  rig: Rig,
  timing: Timing,
  record: (load: Load) => void = () => {},
): Promise<ScenarioResult> {
  const victim = rig.replicas[2]!;
  let notReady: number | undefined;
  let direct: { status: number; ms: number; problem: boolean } | undefined;
  let recovered: number | undefined;
  let cutAt = 0;
  let restoredAt = 0;
  const load = await underLoad(record, rig, timing, async (l) => {
    cutAt = l.now();
    victim.network.cut([rig.postgres.port, rig.redis.port]);
    notReady = await within(async () => (await victim.ready()) === 503, 5_000);
    const started = performance.now();
    const response = await fetch(`${victim.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'nobody-here', password: 'not-the-password-1' }),
    });
    await response.arrayBuffer();
    direct = {
      status: response.status,
      ms: performance.now() - started,
      problem:
        String(response.headers.get('content-type')).startsWith('application/problem+json') &&
        response.headers.has('retry-after'),
    };
    await sleep(Math.max(0, timing.outageSeconds * 1000 - (l.now() - cutAt)));
    restoredAt = l.now();
    victim.network.restore();
    recovered = await within(async () => (await victim.ready()) === 200, 15_000);
  });
  const during = load.between(cutAt, restoredAt + 2_000);
  const failed = failures(during);
  const bad503 = during.filter((s) => s.outcome === '503' && !(s.problem === true && s.ms < 2_500));
  return {
    name: `replica cut from PostgreSQL and Redis ${timing.outageSeconds} s`,
    summary: summarize(load.samples),
    recovery:
      recovered === undefined ? undefined : { what: 'cut replica ready after the cut ends', ms: recovered },
    checks: [
      check(
        'its readiness fails within 2 s (plus one probe)',
        notReady !== undefined && notReady <= 3_000,
        `${notReady === undefined ? 'never' : Math.round(notReady)} ms`,
      ),
      check(
        'a database-bound request there: 503 problem+json within 2 s',
        direct !== undefined && direct.status === 503 && direct.problem && direct.ms < 2_000,
        direct === undefined ? 'not sent' : `${direct.status} in ${Math.round(direct.ms)} ms`,
      ),
      check(
        'through nginx: no 5xx, socket errors or timeouts',
        failed.length === 0,
        failed.length === 0 ? 'none' : `${failed.length}: ${describeSamples(failed)}`,
      ),
      check(
        'every 503 is problem+json with Retry-After within 2.5 s',
        bad503.length === 0,
        `${during.filter((s) => s.outcome === '503').length} 503s, ${bad503.length} otherwise`,
      ),
      check(
        'recovers on its own within 10 s',
        recovered !== undefined && recovered <= 10_000,
        `${recovered === undefined ? 'never' : Math.round(recovered)} ms`,
      ),
      slowest(load.samples, 5_000),
    ],
    notes: [],
  };
}

/** Every acknowledged API key creation is in the database, and no Idempotency-Key made two. */
export async function writesKept(rig: Rig, loads: Load[]): Promise<Check[]> {
  const writes = loads.flatMap((l) => [...l.writes.values()]);
  const names = writes.map((w) => w.idempotencyKey);
  const rows = await rig.postgres.query<{ id: string; name: string }>(
    'rig',
    'select id, name from api_keys where name = any($1)',
    [names],
  );
  const byName = new Map<string, number>();
  for (const row of rows) byName.set(row.name, (byName.get(row.name) ?? 0) + 1);
  const ids = new Set(rows.map((r) => r.id));
  const acknowledged = writes.filter((w) => w.acknowledged !== undefined);
  const lost = acknowledged.filter((w) => !ids.has(w.acknowledged!));
  const duplicated = [...byName].filter(([, n]) => n > 1);
  const unacknowledged = writes.filter((w) => w.acknowledged === undefined);
  return [
    check(
      'every write acknowledged in the end (each retried with its key for up to 30 s)',
      unacknowledged.length === 0,
      `${unacknowledged.length} of ${writes.length} never acknowledged${
        unacknowledged.length
          ? `: ${unacknowledged
              .slice(0, 3)
              .map((w) => `${w.idempotencyKey} after ${w.attempts} attempts`)
              .join(', ')}`
          : ''
      }`,
    ),
    check(
      'no acknowledged write lost',
      lost.length === 0,
      `${acknowledged.length} acknowledged, ${lost.length} missing`,
    ),
    check(
      'no Idempotency-Key created two keys',
      duplicated.length === 0,
      `${writes.length} keys, ${writes.reduce((n, w) => n + w.attempts, 0)} attempts, ${duplicated.length} duplicated`,
    ),
  ];
}
