// One registry of application errors. Each has a stable code, an HTTP status and a problem+json `type`
// (RFC 9457); the error handler turns any of them into an application/problem+json answer.
import createError from '@fastify/error';

/** One offending input, named so a client can point at it. */
export interface FieldProblem {
  /** Parameter or field name, e.g. `max` or `body.username`. */
  name: string;
  /** Where it was read from. */
  in: 'query' | 'path' | 'header' | 'body';
  reason: string;
}

/** Stable problem types. The URN never changes even if titles or docs do. */
export const PROBLEM_TYPES = {
  'validation-error': 'Invalid request',
  'not-found': 'Not Found',
  'method-not-allowed': 'Method Not Allowed',
  'payload-too-large': 'Payload Too Large',
  'request-timeout': 'Request Timeout',
  'header-fields-too-large': 'Request Header Fields Too Large',
  'unsupported-media-type': 'Unsupported Media Type',
  'bad-request': 'Bad Request',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  conflict: 'Conflict',
  'idempotency-key-in-use': 'Idempotency-Key in use',
  'idempotency-key-reused': 'Idempotency-Key reused',
  'too-many-requests': 'Too Many Requests',
  'bad-gateway': 'Bad Gateway',
  'service-unavailable': 'Service Unavailable',
  'fault-injected': 'Injected fault',
  'internal-error': 'Internal Server Error',
} as const;
export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export const problemType = (slug: ProblemSlug): string => `urn:reliability-api:problem:${slug}`;

// No stack trace: this is a client mistake on a hot path, not a fault to debug.
const ValidationErrorBase = createError('APP_VALIDATION_ERROR', '%s', 400, Error, false);

/** 400 for input that passes the schema but breaks a rule across fields (e.g. min > max). */
export class InvalidParametersError extends ValidationErrorBase {
  readonly fields: readonly FieldProblem[];
  constructor(fields: FieldProblem[]) {
    super(fields.map((f) => `${f.name}: ${f.reason}`).join('; '));
    this.fields = fields;
  }
}

const FaultInjectedBase = createError(
  'APP_FAULT_INJECTED',
  'Injected fault (X-Fault-Status: %s)',
  500,
  Error,
  false,
);

/** The error status a drill asked for with X-Fault-Status. */
export class FaultInjectedError extends FaultInjectedBase {
  constructor(status: number) {
    super(String(status));
    this.statusCode = status as 500;
  }
}

/**
 * An error a handler raises on purpose: a status, a stable code, a problem type, a message safe to show,
 * and the headers the answer needs (WWW-Authenticate, Retry-After). No stack: it is not a fault.
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly slug: ProblemSlug,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    // A stack trace costs time on every 401/403/404 and shows nothing useful for an error raised on purpose.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'AppError';
  }
}

const REALM = 'realm="reliability-api"';

/** 401: no credentials where they are needed (RFC 6750 §3: no error code), or bad ones (invalid_token). */
export const unauthorized = (detail: string, invalidToken = true): AppError =>
  new AppError(401, 'APP_UNAUTHORIZED', 'unauthorized', detail, {
    'www-authenticate': invalidToken
      ? `Bearer ${REALM}, error="invalid_token", error_description="${detail.replaceAll('"', "'")}"`
      : `Bearer ${REALM}`,
  });

export const forbidden = (detail: string, scope?: string): AppError =>
  new AppError(403, 'APP_FORBIDDEN', 'forbidden', detail, {
    'www-authenticate': `Bearer ${REALM}, error="insufficient_scope"${scope ? `, scope="${scope}"` : ''}`,
  });

export const notFound = (detail: string): AppError => new AppError(404, 'APP_NOT_FOUND', 'not-found', detail);

export const conflict = (detail: string): AppError => new AppError(409, 'APP_CONFLICT', 'conflict', detail);

