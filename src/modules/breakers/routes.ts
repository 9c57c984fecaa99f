// GET /v1/admin/breakers and POST /v1/admin/breakers/{name}/open|close|reset: every outbound circuit
// breaker of this instance, and the operator's override of one (admin only).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import type { BreakerAction } from '../../adapters/http/outbound.js';
import { notFound } from '../../lib/errors.js';
import { withProblems } from '../../lib/problem.js';
import { requestContext } from '../auth/principal.js';

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const Outcome = Type.Union(
  ['error_status', 'timeout', 'connection_error', 'breaker_open', 'bulkhead_rejected'].map((o) =>
    Type.Literal(o),
  ),
);

export const BreakerSnapshotSchema = Type.Object(
  {
    name: Type.String(),
    state: Type.Union(
      [Type.Literal('closed'), Type.Literal('open'), Type.Literal('half_open'), Type.Literal('isolated')],
      { description: '`isolated`: held open by an operator until closed or reset.' },
    ),
    origin: Type.String({ description: 'Scheme, host and port of the dependency.' }),
    calls: Type.Integer({ minimum: 0 }),
    successes: Type.Integer({ minimum: 0 }),
    failures: Type.Integer({ minimum: 0, description: 'Calls that failed after their retries.' }),
    rejections: Type.Integer({ minimum: 0, description: 'Calls refused: breaker open or bulkhead full.' }),
    consecutive_failures: Type.Integer({ minimum: 0 }),
    in_flight: Type.Integer({ minimum: 0 }),
    queued: Type.Integer({ minimum: 0 }),
    opened_at: nullable(Type.String({ format: 'date-time' })),
    half_open_at: nullable(
      Type.String({ format: 'date-time', description: 'When an open breaker lets a trial call through.' }),
    ),
    last_failure: nullable(
      Type.Object({
        at: Type.String({ format: 'date-time' }),
        outcome: Outcome,
        status: Type.Optional(Type.Integer()),
      }),
    ),
  },
  { $id: 'BreakerSnapshot' },
);

const BreakerList = Type.Object({ data: Type.Array(Type.Ref(BreakerSnapshotSchema)) });
const BreakerParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, description: 'The dependency, e.g. `beacon`.' }),
});

const SUMMARIES: Record<BreakerAction, string> = {
  open: 'Hold a circuit breaker open (admin): calls fail fast until it is closed',
  close: 'Close a circuit breaker (admin), releasing a hold or ending an open period now',
  reset: 'Close a circuit breaker and zero its counts (admin)',
};
const DESCRIPTIONS: Record<BreakerAction, string> = {
  open: 'For an upstream known to be down or misbehaving: calls fail at once (or are answered from the fallback cache) until the breaker is closed. Logged with the operator and the request id. Applies to this instance.',
  close:
    'Calls go to the dependency again at once. Logged with the operator and the request id. Applies to this instance.',
  reset:
    'As close, and the counts start again from zero. Logged with the operator and the request id. Applies to this instance.',
};

export const breakerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(BreakerSnapshotSchema);
  const tags = ['admin'];

  app.get(
    '/admin/breakers',
    {
      config: { auth: { scope: 'admin' } },
      schema: {
        tags,
        summary: 'Circuit breakers of outbound dependencies on this instance (admin)',
        description:
          "Each breaker's state (closed, open, half-open, isolated), its recent counts, and when an open breaker tries again.",
        response: withProblems({ 200: BreakerList }),
      },
    },
    async () => ({ data: app.outbound.snapshots() }),
  );

  for (const action of ['open', 'close', 'reset'] as const) {
    app.post(
      `/admin/breakers/:name/${action}`,
      {
        config: { auth: { scope: 'admin' } },
        schema: {
          tags,
          summary: SUMMARIES[action],
          description: DESCRIPTIONS[action],
          params: BreakerParams,
          response: withProblems({ 200: Type.Ref(BreakerSnapshotSchema) }),
        },
      },
      async (request) => {
        const snapshot = app.outbound.control(request.params.name, action);
        if (snapshot === undefined) throw notFound(`No circuit breaker named "${request.params.name}"`);
        // Overriding a breaker changes what every caller of that dependency gets: leave a trail.
        const { actorId, ip, requestId } = requestContext(request);
        request.log.warn(
          {
            breaker: snapshot.name,
            action,
            state: snapshot.state,
            actor_id: actorId,
            ip,
            request_id: requestId,
          },
          'circuit breaker overridden by an operator',
        );
        return snapshot;
      },
    );
  }
};
