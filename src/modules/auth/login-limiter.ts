// Failed-login limits per (username, client IP) and per client IP, counted across replicas in Redis when it
// is configured and locally otherwise (rate-limiter-flexible). When Redis fails, its in-memory insurance
// limiter counts instead: a Redis outage never opens the door to unlimited guessing, nor blocks logins.
// Each Redis call has a short deadline (RATE_LIMIT_REDIS_TIMEOUT_MS), past which the in-memory limiter
// answers too: a Redis that stops answering would otherwise add the client's command timeout to every
// login, on top of the database's own deadline.
import { TaskCancelledError, TimeoutStrategy, timeout, type TimeoutPolicy } from 'cockatiel';
import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterAbstract,
  type RateLimiterRes,
} from 'rate-limiter-flexible';

export interface LoginLimiterOptions {
  redis: Redis | undefined;
  keyPrefix: string;
  maxFailures: number;
  windowSeconds: number;
  /** Deadline of one Redis call; default 50 ms. */
  redisTimeoutMs?: number;
}

// One client IP guesses across many usernames: allow a few honest typos on several accounts behind one NAT.
const PER_IP_FACTOR = 4;

/** The shared limiter (absent without Redis) and the in-memory one that insures it. */
interface Limiter {
  shared: RateLimiterAbstract | undefined;
  memory: RateLimiterAbstract;
}

function limiter(redis: Redis | undefined, keyPrefix: string, points: number, duration: number): Limiter {
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (redis === undefined) return { shared: undefined, memory };
  const shared = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points,
    duration,
    rejectIfRedisNotReady: true,
    insuranceLimiter: memory,
  });
  return { shared, memory };
}

export class LoginLimiter {
  readonly #byUserAndIp: Limiter;
  readonly #byIp: Limiter;
  readonly #points: [number, number];
  readonly #deadline: TimeoutPolicy;

  constructor(options: LoginLimiterOptions) {
    const { redis, keyPrefix, maxFailures, windowSeconds } = options;
    this.#points = [maxFailures, maxFailures * PER_IP_FACTOR];
    // Aggressive: the call is abandoned at the deadline (a late Redis reply is ignored).
    this.#deadline = timeout(options.redisTimeoutMs ?? 50, TimeoutStrategy.Aggressive);
    this.#byUserAndIp = limiter(redis, `${keyPrefix}login-fail-user-ip`, maxFailures, windowSeconds);
    this.#byIp = limiter(redis, `${keyPrefix}login-fail-ip`, maxFailures * PER_IP_FACTOR, windowSeconds);
  }

  /** `call` on the shared limiter within the deadline, else on the in-memory one. */
  async #call<T>(limiter: Limiter, call: (l: RateLimiterAbstract) => Promise<T>): Promise<T> {
    const { shared, memory } = limiter;
    if (shared === undefined) return call(memory);
    try {
      return await this.#deadline.execute(() => call(shared));
    } catch (error) {
      if (error instanceof TaskCancelledError) return call(memory);
      throw error;
    }
  }

  static #key(username: string, ip: string): string {
    return `${username.toLowerCase()}|${ip}`;
  }

  /** Seconds until another attempt is allowed, or 0 when one is allowed now. */
  async retryAfterSeconds(username: string, ip: string): Promise<number> {
    const [pair, perIp] = await Promise.all([
      this.#call(this.#byUserAndIp, (l) => l.get(LoginLimiter.#key(username, ip))).catch(() => null),
      this.#call(this.#byIp, (l) => l.get(ip)).catch(() => null),
    ]);
    const blocked = (res: RateLimiterRes | null, points: number) =>
      res !== null && res.consumedPoints >= points ? Math.ceil(res.msBeforeNext / 1000) : 0;
    return Math.max(blocked(pair, this.#points[0]), blocked(perIp, this.#points[1]));
  }

  async recordFailure(username: string, ip: string): Promise<void> {
    // consume() rejects with a RateLimiterRes once over the limit; that is the expected outcome, not an error.
    await Promise.all([
      this.#call(this.#byUserAndIp, (l) => l.consume(LoginLimiter.#key(username, ip))).catch(() => undefined),
      this.#call(this.#byIp, (l) => l.consume(ip)).catch(() => undefined),
    ]);
  }

  /** A successful login clears that username's failures from this IP (not the per-IP count). */
  async recordSuccess(username: string, ip: string): Promise<void> {
    await this.#call(this.#byUserAndIp, (l) => l.delete(LoginLimiter.#key(username, ip))).catch(
      () => undefined,
    );
  }
}
