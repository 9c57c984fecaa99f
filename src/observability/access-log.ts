// One access line per request, written from Fastify's own log controller when the response has finished:
// method, route template, status, duration, client IP, the request id, and the trace ids when traced.
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import { routeOf } from '../lib/route.js';
import { deferWrites } from './logger.js';
import { traceFields } from './tracing.js';

export class AccessLogController extends LogController {
  /**
   * The access line holds only fixed, non-secret fields (no headers, no URL query), so it is written by a
   * child logger without redaction: redaction was the largest single cost of a small request's log line.
   */
  readonly #access: FastifyBaseLogger;

  constructor(logger: FastifyBaseLogger) {
    super({ requestIdLogLabel: 'request_id' });
    this.#access = logger.child({}, { redact: [] });
    // Access lines may wait in stdout's buffer (StdoutLines): a write(2) each was a quarter of their cost.
    deferWrites(this.#access);
  }

  /** The "incoming request" line is dropped: the completion line carries everything, at half the cost. */
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = {
      method: request.method,
      route: routeOf(request),
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
    };
    // Trace ids from the request's own span: this runs once the response is written, outside the
    // request's context, where the log mixin would find another span or none.
    const ids = request.traceSpan === undefined ? undefined : traceFields(request.traceSpan);
    // An errored line carries the error, which may hold anything: it goes through the redacting logger.
    if (error) request.log.error({ ...line, ...ids, err: error }, 'request errored');
    else if (ids === undefined) this.#access.info({ request_id: request.id, ...line }, 'request completed');
    else this.#access.info({ request_id: request.id, ...line, ...ids }, 'request completed');
  }
}
