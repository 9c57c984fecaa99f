// Redaction of free text (error messages, log lines) before it leaves the process or shows in an answer:
// credentials, personal data and anything that looks like a long random secret.
import { isIPv4, isIPv6 } from 'node:net';

export const REDACTED = '[REDACTED]';

type Rule = readonly [pattern: RegExp, replace: string | ((match: string, ...groups: string[]) => string)];

// Key names whose value is a credential, in `key=value`, `key: value` and `"key":"value"` forms.
const SECRET_KEY = String.raw`[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|credentials?|private[_-]?key|session[_-]?id|cookie)[\w.-]*`;

// Order matters: the specific shapes go first (a JWT inside "token=..." keeps its shape check), then the
// key-value forms, then personal data, then the shape-only catch-alls for long random strings.
const RULES: readonly Rule[] = [
  // Credentials in URLs: scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+):[^\s@/]+@/gi, `$1:${REDACTED}@`],
  // Authorization schemes: Bearer, Basic, Token.
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/-]+=*/gi, `$1 ${REDACTED}`],
  // JWTs, JWS and JWE compact forms: base64url segments separated by dots, the header starting `eyJ`.
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){1,3}/g, REDACTED],
  // Any three long base64url segments (a JWT whose header is not plain JSON).
  [/\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b/g, REDACTED],
  // This service's API keys (`rak_<8 hex>_<secret>`, see api-keys/service.ts): the public prefix stays.
  [/\b(rak_[0-9a-f]{8})_[A-Za-z0-9_-]+/g, `$1_${REDACTED}`],
  // Well-known provider key shapes: OpenAI/Groq, Google, GitHub, Slack, AWS access key ids.
  [/\b(?:sk|gsk|sk-proj)-[A-Za-z0-9_-]{16,}/g, REDACTED],
  [/\bAIza[0-9A-Za-z_-]{30,}/g, REDACTED],
  [/\bgh[pousr]_[A-Za-z0-9]{30,}/g, REDACTED],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/g, REDACTED],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, REDACTED],
  // "password": "..." and other JSON members named like a credential (quotes may be escaped).
  [
    new RegExp(String.raw`(\\?["'](${SECRET_KEY})\\?["']\s*:\s*)(\\?["'])(?:\\.|(?!\3).)*?\3`, 'gi'),
    `$1$3${REDACTED}$3`,
  ],
  // password=..., token: ... (value up to a separator); `Authorization: Bearer` was handled above.
  [
    new RegExp(
      String.raw`\b(${SECRET_KEY})(\s*[=:]\s*)(?!(?:Bearer|Basic|Token)\s)(?:"[^"]*"|'[^']*'|[^\s&,;"'<>)}\]]+)`,
      'gi',
    ),
    `$1$2${REDACTED}`,
  ],
  // Prose: "password is hunter2", "token was abc".
  [/\b(password|passphrase|secret|token)(\s+(?:is|was)\s+)[^\s,;]+/gi, `$1$2${REDACTED}`],
  // Email addresses.
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, '[EMAIL]'],
  // IPv6 candidates, confirmed by node:net so times like 12:30:45 are left alone.
  [
    /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])/g,
    (match) => (isIPv6(match) ? '[IP]' : match),
  ],
  // IPv4, confirmed by node:net so version strings like 1.2.3.456 are left alone.
  [/(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])/g, (match) => (isIPv4(match) ? '[IP]' : match)],
  // Long hex strings: hashes, raw keys, session ids.
  [/\b[0-9a-fA-F]{32,}\b/g, REDACTED],
  // Long base64/base64url strings mixing cases and digits, the shape of a random secret (not a word or a path).
  [
    /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}/g,
    (match) => (/[a-z]/.test(match) && /[A-Z]/.test(match) && /\d/.test(match) ? REDACTED : match),
  ],
];

/** `text` with every credential, email, IP address and long secret-looking string replaced. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replace] of RULES) {
    out = typeof replace === 'string' ? out.replace(pattern, replace) : out.replace(pattern, replace);
  }
  return out;
}
