// Every error answer is application/problem+json (RFC 9457): validation failures name each offending
// field, 404 and 405 are told apart, and a 5xx outside development never shows internals.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { Type, type TSchema } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
  preHandlerHookHandler,
} from 'fastify';
import {
  AppError,
  InvalidParametersError,
  PROBLEM_TYPES,
  problemType,
  slugFor,
  type FieldProblem,
  type ProblemSlug,
} from '../lib/errors.js';

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

const LOCATIONS: Record<string, FieldProblem['in']> = {
  querystring: 'query',
  params: 'path',
  headers: 'header',
  body: 'body',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv's errors into one entry per offending field, each naming the field. */
export function fieldProblems(validation: AjvError[], context: string | undefined): FieldProblem[] {
  const where = LOCATIONS[context ?? 'body'] ?? 'body';
  const byName = new Map<string, string[]>();
  for (const error of validation) {
    let name = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
    let reason = error.message ?? error.keyword;
    if (error.keyword === 'required') {
      name = [name, String(error.params.missingProperty)].filter(Boolean).join('.');
      reason = 'is required';
    } else if (error.keyword === 'additionalProperties') {
      name = [name, String(error.params.additionalProperty)].filter(Boolean).join('.');
      reason = 'is not a known parameter';
    } else if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
      reason = `must be one of ${error.params.allowedValues.join(', ')}`;
    }
    const reasons = byName.get(name || where) ?? [];
    if (!reasons.includes(reason)) reasons.push(reason);
    byName.set(name || where, reasons);
  }
  return [...byName].map(([name, reasons]) => ({ name, in: where, reason: reasons.join('; ') }));
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
/** Names of the integer or number properties of a querystring schema. */
function numericQueryParameters(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (properties === undefined) return [];
  return Object.entries(properties)
    .filter(([, p]) => p.type === 'integer' || p.type === 'number')
    .map(([name]) => name);
}

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

    // Ajv coerces "1e309" to Infinity and then skips the minimum/maximum checks of that value, so a
    // non-finite number can reach a handler. Routes whose query has numeric parameters refuse it after
    // validation, naming the parameter; other routes pay nothing.
    app.addHook('onRoute', (route) => {
      const numeric = numericQueryParameters(route.schema?.querystring);
      if (numeric.length === 0) return;
      const refuseNonFinite: preHandlerHookHandler = (request, _reply, done) => {
        const query = request.query as Record<string, unknown>;
        for (const name of numeric) {
          const value = query[name];
          if (typeof value === 'number' && !Number.isFinite(value)) {
            return done(
              new InvalidParametersError([{ name, in: 'query', reason: 'must be a finite number' }]),
            );
          }
        }
        done();
      };
      const existing = route.preHandler;
      route.preHandler = existing === undefined ? [refuseNonFinite] : [refuseNonFinite, ...[existing].flat()];
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
