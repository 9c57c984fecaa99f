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
  'unsupported-media-type': 'Unsupported Media Type',
  'bad-request': 'Bad Request',
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

/** Maps a status code and an error code to the problem slug shown to clients. */
export function slugFor(statusCode: number, code: string | undefined): ProblemSlug {
  if (code === 'APP_VALIDATION_ERROR' || code === 'FST_ERR_VALIDATION') return 'validation-error';
  if (code === 'APP_FAULT_INJECTED') return 'fault-injected';
  switch (statusCode) {
    case 404:
      return 'not-found';
    case 405:
      return 'method-not-allowed';
    case 413:
      return 'payload-too-large';
    case 415:
      return 'unsupported-media-type';
    case 503:
      return 'service-unavailable';
    default:
      return statusCode >= 500 ? 'internal-error' : 'bad-request';
  }
}
