// A Redis client tuned so that Redis trouble never stalls a request: no offline queue (commands fail at
// once while disconnected), short connect and command deadlines, and reconnection in the background.
import { Redis } from 'ioredis';
import type { Log } from '../../observability/logger.js';

export interface RedisOptions {
  url: string;
  logger: Log;
  /** Per-command deadline. A cache or limiter that waits longer than this is slower than having none. */
  commandTimeoutMs?: number;
  connectionName?: string;
}

export function createRedis(options: RedisOptions): Redis {
  const log = options.logger;
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: options.commandTimeoutMs ?? 500,
    connectionName: options.connectionName,
    // Reconnect forever, backing off to 2 s: Redis is optional, so we keep trying instead of giving up.
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
  });
  // Log state changes, not every failed reconnect attempt (that would be a line every 2 s during an outage).
  let healthy: boolean | undefined;
  client.on('ready', () => {
    if (healthy !== true) log.info({ redis: redactUrl(options.url) }, 'redis connected');
    healthy = true;
  });
  client.on('error', (error: Error) => {
    if (healthy !== false) log.warn({ redis: redactUrl(options.url), err: error }, 'redis unavailable');
    healthy = false;
  });
  return client;
}

export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
