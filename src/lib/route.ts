import type { FastifyRequest } from 'fastify';

/** The route template (never the raw URL, which would explode label and log cardinality). */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}
