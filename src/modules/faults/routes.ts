// POST /v1/admin/faults/stall?seconds=N (admin, only with FAULT_INJECTION_ENABLED): blocks this instance's
// event loop for N seconds, for drills of the stall guard, probes and load balancers. The answer (202) is
// written first; the stall begins right after it.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { withProblems } from '../../lib/problem.js';
import { requestContext } from '../auth/principal.js';

// Long enough to outlast any stall guard setting worth drilling; bounded so a typo cannot wedge a host.
export const MAX_STALL_SECONDS = 600;

/** Blocks the calling thread without burning a core: the loop is as stuck as in a busy loop. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const faultRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/admin/faults/stall',
    {
      config: { auth: { scope: 'admin' } },
      schema: {
        tags: ['admin'],
        summary: 'Block the event loop of this instance for a number of seconds (admin, drills only)',
        querystring: Type.Object(
          { seconds: Type.Number({ exclusiveMinimum: 0, maximum: MAX_STALL_SECONDS }) },
          { additionalProperties: false },
        ),
        response: withProblems({ 202: Type.Object({ stall_seconds: Type.Number() }) }),
      },
    },
    async (request, reply) => {
      const { seconds } = request.query;
      const { actorId, ip, requestId } = requestContext(request);
      request.log.warn(
        { stall_seconds: seconds, actor_id: actorId, ip, request_id: requestId },
        'event loop stall injected by an operator',
      );
      // After the answer is on the wire, not before: the caller learns it was accepted.
      reply.raw.once('finish', () => setImmediate(() => blockFor(seconds * 1000)));
      return reply.code(202).send({ stall_seconds: seconds });
    },
  );
};