export const tooManyRequests = (detail: string, retryAfterSeconds: number): AppError =>
  new AppError(429, 'APP_TOO_MANY_REQUESTS', 'too-many-requests', detail, {
    'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });

/** 409: the first request with this Idempotency-Key is still running; the client retries shortly. */
export const idempotencyKeyInUse = (): AppError =>
  new AppError(
    409,
    'APP_IDEMPOTENCY_KEY_IN_USE',
    'idempotency-key-in-use',
    'a request with this Idempotency-Key is still being processed; retry shortly',
    { 'retry-after': '1' },
  );

/** 422: the Idempotency-Key was used before for a different request (another body, route or method). */
export const idempotencyKeyReused = (): AppError =>
  new AppError(
    422,
    'APP_IDEMPOTENCY_KEY_REUSED',
    'idempotency-key-reused',
    'this Idempotency-Key was already used for a different request',
  );

/** 503: the process is over its event-loop or memory limits; the load balancer sends the retry elsewhere. */
export const overloaded = (kind: string, retryAfterSeconds: number): AppError =>
  new AppError(503, 'APP_OVERLOADED', 'service-unavailable', `overloaded (${kind}); retry shortly`, {
    'retry-after': String(retryAfterSeconds),
  });

/** 503: the shared rate-limit store failed and the policy says to refuse rather than decide locally. */
export const rateLimitUnavailable = (): AppError =>
  new AppError(
    503,
    'APP_RATE_LIMIT_UNAVAILABLE',
    'service-unavailable',
    'rate limiting is unavailable; try again shortly',
    { 'retry-after': '1' },
  );

/** 503: every password-hashing slot and its queue are taken. */
export const hashingBusy = (): AppError =>
  new AppError(503, 'APP_HASHING_BUSY', 'service-unavailable', 'too many sign-ins at once; retry shortly', {
    'retry-after': '1',
  });

/** 502: the randomness beacon answered, but with data that does not verify. */
export const beaconInvalid = (): AppError =>
  new AppError(502, 'APP_BEACON_INVALID', 'bad-gateway', 'The randomness beacon answered invalid data');

/** 503: the beacon is unreachable and no cached round can answer. */
export const beaconUnavailable = (retryAfterSeconds: number): AppError =>
  new AppError(
    503,
    'APP_BEACON_UNAVAILABLE',
    'service-unavailable',
    'The randomness beacon is unavailable and no cached round can answer',
    { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
  );

/**
 * 503: a dependency the request needs (the database) did not answer within its deadline or refused the
 * connection. Retry-After is short: outages that end within seconds (a failover, a restart) are common.
 */
export function dependencyUnavailable(dependency: string, cause?: unknown, retryAfterSeconds = 2): AppError {
  const error = new AppError(
    503,
    'APP_DEPENDENCY_UNAVAILABLE',
    'service-unavailable',
    `the ${dependency} is unavailable; retry shortly`,
    { 'retry-after': String(retryAfterSeconds) },
  );
  // For logs and the CLI's one-line reason; an HTTP answer shows only the message.
  if (cause !== undefined) error.cause = cause;
  return error;
}

/**
 * An error and its causes on one line (`a: b: c`), each message once: for the CLI and for wrappers such
 * as a failed migration, where the root cause (ECONNREFUSED, a constraint) is what an operator needs.
 */
export function errorChain(error: unknown): string {
  let line = error instanceof Error ? error.message : String(error);
  let cause = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (!line.includes(cause.message)) line = `${line}: ${cause.message}`;
    cause = cause.cause;
  }
  return line;
}

/** Maps a status code and an error code to the problem slug shown to clients. */
export function slugFor(statusCode: number, code: string | undefined): ProblemSlug {
  if (code === 'APP_VALIDATION_ERROR' || code === 'FST_ERR_VALIDATION') return 'validation-error';
  if (code === 'APP_FAULT_INJECTED') return 'fault-injected';
  switch (statusCode) {
    case 404:
      return 'not-found';
    case 405:
      return 'method-not-allowed';
    case 408:
      return 'request-timeout';
    case 431:
      return 'header-fields-too-large';
    case 413:
      return 'payload-too-large';
    case 415:
      return 'unsupported-media-type';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 409:
      return 'conflict';
    case 429:
      return 'too-many-requests';
    case 503:
      return 'service-unavailable';
    default:
      return statusCode >= 500 ? 'internal-error' : 'bad-request';
  }
}
