// Property: whatever a client puts in the query string of any endpoint, the answer is 200 or a 4xx
// problem+json naming what is wrong; never a 5xx, never a crash.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { PROBLEM } from '../helpers/problem.js';

const ENDPOINTS: Record<string, string[]> = {
  '/v1/random': ['min', 'max'],
  '/v1/random/integers': ['min', 'max', 'count', 'unique', 'base'],
  '/v1/random/sequences': ['min', 'max'],
  '/v1/random/decimals': ['count', 'places'],
  '/v1/random/gaussians': ['count', 'mean', 'stddev', 'places'],
  '/v1/random/strings': ['count', 'length', 'charset', 'chars', 'unique'],
  '/v1/random/uuids': ['count', 'version'],
  '/v1/random/bytes': ['size', 'format'],
};

// Values a careless or hostile client sends: edges of every numeric domain, wrong types, odd text.
const value = fc.oneof(
  fc.integer({ min: -20, max: 300 }).map(String),
  fc.constantFrom(
    '0',
    '-1',
    '1e3',
    '1.5',
    '9007199254740991',
    '-9007199254740991',
    '9007199254740992',
    '1e309',
    'NaN',
    'Infinity',
    '-0',
    '0x10',
    ' 7 ',
    '',
  ),
  fc.constantFrom(
    'true',
    'false',
    'yes',
    'null',
    'undefined',
    '[]',
    '{}',
    'hex',
    'alpha',
    'base64',
    'binary',
    'ab',
    'aa',
    '😀😁',
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

function queryFor(names: string[]) {
  const known = fc.dictionary(fc.constantFrom(...names), value, { maxKeys: names.length });
  const extra = fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), value), { freq: 4 });
  const repeated = fc.option(fc.tuple(fc.constantFrom(...names), value, value), { freq: 4 });
  return fc.tuple(known, extra, repeated).map(([params, unknown, twice]) => {
    const search = new URLSearchParams(params);
    if (unknown) search.append(unknown[0], unknown[1]);
    if (twice) {
      search.append(twice[0], twice[1]);
      search.append(twice[0], twice[2]);
    }
    return search.toString();
  });
}

const t = useTestApp();

async function expectClientAnswer(url: string) {
  const response = await t.app.inject({ method: 'GET', url });
  expect(response.statusCode, url).toBeLessThan(500);
  if (response.statusCode >= 400) {
    expect(response.statusCode, url).toBe(400);
    expect(response.headers['content-type'], url).toBe(PROBLEM);
    const body = response.json();
    expect(body.status).toBe(400);
    expect(body.errors.length, url).toBeGreaterThan(0);
    for (const e of body.errors) expect(typeof e.name === 'string' && e.name.length > 0, url).toBe(true);
  } else {
    expect(response.statusCode, url).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  }
}

describe.each(Object.entries(ENDPOINTS))('GET %s', (path, names) => {
  it('when the query string is arbitrary, then the answer is 200 or a 400 problem naming the parameters', async () => {
    await fc.assert(
      fc.asyncProperty(queryFor(names), async (query) => expectClientAnswer(`${path}?${query}`)),
      { numRuns: 150 },
    );
  });
});

describe('raw query strings', () => {
  it.each([
    '%',
    '%ZZ',
    'min=%E0%A4%A',
    'min=1&&&max=2',
    '=&=',
    'min[]=1',
    'min[a]=1',
    '__proto__=1',
    'constructor[prototype][x]=1',
    `chars=${'a'.repeat(5000)}`,
    'size=1e309',
    'count=1e309&min=-1e309',
  ])('when the raw query is %s, then the answer is not a 5xx', async (query) => {
    for (const path of Object.keys(ENDPOINTS)) await expectClientAnswer(`${path}?${query}`);
  });
});
