// Connects to REDIS_URL when it is set. Redis is optional: the app starts and serves without it, and
// readiness reports it as degraded rather than failing. Its commands are measured in the app's registry.
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { createRedis } from '../adapters/redis/client.js';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | undefined;
  }
}

export default fp(
  async (app, opts: { url: string | undefined }) => {
    if (opts.url === undefined) {
      app.decorate('redis', undefined);
      return;
    }
    const redis = createRedis({
      url: opts.url,
      logger: app.log,
      connectionName: 'reliability-api',
      metrics: app.metrics.registry,
    });
    app.decorate('redis', redis);
    // Connect in the background: a Redis outage at start-up must not delay or fail the start.
    redis.connect().catch(() => {
      // reported by the client's 'error' listener; retryStrategy keeps reconnecting
    });
    app.addHook('onClose', async () => {
      // QUIT lets Redis finish what it was sent; when not connected there is nothing to flush.
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect(false));
      else redis.disconnect(false);
    });
  },
  { name: 'redis', dependencies: ['metrics'] },
);
