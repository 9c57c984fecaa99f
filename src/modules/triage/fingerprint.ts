// Fingerprints: the same failure with different ids, numbers, addresses or quoted values gets the same
// (code, normalized message, route) and therefore the same short hash.
import { createHash } from 'node:crypto';
import { redact } from './redact.js';

// Longest normalized message kept: enough to tell failures apart, short enough for a label or a prompt.
const MAX_PATTERN_CHARS = 200;

const NORMALIZERS: readonly [RegExp, string][] = [
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, '<email>'],
  [/\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/g, '<uuid>'],
  [/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?/g, '<time>'],
  [/(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?![\w.])/g, '<ip>'],
  [/(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])/g, '<ip>'],
  // Quoted values: "...", '...', `...` (a username, a table row, a header value).
  [/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '<str>'],
  // Hex ids (a hash, an object id, a trace id), at least 8 characters with a digit.
  [/\b(?=[0-9a-fA-F]*\d)(?:0x)?[0-9a-fA-F]{8,}\b/g, '<hex>'],
  // Numbers, also when glued to letters (id42, 500ms).
  [/\d+(?:\.\d+)?/g, '<num>'],
  [/\s+/g, ' '],
];

/** The message with every variable part replaced by a placeholder. It is redacted first. */
export function normalizeMessage(message: string): string {
  let out = redact(message);
  for (const [pattern, replacement] of NORMALIZERS) out = out.replace(pattern, replacement);
  out = out.trim();
  return out.length > MAX_PATTERN_CHARS ? `${out.slice(0, MAX_PATTERN_CHARS)}...` : out;
}

export interface FingerprintParts {
  code: string;
  pattern: string;
  route: string;
}

export function fingerprintParts(event: { code: string; message: string; route?: string | undefined }) {
  return { code: event.code, pattern: normalizeMessage(event.message), route: event.route ?? 'none' };
}

/** A short stable hash of the parts: 12 hex characters (48 bits) are plenty for a few thousand groups. */
export function fingerprint(parts: FingerprintParts): string {
  return createHash('sha256')
    .update(`${parts.code}\n${parts.pattern}\n${parts.route}`)
    .digest('hex')
    .slice(0, 12);
}
