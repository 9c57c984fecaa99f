// The cache behind fallbacks of outbound calls: in Redis (shared by every replica) when a URL is given,
// in process (LRU, bounded) otherwise. A fallback must never be the thing that fails, so any cache error
// reads as a miss and a write that fails is dropped.
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Registry } from 'prom-client';
import type { Clock } from '../../lib/clock.js';
import type { Log } from '../../lib/log.js';
import { createRedis, redactUrl } from '../redis/client.js';

export interface FallbackCache {
  readonly kind: 'redis' | 'memory';
  get<T>(key: string): Promise<T | undefined>;
  /** Without ttlMs the entry lives until evicted: the LRU bound in process, `maxTtlMs` in Redis. */
  set(key: string, value: unknown, ttlMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface FallbackCacheOptions {
  /** Redis URL; unset keeps the cache in this process. */
  url?: string;
  /** Prefix of every Redis key, e.g. `<REDIS_KEY_PREFIX>beacon:`. */
  namespace: string;
  log: Log;
  /** Registry for the Redis command durations, when the cache is in Redis. */
  metrics?: Registry;
  /** Bound of the in-process cache. */
  maxEntries?: number;
  /** Ceiling of "no expiry" in Redis, so keys of a retired deployment do not stay for ever. */
  maxTtlMs?: number;
  /** Per-command deadline: past it a lookup is a miss. Longer than a LAN round trip, far below a request. */
  commandTimeoutMs?: number;
  /** Time for the in-process cache's expiry (Redis keeps its own); the system clock by default. */
  clock?: Clock;
}

const DEFAULT_MAX_ENTRIES = 1_000;
const DEFAULT_MAX_TTL_MS = 7 * 24 * 3600 * 1000;
const DEFAULT_COMMAND_TIMEOUT_MS = 50;
// During an outage every request would log the same failure; one line per interval says enough.
const ERROR_LOG_INTERVAL_MS = 30_000;

export function createFallbackCache(options: FallbackCacheOptions): FallbackCache {
  return options.url === undefined ? memoryCache(options) : redisCache(options, options.url);
}

function memoryCache(options: FallbackCacheOptions): FallbackCache {
  // Values are boxed: lru-cache refuses undefined and null values, and a cached null is still an answer.
  const entries = new LRUCache<string, { value: unknown }>({
    max: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
    ...(options.clock === undefined ? {} : { perf: options.clock }),
  });
  return {
    kind: 'memory',
    get: async <T>(key: string) => entries.get(key)?.value as T | undefined,
    async set(key, value, ttlMs) {
      entries.set(key, { value }, ttlMs === undefined ? {} : { ttl: ttlMs });
    },
    async close() {
      entries.clear();
    },
  };
}

function redisCache(options: FallbackCacheOptions, url: string): FallbackCache {
  const redis: Redis = createRedis({
    url,
    logger: options.log,
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectionName: 'reliability-api-fallback-cache',
    metrics: options.metrics,
  });
  // In the background: an unreachable cache must not delay the start; the client keeps reconnecting.
  redis.connect().catch(() => {
    // reported by the client's 'error' listener
  });
  let lastLogged = -Infinity;
  const degraded = (error: unknown, operation: string) => {
    const now = performance.now();
    if (now - lastLogged < ERROR_LOG_INTERVAL_MS) return;
    lastLogged = now;
    options.log.warn(
      { err: error, cache: redactUrl(url), operation },
      'fallback cache unavailable; serving without it',
    );
  };
  const maxTtlMs = options.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
  return {
    kind: 'redis',
    async get<T>(key: string) {
      try {
        const raw = await redis.get(options.namespace + key);
        return raw === null ? undefined : (JSON.parse(raw) as { value: T }).value;
      } catch (error) {
        degraded(error, 'get');
        return undefined;
      }
    },
    async set(key, value, ttlMs) {
      try {
        const ttl = Math.max(1, Math.min(Math.round(ttlMs ?? maxTtlMs), maxTtlMs));
        await redis.set(options.namespace + key, JSON.stringify({ value }), 'PX', ttl);
      } catch (error) {
        degraded(error, 'set');
      }
    },
    async close() {
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect(false));
      else redis.disconnect(false);
    },
  };
}
