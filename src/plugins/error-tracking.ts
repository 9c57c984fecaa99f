// Error capture for triage: every request answered 5xx (with the thrown error's code and message when
// there is one) goes into a bounded in-memory ring that /v1/admin/errors reads. Successful requests pay
// one status comparison.
import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorRing, type ErrorEvent } from '../modules/triage/events.js';
import { routeOf } from '../lib/route.js';

// Enough for the recent history of a bad minute; at ~1 KB each the ring stays around a megabyte.
export const ERROR_RING_CAPACITY = 1_000;

export interface ErrorTracking {
  readonly ring: ErrorRing;
  /** Records an error that happened outside a request (a background job, a listener). */
  record(event: Omit<ErrorEvent, 'time'> & { time?: number }): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    errorTracking: ErrorTracking;
  }
}

interface Thrown {
  code: string;
  message: string;
  trace_id?: string;
  span_id?: string;
}

function activeSpan(): { trace_id: string; span_id: string } | undefined {
  const context = trace.getActiveSpan()?.spanContext();
  return context !== undefined && isSpanContextValid(context)
    ? { trace_id: context.traceId, span_id: context.spanId }
    : undefined;
}

function codeOf(error: Error & { code?: unknown }): string {
  return typeof error.code === 'string' && error.code.length > 0 ? error.code : error.name || 'Error';
}

export default fp(
  async (app) => {
    const ring = new ErrorRing(ERROR_RING_CAPACITY);
    // The error of a request, kept from onError (which runs inside the request's context, where the active
    // span is) until onResponse knows the final status. A WeakMap adds nothing to requests that do not fail.
    const thrown = new WeakMap<FastifyRequest, Thrown>();

    app.addHook('onError', (request, _reply, error, done) => {
      thrown.set(request, { code: codeOf(error), message: error.message, ...activeSpan() });
      done();
    });

    app.addHook('onResponse', (request, reply, done) => {
      if (reply.statusCode < 500) return done();
      const error = thrown.get(request);
      // A probe answering 503 while starting or draining is the plan working, not a failure to triage.
      if (error === undefined && request.routeOptions.config.operational === true) return done();
      ring.record({
        time: Date.now(),
        level: 'error',
        code: error?.code ?? `HTTP_${reply.statusCode}`,
        message: error?.message ?? '',
        route: routeOf(request),
        method: request.method,
        status: reply.statusCode,
        request_id: request.id,
        ...(error?.trace_id === undefined
          ? activeSpan()
          : { trace_id: error.trace_id, span_id: error.span_id }),
      });
      done();
    });

    app.decorate('errorTracking', {
      ring,
      record: (event) => ring.record({ ...event, time: event.time ?? Date.now() }),
    } satisfies ErrorTracking);
  },
  { name: 'error-tracking', dependencies: ['request-context'] },
);
