// Failed-login limits per (username, client IP) and per client IP, counted across replicas in Redis when it
// is configured and locally otherwise (rate-limiter-flexible). When Redis fails, its in-memory insurance
// limiter counts instead: a Redis outage never opens the door to unlimited guessing, nor blocks logins.
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
}

// One client IP guesses across many usernames: allow a few honest typos on several accounts behind one NAT.
const PER_IP_FACTOR = 4;

function limiter(
  redis: Redis | undefined,
  keyPrefix: string,
  points: number,
  duration: number,
): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix, points, duration });
  if (redis === undefined) return memory;
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points,
    duration,
    rejectIfRedisNotReady: true,
    insuranceLimiter: memory,
  });
}

export class LoginLimiter {
  readonly #byUserAndIp: RateLimiterAbstract;
  readonly #byIp: RateLimiterAbstract;
  readonly #points: [number, number];

  constructor(options: LoginLimiterOptions) {
    const { redis, keyPrefix, maxFailures, windowSeconds } = options;
    this.#points = [maxFailures, maxFailures * PER_IP_FACTOR];
    this.#byUserAndIp = limiter(redis, `${keyPrefix}login-fail-user-ip`, maxFailures, windowSeconds);
    this.#byIp = limiter(redis, `${keyPrefix}login-fail-ip`, maxFailures * PER_IP_FACTOR, windowSeconds);
  }

  static #key(username: string, ip: string): string {
    return `${username.toLowerCase()}|${ip}`;
  }

  /** Seconds until another attempt is allowed, or 0 when one is allowed now. */
  async retryAfterSeconds(username: string, ip: string): Promise<number> {
    const [pair, perIp] = await Promise.all([
      this.#byUserAndIp.get(LoginLimiter.#key(username, ip)).catch(() => null),
      this.#byIp.get(ip).catch(() => null),
    ]);
    const blocked = (res: RateLimiterRes | null, points: number) =>
      res !== null && res.consumedPoints >= points ? Math.ceil(res.msBeforeNext / 1000) : 0;
    return Math.max(blocked(pair, this.#points[0]), blocked(perIp, this.#points[1]));
  }

  async recordFailure(username: string, ip: string): Promise<void> {
    // consume() rejects with a RateLimiterRes once over the limit; that is the expected outcome, not an error.
    await Promise.all([
      this.#byUserAndIp.consume(LoginLimiter.#key(username, ip)).catch(() => undefined),
      this.#byIp.consume(ip).catch(() => undefined),
    ]);
  }

  /** A successful login clears that username's failures from this IP (not the per-IP count). */
  async recordSuccess(username: string, ip: string): Promise<void> {
    await this.#byUserAndIp.delete(LoginLimiter.#key(username, ip)).catch(() => undefined);
  }
}
