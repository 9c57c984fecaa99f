// Request ids. A well-formed incoming X-Request-ID (or X-Correlation-ID) is kept so a
// request can be followed across services; otherwise a UUID is generated. Every log line of the request
// carries it (Fastify's child logger) and the response echoes it.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import fp from 'fastify-plugin';

export const REQUEST_ID_HEADER = 'x-request-id';
// Printable, bounded ids only: anything else could forge log structure or bloat every line.
const WELL_FORMED = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

function headerValue(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && WELL_FORMED.test(value) ? value : undefined;
}

export function genReqId(req: IncomingMessage): string {
  return (
    headerValue(req.headers[REQUEST_ID_HEADER]) ??
    headerValue(req.headers['x-correlation-id']) ??
    randomUUID()
  );
}

export default fp(
  async (app) => {
    app.addHook('onRequest', (request, reply, done) => {
      reply.header(REQUEST_ID_HEADER, request.id);
      done();
    });
  },
  { name: 'request-context' },
);
