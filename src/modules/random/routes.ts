// GET /v1/random and /v1/random/*: thin handlers over the service; schemas do the validation and the
// serialization. Every answer, errors included, carries Cache-Control: no-store (a cached random value
// is not random).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { withProblems } from '../../lib/problem.js';
import { generatedCounters } from './metrics.js';
import * as S from './schemas.js';
import * as random from './service.js';

const routes: FastifyPluginAsyncTypebox<{ anonymous: boolean }> = async (app, opts) => {
  // Every random route needs `random:read`, unless anonymous access is on (ANONYMOUS_ACCESS).
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, auth: { scope: 'random:read', anonymous: opts.anonymous } };
  });
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('cache-control', 'no-store');
    done();
  });

  const tags = ['random'];
  const generated = generatedCounters(app.metrics.registry);

  app.get(
    '/random',
    {
      schema: {
        tags,
        summary: 'One random integer in [min, max]',
        description:
          'Drawn from node:crypto by rejection sampling, so every value in the range is equally likely. Bounds are inclusive and must be safe integers with min <= max.',
        querystring: S.SingleQuery,
        response: withProblems({ 200: S.SingleReply }),
      },
    },
    async (request) => {
      const answer = random.single(request.query.min, request.query.max);
      generated.integer.inc(1);
      return answer;
    },
  );

  app.get(
    '/random/integers',
    {
      schema: {
        tags,
        summary: 'Random integers in [min, max], optionally unique, in base 2, 8, 10 or 16',
        description:
          'Up to 10,000 values, each uniform over the inclusive range. With `unique=true` no value repeats (the range must hold `count` values). Values in base 2, 8 or 16 are strings.',
        querystring: S.IntegersQuery,
        response: withProblems({ 200: S.IntegersReply }),
      },
    },
    async (request) => {
      const answer = random.integers(request.query);
      generated.integer.inc(answer.count);
      return answer;
    },
  );

  app.get(
    '/random/sequences',
    {
      schema: {
        tags,
        summary: 'A uniformly random permutation of min..max',
        description:
          'Every integer from min to max once, shuffled by Fisher-Yates over node:crypto; at most 10,000 values.',
        querystring: S.SequenceQuery,
        response: withProblems({ 200: S.SequenceReply }),
      },
    },
    async (request) => {
      const answer = random.sequence(request.query.min, request.query.max);
      generated.sequence.inc(answer.data.length);
      return answer;
    },
  );

  app.get(
    '/random/decimals',
    {
      schema: {
        tags,
        summary: 'Uniform decimals in [0, 1)',
        description:
          'Each value has `places` decimal places (1 to 14) and is uniform over the grid of that many places.',
        querystring: S.DecimalsQuery,
        response: withProblems({ 200: S.DecimalsReply }),
      },
    },
    async (request) => {
      const answer = random.decimals(request.query.count, request.query.places);
      generated.decimal.inc(answer.count);
      return answer;
    },
  );

  app.get(
    '/random/gaussians',
    {
      schema: {
        tags,
        summary: 'Normally distributed values',
        description:
          'Gaussian deviates with the given mean and standard deviation (Box-Muller over 53-bit uniform doubles), rounded to `places` decimal places.',
        querystring: S.GaussiansQuery,
        response: withProblems({ 200: S.GaussiansReply }),
      },
    },
    async (request) => {
      const { count, mean, stddev, places } = request.query;
      const answer = random.gaussians(count, mean, stddev, places);
      generated.gaussian.inc(answer.count);
      return answer;
    },
  );

  app.get(
    '/random/strings',
    {
      schema: {
        tags,
        summary: 'Random strings over a named or custom alphabet',
        description:
          'Each character is drawn uniformly from the alphabet: a named `charset`, or `chars` with 2 to 256 distinct characters. With `unique=true` no string repeats.',
        querystring: S.StringsQuery,
        response: withProblems({ 200: S.StringsReply }),
      },
    },
    async (request) => {
      const answer = random.strings(request.query);
      generated.string.inc(answer.count);
      return answer;
    },
  );

  app.get(
    '/random/uuids',
    {
      schema: {
        tags,
        summary: 'UUIDs, version 4 (random) or 7 (time-ordered)',
        description:
          'RFC 9562 UUIDs. Version 7 ids sort by creation time, which suits database keys; version 4 ids carry 122 random bits.',
        querystring: S.UuidsQuery,
        response: withProblems({ 200: S.UuidsReply }),
      },
    },
    async (request) => {
      const answer = random.uuids(request.query.count, request.query.version);
      generated.uuid.inc(answer.count);
      return answer;
    },
  );

  app.get(
    '/random/bytes',
    {
      schema: {
        tags,
        summary: 'Random bytes, base64 or hex encoded',
        description: '`size` bytes (1 to 65,536) from node:crypto, encoded as base64 or hex.',
        querystring: S.BytesQuery,
        response: withProblems({ 200: S.BytesReply }),
      },
    },
    async (request) => {
      const answer = random.bytes(request.query.size, request.query.format);
      generated.byte.inc(answer.size);
      return answer;
    },
  );
};

export default routes;
