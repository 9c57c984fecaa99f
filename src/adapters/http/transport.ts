// One attempt of an outbound HTTP call over a dependency's undici pool: the URL under the base path,
// default and trace-context headers, a CLIENT span, and the outcome classified (answer, failing status,
// timeout, connection error). Policies (retry, breaker, ...) live in dependency.ts.
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
} from '@opentelemetry/semantic-conventions';
import { Pool } from 'undici';
import { buildInfo } from '../../lib/build-info.js';
import { isFailureStatus, parseRetryAfter, type OutboundOutcome } from './policy.js';

export interface OutboundRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  /** Appended to the base URL's path. */
  path: string;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  json?: unknown;
  /** default: true for GET/HEAD/PUT/DELETE, false for POST */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export interface OutboundResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the content type is JSON (the raw text if it does not parse), else text. */
  body: unknown;
}

export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  constructor(
    readonly dependency: string,
    readonly outcome: Exclude<OutboundOutcome, 'success'>,
    message: string,
    options: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
  readonly status?: number;
  readonly retryAfterSeconds?: number;
}

export interface OutboundClient {
  readonly name: string;
  request(req: OutboundRequest): Promise<OutboundResponse>;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const USER_AGENT = `${buildInfo.name}/${buildInfo.version}`;
const tracer = trace.getTracer('reliability-api');

export class Transport {
  readonly #pool: Pool;

  constructor(
    readonly name: string,
    readonly base: URL,
    readonly timeoutMs: number,
    connections: number,
  ) {
    this.#pool = new Pool(base.origin, { connections });
  }

  #url(req: OutboundRequest): { path: string; display: string } {
    const basePath = this.base.pathname.replace(/\/+$/, '');
    const path = `${basePath}${req.path.startsWith('/') ? '' : '/'}${req.path}`;
    const query = new URLSearchParams(
      Object.entries(req.query ?? {}).map(([k, v]) => [k, String(v)] as [string, string]),
    ).toString();
    // The query stays out of traces and logs: some APIs take credentials there.
    return { path: query ? `${path}?${query}` : path, display: `${this.base.origin}${path}` };
  }

  /** Sends one attempt; `signal` carries its deadline (and the caller's cancellation). */
  async send(req: OutboundRequest, signal: AbortSignal, attempt: number): Promise<OutboundResponse> {
    const method = req.method ?? 'GET';
    const { path, display } = this.#url(req);
    const span = tracer.startSpan(method, {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_FULL]: display,
        [ATTR_SERVER_ADDRESS]: this.base.hostname,
        [ATTR_SERVER_PORT]: Number(this.base.port || (this.base.protocol === 'https:' ? 443 : 80)),
        'peer.service': this.name,
        ...(attempt > 0 ? { [ATTR_HTTP_REQUEST_RESEND_COUNT]: attempt } : {}),
      },
    });
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    for (const [key, value] of Object.entries(req.headers ?? {})) headers[key.toLowerCase()] = value;
    if (req.json !== undefined) headers['content-type'] ??= 'application/json';
    propagation.inject(trace.setSpan(context.active(), span), headers);
    try {
      const response = await this.#pool.request({
        method,
        path,
        headers,
        body: req.json === undefined ? undefined : JSON.stringify(req.json),
        signal,
      });
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.statusCode);
      const flat = flattenHeaders(response.headers);
      if (isFailureStatus(response.statusCode)) {
        await response.body.dump().catch(() => undefined);
        throw new OutboundError(this.name, 'error_status', `${this.name} answered ${response.statusCode}`, {
          status: response.statusCode,
          retryAfterSeconds: parseRetryAfter(flat['retry-after']),
        });
      }
      // A client span marks any 4xx as an error (OpenTelemetry HTTP conventions), though the call resolves.
      if (response.statusCode >= 400) {
        span.setAttribute(ATTR_ERROR_TYPE, String(response.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      const text = await response.body.text();
      return { status: response.statusCode, headers: flat, body: parseBody(flat['content-type'], text) };
    } catch (error) {
      const failure = this.#classify(error, req.signal, signal);
      fail(span, failure);
      throw failure;
    } finally {
      span.end();
    }
  }

  #classify(error: unknown, caller: AbortSignal | undefined, deadline: AbortSignal): unknown {
    if (error instanceof OutboundError) return error;
    if (caller?.aborted === true) return caller.reason;
    const code = (error as { code?: unknown }).code;
    if (deadline.aborted || (typeof code === 'string' && TIMEOUT_CODES.has(code)))
      return new OutboundError(this.name, 'timeout', `${this.name}: no answer within ${this.timeoutMs} ms`, {
        cause: error,
      });
    return new OutboundError(this.name, 'connection_error', `${this.name}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

function fail(span: Span, error: unknown): void {
  const type = error instanceof OutboundError ? (error.status?.toString() ?? error.outcome) : 'cancelled';
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : type });
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw))
    if (value !== undefined) flat[key] = Array.isArray(value) ? value.join(', ') : value;
  return flat;
}

function parseBody(contentType: string | undefined, text: string): unknown {
  if (contentType === undefined || !/^[^;]*[/+]json\s*(;|$)/i.test(contentType)) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
