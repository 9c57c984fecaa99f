// Redaction of free text before it leaves the process: a table of inputs, each with the secret that must
// be gone and the context that must stay.
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/modules/triage/redact.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const API_KEY = 'rak_0a1b2c3d_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9876543210ab';

interface Case {
  name: string;
  input: string;
  /** Substrings that must not survive. */
  gone: string[];
  /** The exact output, when it is worth pinning. */
  output?: string;
}

const CASES: Case[] = [
  {
    name: 'a bearer token in a header line',
    input: 'upstream said 401 for Authorization: Bearer abc.def-ghi_123',
    gone: ['abc.def-ghi_123'],
    output: 'upstream said 401 for Authorization: Bearer [REDACTED]',
  },
  { name: 'a Basic credential', input: 'sent Basic dXNlcjpwYXNz', gone: ['dXNlcjpwYXNz'] },
  { name: 'a JWT on its own', input: `token expired: ${JWT} (kid k1)`, gone: [JWT.split('.')[1]!] },
  {
    name: 'three long base64url segments without a JSON header',
    input: 'jws abcdefghijklmnopqr.stuvwxyzABCDEFGHIJ.KLMNOPQRSTUVWXYZ0123 end',
    gone: ['stuvwxyzABCDEFGHIJ'],
  },
  {
    name: "this service's API key, keeping its public prefix",
    input: `key ${API_KEY} was revoked`,
    gone: ['Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa'],
    output: 'key rak_0a1b2c3d_[REDACTED] was revoked',
  },
  {
    name: 'an OpenAI-style key',
    input: 'llm key sk-proj-abcdefghijklmnop1234567',
    gone: ['abcdefghijklmnop'],
  },
  { name: 'a Google API key', input: 'key=AIzaSyA1234567890abcdefghijklmnopqrstu', gone: ['AIzaSyA123'] },
  {
    name: 'password= in a query string',
    input: 'POST /login?user=bob&password=hunter2&x=1',
    gone: ['hunter2'],
    output: 'POST /login?user=bob&password=[REDACTED]&x=1',
  },
  {
    name: '"password": in JSON',
    input: 'body {"username":"bob","password": "s3cr3t pass!"} rejected',
    gone: ['s3cr3t'],
    output: 'body {"username":"bob","password": "[REDACTED]"} rejected',
  },
  {
    name: 'a password in escaped JSON inside a string',
    input: String.raw`payload "{\"new_password\":\"Tr0ub4dor&3\"}"`,
    gone: ['Tr0ub4dor'],
  },
  { name: 'password in prose', input: 'database password is hunter2', gone: ['hunter2'] },
  {
    name: 'generic secret, token, api_key, apikey and authorization pairs',
    input: 'secret=abc123 token: tok_987 api_key=k-1 apikey=k-2 client_secret="x y" authorization=opaque',
    gone: ['abc123', 'tok_987', 'k-1', 'k-2', 'x y', 'opaque'],
  },
  {
    name: 'a password in a connection URL',
    input: 'connect postgres://app:pa55word@db.internal:5432/app failed',
    gone: ['pa55word'],
    output: 'connect postgres://app:[REDACTED]@db.internal:5432/app failed',
  },
  {
    name: 'email addresses',
    input: 'no user bob.smith+test@example.co.uk or ALICE@Example.com',
    gone: ['bob.smith', 'ALICE'],
    output: 'no user [EMAIL] or [EMAIL]',
  },
  {
    name: 'IPv4 addresses, leaving version-like strings alone',
    input: 'refused from 10.0.0.12 and 192.168.1.254:8080, version 1.2.3.456',
    gone: ['10.0.0.12', '192.168.1.254'],
    output: 'refused from [IP] and [IP]:8080, version 1.2.3.456',
  },
  {
    name: 'IPv6 addresses, leaving clock times alone',
    input: 'peer 2001:db8::1 and fe80::1ff:fe23:4567:890a and ::1 at 12:30:45',
    gone: ['2001:db8', 'fe80', '::1 '],
    output: 'peer [IP] and [IP] and [IP] at 12:30:45',
  },
  {
    name: 'a long hex secret',
    input: 'hmac 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 mismatch',
    gone: ['9f86d081884c7d659a2f'],
  },
  {
    name: 'a long base64 secret',
    input: 'shared secret K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols= rejected',
    gone: ['K7gNU3sdo'],
  },
];

describe('redact', () => {
  it.each(CASES)('when the text holds $name, then it is removed', ({ input, gone, output }) => {
    const redacted = redact(input);
    for (const secret of gone) expect(redacted).not.toContain(secret);
    if (output !== undefined) expect(redacted).toBe(output);
  });

  it.each([
    'Injected fault (X-Fault-Status: 503)',
    'connect ECONNREFUSED to the beacon after 3 attempts',
    'at handler (/usr/local/app/dist/src/modules/random/routes.js:42:13)',
    'order 3f2504e0-4f89-11d3-9a0c-0305e82c3301 not found at 2024-05-01T12:30:45.123Z',
    'Cannot read properties of undefined (reading "value")',
  ])('when the text holds no secret (%s), then it is unchanged', (text) => {
    expect(redact(text)).toBe(text);
  });
});
