// The random API's contract, through the real app (app.inject): shapes, bounds, edges, headers and the
// 400 problem answers for input that breaks a rule across parameters.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { PROBLEM } from '../helpers/problem.js';

const MAX = Number.MAX_SAFE_INTEGER;
const t = useTestApp();

async function get(url: string) {
  const response = await t.app.inject({ method: 'GET', url });
  return { response, body: response.json() };
}

async function expectProblem(url: string, ...names: string[]) {
  const { response, body } = await get(url);
  expect(response.statusCode, url).toBe(400);
  expect(response.headers['content-type']).toBe(PROBLEM);
  expect(body).toMatchObject({
    status: 400,
    type: 'urn:reliability-api:problem:validation-error',
    request_id: response.headers['x-request-id'],
  });
  const named = (body.errors as { name: string }[]).map((e) => e.name);
  for (const name of names) expect(named, `${url} names ${name}`).toContain(name);
  expect(response.headers['cache-control']).toBe('no-store');
  return body;
}

describe('GET /v1/random', () => {
  it('when called without parameters, then it answers one integer in the default range 1..100', async () => {
    const { response, body } = await get('/v1/random');
    expect(response.statusCode).toBe(200);
    expect(body).toEqual({ value: expect.any(Number), min: 1, max: 100 });
    expect(Number.isInteger(body.value) && body.value >= 1 && body.value <= 100).toBe(true);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('when min equals max, then the value is that number', async () => {
    const { body } = await get('/v1/random?min=-7&max=-7');
    expect(body.value).toBe(-7);
  });

  it('when the range is the whole safe-integer range, then values stay within it', async () => {
    for (let i = 0; i < 20; i++) {
      const { body } = await get(`/v1/random?min=${-MAX}&max=${MAX}`);
      expect(Number.isSafeInteger(body.value)).toBe(true);
    }
  });

  it('when the range holds exactly 2^48 values (the edge of crypto.randomInt), then it still answers', async () => {
    const { response, body } = await get(`/v1/random?min=0&max=${2 ** 48 - 1}`);
    expect(response.statusCode).toBe(200);
    expect(body.value >= 0 && body.value < 2 ** 48).toBe(true);
  });

  it('when min > max, then 400 names both', async () => {
    await expectProblem('/v1/random?min=10&max=1', 'min', 'max');
  });

  it('when a bound is beyond 2^53-1 or not an integer, then 400 names it', async () => {
    await expectProblem(`/v1/random?max=${MAX + 2}`, 'max');
    await expectProblem('/v1/random?min=1.5', 'min');
    await expectProblem('/v1/random?min=abc&max=', 'min', 'max');
  });
});

describe('GET /v1/random/integers', () => {
  it('when asked for 100 values, then data holds 100 integers within bounds and the answer echoes the request', async () => {
    const { response, body } = await get('/v1/random/integers?min=-5&max=5&count=100');
    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ min: -5, max: 5, count: 100, unique: false, base: 10 });
    expect(body.data).toHaveLength(100);
    for (const v of body.data) expect(Number.isInteger(v) && v >= -5 && v <= 5).toBe(true);
  });

  it('when unique covers the whole range, then data is a permutation of it', async () => {
    const { body } = await get('/v1/random/integers?min=1&max=50&count=50&unique=true');
    expect([...body.data].sort((a: number, b: number) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  it('when unique asks for more values than the range holds, then 400 names count', async () => {
    await expectProblem('/v1/random/integers?min=1&max=5&count=6&unique=true', 'count');
  });

  it.each([
    [2, /^-?[01]+$/],
    [8, /^-?[0-7]+$/],
    [16, /^-?[0-9a-f]+$/],
  ])('when base is %i, then values are strings in that base', async (base, pattern) => {
    const { body } = await get(`/v1/random/integers?min=-1000&max=1000&count=50&base=${base}`);
    for (const v of body.data) {
      expect(v).toMatch(pattern);
      expect(Math.abs(parseInt(v as string, base))).toBeLessThanOrEqual(1000);
    }
  });

  it('when count, base or unique are out of their domain, then 400 names each one', async () => {
    await expectProblem('/v1/random/integers?count=0&base=3&unique=maybe', 'count', 'base', 'unique');
    await expectProblem('/v1/random/integers?count=10001', 'count');
  });

  it('when a parameter is unknown, then 400 names it instead of silently ignoring it', async () => {
    await expectProblem('/v1/random/integers?cont=5', 'cont');
  });

  it('when the range is at the safe-integer edges, then values stay in range', async () => {
    const { body } = await get(`/v1/random/integers?min=${MAX - 3}&max=${MAX}&count=20`);
    for (const v of body.data) expect(v >= MAX - 3 && v <= MAX).toBe(true);
  });
});

describe('GET /v1/random/sequences', () => {
  it('when asked for min..max, then it answers a permutation of the range', async () => {
    const { body } = await get('/v1/random/sequences?min=-3&max=3');
    expect([...body.data].sort((a: number, b: number) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
  });

  it('when the range holds more than 10000 values, then 400 names max', async () => {
    await expectProblem('/v1/random/sequences?min=1&max=10001', 'max');
    const { body } = await get('/v1/random/sequences?min=1&max=10000');
    expect(body.data).toHaveLength(10000);
  });
});

describe('GET /v1/random/decimals', () => {
  it('when asked for places=3, then values are in [0,1) with at most 3 places', async () => {
    const { body } = await get('/v1/random/decimals?count=200&places=3');
    expect(body).toMatchObject({ count: 200, places: 3 });
    for (const v of body.data) {
      expect(v >= 0 && v < 1).toBe(true);
      expect(String(v).replace(/^0\.?/, '').length).toBeLessThanOrEqual(3);
    }
  });

  it('when places is outside 1..14, then 400 names it', async () => {
    await expectProblem('/v1/random/decimals?places=15', 'places');
    await expectProblem('/v1/random/decimals?places=0', 'places');
  });
});

describe('GET /v1/random/gaussians', () => {
  it('when asked with mean and stddev, then it answers count numbers rounded to places', async () => {
    const { body } = await get('/v1/random/gaussians?count=100&mean=50&stddev=5&places=2');
    expect(body).toMatchObject({ count: 100, mean: 50, stddev: 5, places: 2 });
    for (const v of body.data) expect(Math.abs(v * 100 - Math.round(v * 100))).toBeLessThan(1e-6);
  });

  it('when stddev is zero or negative, then 400 names it', async () => {
    await expectProblem('/v1/random/gaussians?stddev=0', 'stddev');
    await expectProblem('/v1/random/gaussians?stddev=-1', 'stddev');
  });
});

describe('GET /v1/random/strings', () => {
  it('when no charset is given, then strings are alphanumeric of the given length', async () => {
    const { body } = await get('/v1/random/strings?count=20&length=12');
    expect(body).toMatchObject({ count: 20, length: 12, charset: 'alphanumeric', unique: false });
    for (const s of body.data) expect(s).toMatch(/^[A-Za-z0-9]{12}$/);
  });

  it.each([
    ['alpha', /^[A-Za-z]+$/],
    ['lower', /^[a-z]+$/],
    ['upper', /^[A-Z]+$/],
    ['numeric', /^[0-9]+$/],
    ['hex', /^[0-9a-f]+$/],
  ])('when charset is %s, then every character belongs to it', async (charset, pattern) => {
    const { body } = await get(`/v1/random/strings?count=10&length=32&charset=${charset}`);
    for (const s of body.data) expect(s).toMatch(pattern);
  });

  it('when custom chars are given, then only those characters appear (emoji count as one)', async () => {
    const { body } = await get(`/v1/random/strings?count=10&length=5&chars=${encodeURIComponent('ab😀')}`);
    expect(body.charset).toBe('custom');
    for (const s of body.data) {
      expect([...s]).toHaveLength(5);
      for (const c of s) expect(['a', 'b', '😀']).toContain(c);
    }
  });

  it('when unique strings exhaust the space, then all of them are returned once', async () => {
    const { body } = await get('/v1/random/strings?count=8&length=3&chars=01&unique=true');
    expect([...body.data].sort()).toEqual(['000', '001', '010', '011', '100', '101', '110', '111']);
  });

  it('when the input is inconsistent, then 400 names the parameter', async () => {
    await expectProblem('/v1/random/strings?count=9&length=3&chars=01&unique=true', 'count');
    await expectProblem('/v1/random/strings?chars=aab', 'chars');
    await expectProblem('/v1/random/strings?chars=a', 'chars');
    await expectProblem('/v1/random/strings?chars=ab&charset=hex', 'chars', 'charset');
    await expectProblem('/v1/random/strings?charset=klingon&length=257', 'charset', 'length');
  });
});

describe('GET /v1/random/uuids', () => {
  it('when version is 4 (default), then ids are RFC 9562 version 4', async () => {
    const { body } = await get('/v1/random/uuids?count=5');
    expect(body).toMatchObject({ count: 5, version: 4 });
    for (const id of body.data)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('when version is 7, then ids are time-ordered version 7', async () => {
    const { body } = await get('/v1/random/uuids?count=50&version=7');
    for (const id of body.data)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...body.data].sort()).toEqual(body.data);
  });

  it('when version is neither 4 nor 7, then 400 names it', async () => {
    await expectProblem('/v1/random/uuids?version=5', 'version');
  });
});

describe('GET /v1/random/bytes', () => {
  it.each([
    ['base64', (s: string) => Buffer.from(s, 'base64')],
    ['hex', (s: string) => Buffer.from(s, 'hex')],
  ])('when format is %s, then data decodes to size bytes', async (format, decode) => {
    const { body } = await get(`/v1/random/bytes?size=65536&format=${format}`);
    expect(body).toMatchObject({ size: 65536, format });
    expect(decode(body.data as string)).toHaveLength(65536);
  });

  it('when size is outside 1..65536, then 400 names it', async () => {
    await expectProblem('/v1/random/bytes?size=65537', 'size');
    await expectProblem('/v1/random/bytes?size=0&format=binary', 'size', 'format');
  });
});
