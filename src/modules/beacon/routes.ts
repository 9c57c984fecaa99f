// GET /v1/beacon/latest and /v1/beacon/rounds/{round}: the drand randomness beacon, relayed through the
// resilient outbound client and a fallback cache. X-Cache says where each answer came from.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createFallbackCache } from '../../adapters/cache/fallback-cache.js';
import type { Clock } from '../../lib/clock.js';
import type { Config } from '../../config/schema.js';
import { InvalidParametersError } from '../../lib/errors.js';
import { withProblems } from '../../lib/problem.js';
import * as S from './schemas.js';
import { BeaconService, type BeaconAnswer } from './service.js';

export type BeaconConfig = Pick<Config, 'BEACON_URL' | 'CIRCUIT_BREAKER_CACHE_URL' | 'REDIS_KEY_PREFIX'>;

const present = ({ beacon, cache }: BeaconAnswer) => ({ ...beacon, stale: cache === 'stale' });

export const beaconRoutes: FastifyPluginAsyncTypebox<{
  anonymous: boolean;
  config: BeaconConfig;
  clock: Clock;
}> = async (app, opts) => {
  // The same rule as the random API: `random:read`, unless anonymous access is on (ANONYMOUS_ACCESS).
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, auth: { scope: 'random:read', anonymous: opts.anonymous } };
  });

  const cache = createFallbackCache({
    url: opts.config.CIRCUIT_BREAKER_CACHE_URL,
    namespace: `${opts.config.REDIS_KEY_PREFIX}beacon:`,
    log: app.log,
    metrics: app.metrics.registry,
    clock: opts.clock,
  });
  app.addHook('onClose', () => cache.close());
  const beacon = new BeaconService({
    client: app.outbound.client('beacon', opts.config.BEACON_URL),
    cache,
    log: app.log,
    clock: opts.clock,
  });

  const tags = ['beacon'];
  const headers = {
    'x-cache': {
      type: 'string',
      enum: ['hit', 'miss', 'stale'],
      description:
        '`miss`: fetched now; `hit`: from the cache; `stale`: the beacon failed, last known round.',
    },
  };

  app.get(
    '/beacon/latest',
    {
      schema: {
        tags,
        summary:
          'The latest round of the drand randomness beacon (the last known one, stale, when it is down)',
        description:
          'Relayed from the drand League of Entropy beacon and cached until the next round is due. While the beacon is unreachable the last known round is answered with `stale: true` and `X-Cache: stale`; with nothing known yet, 503 with Retry-After.',
        querystring: S.NoQuery,
        response: withProblems({ 200: { ...S.BeaconReply, headers } }),
      },
    },
    async (_request, reply) => {
      const answer = await beacon.latest();
      // A new round arrives every period: let clients revalidate rather than keep an old "latest".
      reply.header('x-cache', answer.cache).header('cache-control', 'no-cache');
      return present(answer);
    },
  );

  app.get(
    '/beacon/rounds/:round',
    {
      schema: {
        tags,
        summary: 'One round of the drand randomness beacon',
        description:
          'A published round never changes, so it is cached for long. 404 when the round does not exist yet.',
        params: S.RoundParams,
        querystring: S.NoQuery,
        response: withProblems({ 200: { ...S.BeaconReply, headers } }),
      },
    },
    async (request, reply) => {
      // Ajv coerces "1e400" to Infinity and then skips the bounds (see the error handler), so the schema
      // alone cannot refuse it.
      if (!Number.isSafeInteger(request.params.round))
        throw new InvalidParametersError([
          { name: 'round', in: 'path', reason: 'must be a positive integer' },
        ]);
      const answer = await beacon.round(request.params.round);
      // A published round never changes.
      reply.header('x-cache', answer.cache).header('cache-control', 'max-age=86400, immutable');
      return present(answer);
    },
  );
};
