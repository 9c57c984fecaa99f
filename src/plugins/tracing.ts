// Server spans for inbound requests, when tracing is on (an OTLP endpoint is set): each request continues
// the caller's W3C trace context and runs inside its span, so database, Redis and outbound calls become
// its children. With tracing off this plugin adds nothing at all: no hook, no decoration.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { buildInfo } from '../lib/build-info.js';
import { TRACER_NAME, otlpEndpoint, startTracing, type TracingConfig } from '../observability/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span while tracing is on; undefined otherwise (and for probes and metrics). */
    traceSpan: Span | undefined;
  }
}

function endSpan(request: FastifyRequest, statusCode: number | undefined, problem?: string): void {
  const span = request.traceSpan;
  // Not recording: unsampled, or already ended by another of the hooks below.
  if (span === undefined || !span.isRecording()) return;
  if (statusCode !== undefined) span.setAttribute('http.response.status_code', statusCode);
  if (problem !== undefined) {
    span.setAttribute('error.type', problem);
    span.setStatus({ code: SpanStatusCode.ERROR, message: problem });
  } else if (statusCode !== undefined && statusCode >= 500) {
    span.setAttribute('error.type', String(statusCode));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

export default fp(
  async (app, opts: { config: TracingConfig }) => {
    if (otlpEndpoint(opts.config) === undefined) return;
    const tracing = await startTracing(opts.config, { version: buildInfo.version }, app.log);
    // Registered before every other plugin, this hook runs after all of theirs (onClose runs last-in,
    // first-out): spans of the last requests and of closing Redis and PostgreSQL are exported too.
    app.addHook('onClose', () => tracing.shutdown());

    const tracer = trace.getTracer(TRACER_NAME, buildInfo.version);
    app.decorateRequest('traceSpan', undefined);

    app.addHook('onRequest', (request, _reply, done) => {
      // Probes and scrapes arrive every few seconds from kubelet and Prometheus: traced, they would bury
      // the requests worth following.
      if (request.routeOptions.config.operational === true) return done();
      const parent = propagation.extract(ROOT_CONTEXT, request.headers);
      const route = request.routeOptions.url;
      const span = tracer.startSpan(
        route === undefined ? request.method : `${request.method} ${route}`,
        { kind: SpanKind.SERVER },
        parent,
      );
      // The attributes only for a span that is recorded: with the production sampler (10%) nine requests in
      // ten skip building them. The samplers this service offers decide on the trace id and the parent, not
      // on attributes, so setting them after the start changes no decision.
      if (span.isRecording()) {
        const attributes: Attributes = {
          'http.request.method': request.method,
          'url.path': request.url.split('?', 1)[0],
          'url.scheme': request.protocol,
          'client.address': request.ip,
          'network.protocol.version': request.raw.httpVersion,
        };
        if (route !== undefined) attributes['http.route'] = route;
        const userAgent = request.headers['user-agent'];
        if (userAgent !== undefined) attributes['user_agent.original'] = userAgent;
        span.setAttributes(attributes);
      }
      request.traceSpan = span;
      // Everything after this hook runs in the span's context: the other hooks, the handler (async or
      // not), and the body parsing between them (Fastify carries the context across the socket events
      // that deliver a body).
      context.with(trace.setSpan(parent, span), done);
    });

    // Client errors are the caller's; only server errors are recorded as exceptions on the span.
    app.addHook('onError', (request, _reply, error, done) => {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === undefined || status >= 500) request.traceSpan?.recordException(error);
      done();
    });

    app.addHook('onResponse', (request, reply, done) => {
      endSpan(request, reply.statusCode);
      done();
    });
    // Neither ends with onResponse: the response was never completely sent.
    app.addHook('onRequestAbort', (request, done) => {
      endSpan(request, undefined, 'aborted');
      done();
    });
    app.addHook('onTimeout', (request, _reply, done) => {
      endSpan(request, undefined, 'timeout');
      done();
    });
  },
  { name: 'tracing' },
);
