// The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header): its syntax, how a key is named in
// storage (a hash, never the key) and the fingerprint that tells a retry from a different request.
import { createHash, createHmac } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { configure } from 'safe-stable-stringify';
import { InvalidParametersError } from './errors.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

// Visible ASCII and space: the draft's sf-string alphabet. Node trims the ends of header values.
const KEY_PATTERN = '^[\\x20-\\x7E]{1,255}$';
const KEY_REGEX = new RegExp(KEY_PATTERN);

export const IdempotencyKeyHeader = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: KEY_PATTERN,
  description:
    'Makes a retry of this request safe: the first final answer to a key is replayed (with `Idempotent-Replayed: true`) instead of running the request again. Use a fresh random value (a UUID) per operation.',
});

/** The key named by the header value: bare, or the draft's quoted sf-string. */
export function parseIdempotencyKey(raw: unknown): string {
  const invalid = (reason: string) =>
    new InvalidParametersError([{ name: 'Idempotency-Key', in: 'header', reason }]);
  if (typeof raw !== 'string' || !KEY_REGEX.test(raw)) {
    throw invalid('must be 1 to 255 printable ASCII characters');
  }
  const quoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"');
  const key = quoted ? raw.slice(1, -1).replace(/\\(["\\])/g, '$1') : raw;
  if (key.length === 0) throw invalid('must not be empty');
  return key;
}

/** How the key is found in storage: its SHA-256, so a dump of the table shows no key. */
export const keyHashOf = (key: string): string => createHash('sha256').update(key).digest('hex');

/** JSON with object keys sorted at every level: equal bodies give equal fingerprints whatever their key order. */
const canonicalJson = configure({ deterministic: true, bigint: true });

/** What makes two requests the same operation, keyed so the stored fingerprint reveals nothing. */
export interface RequestShape {
  method: string;
  route: string | undefined;
  params: unknown;
  query: unknown;
  body: unknown;
}

export function fingerprintOf(macKey: Buffer, request: RequestShape): string {
  return createHmac('sha256', macKey)
    .update(canonicalJson(request) ?? '')
    .digest('hex');
}
