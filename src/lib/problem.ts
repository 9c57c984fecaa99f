// The problem+json answer (RFC 9457) every error takes: its content type, its schema (referenced by every
// route's 4xx and 5xx responses) and the body built from a request. The error handler sends it; routes
// declare it with withProblems().
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_TYPES, problemType, type FieldProblem, type ProblemSlug } from './errors.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'Stable URI naming the kind of problem.' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    request_id: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          name: Type.String(),
          in: Type.String(),
          reason: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);

const ProblemRef = Type.Ref(ProblemSchema);

/** A route's response map with the shared problem answers added. */
export function withProblems<T extends Record<number, TSchema>>(responses: T) {
  return { ...responses, '4xx': ProblemRef, '5xx': ProblemRef };
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance: string;
  request_id: string;
  errors?: FieldProblem[];
}

export function problem(
  request: FastifyRequest,
  status: number,
  slug: ProblemSlug,
  detail?: string,
  errors?: FieldProblem[],
): Problem {
  return {
    type: problemType(slug),
    title: PROBLEM_TYPES[slug],
    status,
    ...(detail === undefined ? {} : { detail }),
    instance: request.url.split('?', 1)[0] ?? request.url,
    request_id: request.id,
    ...(errors === undefined ? {} : { errors }),
  };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}
