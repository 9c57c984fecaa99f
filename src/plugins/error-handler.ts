// Every error answer is application/problem+json (RFC 9457): validation failures name each offending
// field, 404 and 405 are told apart, and a 5xx outside development never shows internals.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyServerOptions } from 'fastify';
import {
  AppError,
  InvalidParametersError,
  PROBLEM_TYPES,
  problemType,
  slugFor,
  type ProblemSlug,
} from '../lib/errors.js';
import { PROBLEM_CONTENT_TYPE, ProblemSchema, problem, sendProblem } from '../lib/problem.js';
import { fieldProblems } from './validation.js';

/** What a client did wrong at the socket, before any request existed, as a metric label and an answer. */
export type ClientErrorReason = 'timeout' | 'header_overflow' | 'malformed';

const CLIENT_ERRORS: Record<ClientErrorReason, { status: number; slug: ProblemSlug; detail: string }> = {
  timeout: { status: 408, slug: 'request-timeout', detail: 'the request did not arrive in time' },
  header_overflow: {
    status: 431,
    slug: 'header-fields-too-large',
    detail: 'the request headers exceed 16 KiB',
  },
  malformed: { status: 400, slug: 'bad-request', detail: 'the request is not valid HTTP/1.1' },
};

export function clientErrorReason(code: string | undefined): ClientErrorReason {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'timeout';
  if (code === 'HPE_HEADER_OVERFLOW') return 'header_overflow';
  return 'malformed';
}

/**
 * Node's parser refused the bytes on a connection (malformed request line or headers, smuggling-shaped
 * framing such as Content-Length with Transfer-Encoding, headers over the limit) or the request did not
 * arrive within the timeouts. There is no request to route, so the answer is written to the socket as
 * problem+json and the connection ends. A client's mistake, not ours: logged at debug, and counted.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
  // A reset connection, or one already gone: nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const reason = clientErrorReason(error.code);
  const { status, slug, detail } = CLIENT_ERRORS[reason];
  const requestId = randomUUID();
  this.log.debug({ err_code: error.code, reason, request_id: requestId }, 'client error');
  if (this.hasDecorator('metrics')) this.metrics.countClientError(reason);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    type: problemType(slug),
    title: PROBLEM_TYPES[slug],
    status,
    detail,
    request_id: requestId,
  });
  socket.end(
    `HTTP/1.1 ${status} ${PROBLEM_TYPES[slug]}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Errors Fastify raises before routing: a URL that is not valid percent-encoded UTF-8. */
export const frameworkErrors: FastifyServerOptions['frameworkErrors'] = (error, request, reply) => {
  const detail =
    error.code === 'FST_ERR_BAD_URL'
      ? 'the URL is not valid percent-encoded UTF-8'
      : 'the request could not be routed';
  reply.header('x-request-id', request.id);
  void sendProblem(reply, problem(request, 400, 'bad-request', detail));
};

// OPTIONS is left out: CORS answers preflights for every path, which says nothing about the resource.
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export default fp(
  async (app, opts: { exposeInternalErrors: boolean }) => {
    app.addSchema(ProblemSchema);

    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (error.validation) {
        const errors = fieldProblems(error.validation, error.validationContext);
        const detail = errors.map((e) => `${e.name}: ${e.reason}`).join('; ');
        return sendProblem(reply, problem(request, 400, 'validation-error', detail, errors));
      }
      if (error instanceof AppError) {
        reply.headers(error.headers);
        return sendProblem(reply, problem(request, error.statusCode, error.slug, error.message));
      }
      if (error instanceof InvalidParametersError) {
        return sendProblem(
          reply,
          problem(request, 400, 'validation-error', error.message, [...error.fields]),
        );
      }
      const status =
        typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode <= 599
          ? error.statusCode
          : 500;
      const slug = slugFor(status, error.code);
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed');
        const detail = opts.exposeInternalErrors ? error.message : undefined;
        return sendProblem(reply, problem(request, status, slug, detail));
      }
      return sendProblem(reply, problem(request, status, slug, error.message));
    });

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?', 1)[0] ?? '/';
      const allowed = METHODS.filter(
        (method) => method !== request.method && app.findRoute({ method, url: path }) !== null,
      );
      if (allowed.length > 0) {
        reply.header('allow', allowed.join(', '));
        return sendProblem(
          reply,
          problem(
            request,
            405,
            'method-not-allowed',
            `${request.method} is not allowed; use ${allowed.join(', ')}`,
          ),
        );
      }
      return sendProblem(reply, problem(request, 404, 'not-found', `No route for ${request.method} ${path}`));
    });
  },
  { name: 'error-handler' },
);
