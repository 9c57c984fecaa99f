// GCRA (the generic cell rate algorithm): a token bucket stored as one number per key, the theoretical
// arrival time (TAT). `limit` requests per `windowSeconds` refill smoothly, and up to `burst` may arrive at
// once. The same arithmetic runs in-process (here, with an injected clock) and in Redis (GCRA_LUA), so a
// decision does not depend on which store made it. Written here because neither rate-limiter-flexible nor
// @fastify/rate-limit offers GCRA (a smooth refill with a burst) in one atomic Redis round trip.

export interface RatePolicy {
  /** Requests per window, sustained. */
  limit: number;
  windowSeconds: number;
  /** Requests allowed at once on top of an empty bucket. */
  burst: number;
}

export interface Decision {
  allowed: boolean;
  /** Requests still allowed right now. */
  remaining: number;
  /** Milliseconds until the next request is allowed (0 when allowed). */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

/** Emission interval and burst capacity in microseconds (Redis TIME's unit). */
export function gcraParams(policy: RatePolicy): { intervalUs: number; capacityUs: number } {
  const intervalUs = Math.max(1, Math.round((policy.windowSeconds * 1_000_000) / policy.limit));
  return { intervalUs, capacityUs: intervalUs * policy.burst };
}

/** One GCRA step. `tat` is the stored arrival time (µs) or undefined; returns the decision and new TAT. */
export function gcraStep(
  nowUs: number,
  tat: number | undefined,
  intervalUs: number,
  capacityUs: number,
): { decision: Decision; newTat: number | undefined } {
  const base = tat === undefined || tat < nowUs ? nowUs : tat;
  const newTat = base + intervalUs;
  const allowAt = newTat - capacityUs;
  if (nowUs < allowAt) {
    return {
      decision: {
        allowed: false,
        remaining: 0,
        retryAfterMs: Math.ceil((allowAt - nowUs) / 1000),
        resetMs: Math.ceil((base - nowUs) / 1000),
      },
      newTat: undefined,
    };
  }
  return {
    decision: {
      allowed: true,
      remaining: Math.floor((nowUs - allowAt) / intervalUs),
      retryAfterMs: 0,
      resetMs: Math.ceil((newTat - nowUs) / 1000),
    },
    newTat,
  };
}

/**
 * The same step inside Redis, atomically, in one round trip (EVALSHA). Time comes from Redis itself, so
 * replicas with skewed clocks share one timeline. Returns {allowed, remaining, retry_after_us, reset_us}.
 */
export const GCRA_LUA = `
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - capacity
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
`;

/** An in-process GCRA store with a bounded number of keys and an injected clock (µs). */
export class MemoryGcra {
  readonly #tats = new Map<string, number>();

  constructor(
    private readonly nowUs: () => number,
    private readonly maxKeys = 100_000,
  ) {}

  take(key: string, intervalUs: number, capacityUs: number): Decision {
    const now = this.nowUs();
    const { decision, newTat } = gcraStep(now, this.#tats.get(key), intervalUs, capacityUs);
    if (newTat !== undefined) {
      // Re-insert so Map order tracks recency; evict the stalest key when full (its bucket was the
      // fullest, so forgetting it errs on the side of allowing).
      this.#tats.delete(key);
      this.#tats.set(key, newTat);
      if (this.#tats.size > this.maxKeys) {
        const oldest = this.#tats.keys().next().value;
        if (oldest !== undefined) this.#tats.delete(oldest);
      }
    }
    return decision;
  }
}
