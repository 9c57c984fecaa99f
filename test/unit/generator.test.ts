// Specification of the random generators (src/modules/random/generator.ts): bounds, shapes and formats of
// every generator, and statistical tests that the draws are uniform (or normal) as promised.
//
// Statistical tests and their significance level
// -----------------------------------------------
// Each uniformity test is Pearson's chi-square goodness-of-fit test at ALPHA = 1e-6: on a correct generator
// one such test fails once in a million runs; with the ~10 tests in this file, at most once in ~100,000
// runs of the file (union bound), so the suite is practically never flaky. The small alpha costs little
// power because the sample sizes are chosen for it: the critical value grows only slowly as alpha shrinks
// (df = 9: 16.9 at alpha = 0.05, 44.8 at 1e-6), while the statistic under a biased generator grows linearly
// with N (noncentrality lambda = N * k * sum_i (p_i - 1/k)^2 for k cells). Example, the classic modulo bias
// `byte % 10` (values 0-5 have probability 26/256, 6-9 have 25/256, a 2.5 % relative bias): at
// N = 100,000, lambda = 36.6 and the test would catch it only half the time; at N = 1,000,000, lambda = 366
// and it is missed with probability 1e-37 (scipy.stats.ncx2.cdf(44.81, 9, 366.2)). The tests below prove
// this power by running the same check on deliberately biased generators and expecting a rejection.
//
// Critical values come from test/helpers/chi-square.ts (the chi-square upper tail as the regularized upper
// incomplete gamma function), which is itself checked against textbook and scipy values at the end.
import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CHARSETS,
  bytes,
  decimals,
  gaussians,
  integers,
  randomInteger,
  sequence,
  stringSpace,
  strings,
  uuids,
} from '../../src/modules/random/generator.js';
import {
  chiSquareCritical,
  chiSquareStatistic,
  chiSquareSurvival,
  chiSquareUniformStatistic,
  lnGamma,
  regularizedUpperGamma,
} from '../helpers/chi-square.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const ALPHA = 1e-6;

interface ChiSquareResult {
  statistic: number;
  df: number;
  critical: number;
  pValue: number;
}

function report(r: ChiSquareResult): string {
  return `chi2 = ${r.statistic.toFixed(2)}, df = ${r.df}, critical(alpha=${ALPHA}) = ${r.critical.toFixed(2)}, p = ${r.pValue.toExponential(2)}`;
}

/** Chi-square goodness-of-fit of counts against equal expected counts in every cell (df = cells - 1). */
function uniformityTest(counts: readonly number[]): ChiSquareResult {
  const statistic = chiSquareUniformStatistic(counts);
  const df = counts.length - 1;
  return { statistic, df, critical: chiSquareCritical(ALPHA, df), pValue: chiSquareSurvival(statistic, df) };
}

/**
 * Uniformity of permutations position by position: the n x n table of how often value v stood at position
 * p over N permutations, each cell expecting N / n. Every row and column sums to N, so the table has
 * (n - 1)^2 degrees of freedom; but the n cells one permutation adds to are dependent (drawn without
 * replacement), so the plain Pearson sum is (n / (n - 1)) * chi-square((n - 1)^2), not chi-square((n - 1)^2):
 * its mean is n (n - 1), e.g. 20 rather than 16 for n = 5. (The covariance of a uniform random permutation
 * matrix is 1 / (n - 1) times the identity on the (n - 1)^2-dimensional space of zero row and column sums.)
 * Scaling by (n - 1) / n restores chi-square((n - 1)^2); without it, alpha = 1e-6 would really be ~8e-5.
 */
function positionTest(permutations: readonly (readonly number[])[], min: number, n: number): ChiSquareResult {
  const table = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (const permutation of permutations) {
    permutation.forEach((value, position) => {
      const row = table[position]!;
      row[value - min] = row[value - min]! + 1;
    });
  }
  const expected = permutations.length / n;
  const pearson = chiSquareStatistic(table.flat(), new Array<number>(n * n).fill(expected));
  const statistic = (pearson * (n - 1)) / n;
  const df = (n - 1) * (n - 1);
  return { statistic, df, critical: chiSquareCritical(ALPHA, df), pValue: chiSquareSurvival(statistic, df) };
}

/** How many values fall in each of `cells` cells; a value outside every cell fails the test. */
function tally<T>(values: Iterable<T>, cells: number, cellOf: (value: T) => number): number[] {
  const counts = new Array<number>(cells).fill(0);
  for (const value of values) {
    const cell = cellOf(value);
    if (!Number.isInteger(cell) || cell < 0 || cell >= cells)
      throw new Error(`${String(value)} is outside the cells`);
    counts[cell] = counts[cell]! + 1;
  }
  return counts;
}

function range(min: number, max: number): number[] {
  return Array.from({ length: max - min + 1 }, (_, i) => min + i);
}

function repeat<T>(n: number, draw: () => T): T[] {
  return Array.from({ length: n }, draw);
}

const ascending = (a: number, b: number): number => a - b;

/** The values that break a rule: asserting the list is empty names every offender when a test fails. */
function violations<T>(values: Iterable<T>, rule: (value: T) => boolean): T[] {
  return [...values].filter((value) => !rule(value));
}

/** An integer (a safe one) within [min, max]. */
const integerIn =
  (min: number, max: number) =>
  (v: number): boolean =>
    Number.isSafeInteger(v) && v >= min && v <= max;

describe('randomInteger', () => {
  it.each([
    [0, 0],
    [-5, -5],
    [MAX_SAFE, MAX_SAFE],
    [-MAX_SAFE, -MAX_SAFE],
  ])('when min equals max (%d), then returns that value', (min, max) => {
    const values = repeat(50, () => randomInteger(min, max));

    expect(new Set(values)).toEqual(new Set([min]));
  });

  it('when the range is negative, then every draw is an integer within bounds and every value occurs', () => {
    const values = repeat(2_000, () => randomInteger(-7, -3));

    expect(violations(values, integerIn(-7, -3))).toEqual([]);
    // P(some value never occurs) <= 5 * (4/5)^2000, about 1e-193.
    expect([...new Set(values)].sort(ascending)).toEqual([-7, -6, -5, -4, -3]);
  });

  it.each([
    ['the top of the safe range', MAX_SAFE - 1, MAX_SAFE],
    ['the bottom of the safe range', -MAX_SAFE, -MAX_SAFE + 1],
  ])('when the range is %s, then both ends occur and nothing else', (_label, min, max) => {
    const values = repeat(200, () => randomInteger(min, max));

    // P(one end never occurs) = 2 * 2^-200.
    expect([...new Set(values)].sort(ascending)).toEqual([min, max]);
  });

  it.each([
    ['2^48 - 1 values (the largest crypto.randomInt range)', 0, 2 ** 48 - 2],
    ['2^48 + 1 values (the smallest BigInt rejection range)', 0, 2 ** 48],
    ['2^50 values ending at 2^53 - 1', MAX_SAFE - 2 ** 50 + 1, MAX_SAFE],
    ['2^49 + 1 values starting at -(2^53 - 1)', -MAX_SAFE, -MAX_SAFE + 2 ** 49],
    ['2^53 values from 0', 0, MAX_SAFE],
    ['the full safe range, 2^54 - 1 values', -MAX_SAFE, MAX_SAFE],
  ])('when the range holds %s, then every draw is a safe integer within bounds', (_label, min, max) => {
    const values = repeat(2_000, () => randomInteger(min, max));

    expect(violations(values, integerIn(min, max))).toEqual([]);
  });

  // crypto.randomInt takes at most 2^48 - 1 outcomes: a range of exactly 2^48 values must take the wide path.
  it.each([
    [0, 2 ** 48 - 1],
    [-(2 ** 47), 2 ** 47 - 1],
  ])('when the range holds exactly 2^48 values [%d, %d], then it draws within bounds', (min, max) => {
    const v = randomInteger(min, max);

    expect(v).toBeGreaterThanOrEqual(min);
    expect(v).toBeLessThanOrEqual(max);
  });

  it('when the range is the full safe range, then draws take both signs, are distinct and reach the top bits', () => {
    const n = 2_000;

    const values = repeat(n, () => randomInteger(-MAX_SAFE, MAX_SAFE));

    // Each assertion fails on a correct generator with probability below 1e-9:
    // all of one sign 2^-1999; any repeat among 2000 draws from 2^54 values ~ n^2 / 2^55 = 1e-10;
    // no |v| above 2^52 (so the top bits never set) 2^-2000.
    expect(values.some((v) => v < 0)).toBe(true);
    expect(values.some((v) => v > 0)).toBe(true);
    expect(new Set(values).size).toBe(n);
    expect(values.some((v) => Math.abs(v) > 2 ** 52)).toBe(true);
  });

  it('when the range is small, then every value is equally likely (chi-square, N = 1,000,000)', () => {
    const n = 1_000_000;

    const counts = tally(
      repeat(n, () => randomInteger(1, 10)),
      10,
      (v) => v - 1,
    );

    const result = uniformityTest(counts);
    expect(result.statistic, report(result)).toBeLessThan(result.critical);
  });

  it('the same uniformity check rejects a modulo-biased generator (byte % 10) at the same N', () => {
    // The bug rejection sampling prevents: 256 is no multiple of 10, so 0-5 are drawn 26 times in 256 and
    // 6-9 only 25 times. One randomBytes buffer stands in for a byte per draw (same distribution, faster).
    const n = 1_000_000;
    const pool = randomBytes(n);

    const counts = tally(pool, 10, (byte) => byte % 10);

    const result = uniformityTest(counts);
    expect(result.statistic, report(result)).toBeGreaterThan(result.critical);
  });

  it('when the span exceeds 2^48 (BigInt rejection path), then draws are uniform across 16 equal buckets', () => {
    const n = 100_000;

    const counts = tally(
      repeat(n, () => randomInteger(0, 2 ** 50 - 1)),
      16,
      (v) => Math.floor(v / 2 ** 46),
    );

    const result = uniformityTest(counts);
    expect(result.statistic, report(result)).toBeLessThan(result.critical);
  });
});

describe('integers', () => {
  it('when unique is false, then returns count integers within bounds, repeats allowed', () => {
    const values = integers({ min: -50, max: 50, count: 10_000, unique: false });

    expect(values).toHaveLength(10_000);
    expect(violations(values, integerIn(-50, 50))).toEqual([]);
    // 10,000 draws of 101 values: every value occurs (P(one missing) <= 101 * (100/101)^10000, ~1e-41).
    expect(new Set(values).size).toBe(101);
  });

  it('when unique and count equals the range size (dense path), then returns a permutation of the range', () => {
    const values = integers({ min: 1, max: 10, count: 10, unique: true });

    expect([...values].sort(ascending)).toEqual(range(1, 10));
  });

  it.each([
    ['dense path: span = 2 * count', -10, 9, 10],
    ['sparse path with frequent repeats: span = 2 * count + 1', 1, 21, 10],
    ['sparse path over a large span', 0, 1_000_000_000, 10_000],
    ['sparse path over the full safe range', -MAX_SAFE, MAX_SAFE, 5_000],
  ])('when unique (%s), then returns count distinct integers within bounds', (_label, min, max, count) => {
    for (let run = 0; run < 20; run++) {
      const values = integers({ min, max, count, unique: true });

      expect(values).toHaveLength(count);
      expect(new Set(values).size).toBe(count);
      expect(violations(values, integerIn(min, max))).toEqual([]);
      if (count > 1_000) break; // the large cases need no repetition
    }
  });

  it.each([
    ['dense path, 4 values', 4],
    ['sparse path, 5 values', 5],
  ])('when unique (%s), then every ordered pair of distinct values is equally likely', (_label, size) => {
    const n = 40_000;

    const counts = tally(
      repeat(n, () => integers({ min: 0, max: size - 1, count: 2, unique: true })),
      size * size,
      ([a, b]) => a! * size + b!,
    );

    // Pairs (v, v) never occur; test the size * (size - 1) ordered pairs of distinct values.
    const distinctPairs = counts.filter((_, cell) => Math.floor(cell / size) !== cell % size);
    expect(distinctPairs.reduce((a, b) => a + b, 0)).toBe(n);
    const result = uniformityTest(distinctPairs);
    expect(result.statistic, report(result)).toBeLessThan(result.critical);
  });
});

describe('sequence', () => {
  it.each([
    [1, 100],
    [-5, 5],
    [-20, -11],
    [MAX_SAFE - 9, MAX_SAFE],
    [-MAX_SAFE, -MAX_SAFE + 9],
  ])('when the range is [%d, %d], then returns a permutation of it', (min, max) => {
    const values = sequence(min, max);

    expect([...values].sort(ascending)).toEqual(range(min, max));
  });

  it('when min equals max, then returns [min]', () => {
    expect(sequence(7, 7)).toEqual([7]);
    expect(sequence(-MAX_SAFE, -MAX_SAFE)).toEqual([-MAX_SAFE]);
  });

  it('when the range holds many values, then the order is shuffled, not sorted', () => {
    const values = sequence(1, 1_000);

    // A correct shuffle returns the sorted order with probability 1 / 1000!.
    expect(values).not.toEqual(range(1, 1_000));
  });

  it('every value is equally likely at every position (chi-square over the 5 x 5 table, N = 20,000)', () => {
    const permutations = repeat(20_000, () => sequence(1, 5));

    const result = positionTest(permutations, 1, 5);
    expect(result.statistic, report(result)).toBeLessThan(result.critical);
  });

  it('the same position check rejects the naive shuffle (swap each position with any position)', () => {
    // The classic wrong Fisher-Yates: j drawn from 0..n-1 instead of i..n-1 gives n^n equally likely swap
    // sequences for n! permutations, so some orders are favoured (e.g. 1 ends in the last place with
    // probability 0.164 instead of 0.2); at N = 20,000 the statistic is ~ 740 against a critical 58.3.
    const naive = (n: number): number[] => {
      const values = range(1, n);
      for (let i = 0; i < n; i++) {
        const j = randomInt(0, n);
        [values[i], values[j]] = [values[j]!, values[i]!];
      }
      return values;
    };

    const result = positionTest(
      repeat(20_000, () => naive(5)),
      1,
      5,
    );

    expect(result.statistic, report(result)).toBeGreaterThan(result.critical);
  });
});

describe('decimals', () => {
  it.each([1, 2, 3, 6, 10, 14])('when places is %d, then returns count values in [0, 1)', (places) => {
    const values = decimals(1_000, places);

    expect(values).toHaveLength(1_000);
    expect(violations(values, (v) => v >= 0 && v < 1)).toEqual([]);
  });

  it.each([1, 2, 3, 6])(
    'when places is %d, then every value has at most that many decimal places',
    (places) => {
      const scale = 10 ** places;

      const values = decimals(1_000, places);

      // v * 10^p carries a rounding error of at most ~1e-10 here (10^p <= 10^6 times the 1.1e-16 relative
      // error of v), so 1e-6 separates "on the grid" from "off the grid" by many orders of magnitude.
      const offGrid = violations(values, (v) => {
        const k = Math.round(v * scale);
        return Number.isInteger(k) && k < scale && Math.abs(v * scale - k) < 1e-6;
      });
      expect(offGrid).toEqual([]);
    },
  );

  it.each([1, 5, 10, 14])(
    'when places is %d, then rounding a value to that many places leaves it unchanged',
    (places) => {
      // Exact for every places up to 14, where v * 10^p is too large for the absolute 1e-6 check above.
      const values = decimals(1_000, places);

      expect(violations(values, (v) => Number(v.toFixed(places)) === v)).toEqual([]);
    },
  );

  it('when places is 1, then each of 0.0 .. 0.9 is equally likely (chi-square, N = 100,000)', () => {
    const counts = tally(decimals(100_000, 1), 10, (v) => Math.round(v * 10));

    const result = uniformityTest(counts);
    expect(result.statistic, report(result)).toBeLessThan(result.critical);
  });
});

describe('gaussians', () => {
  it.each([1, 2, 7, 1_000])('when count is %d, then returns that many finite values', (count) => {
    const values = gaussians(count, 0, 1, 10);

    expect(values).toHaveLength(count);
    expect(violations(values, Number.isFinite)).toEqual([]);
  });

  it('when mean is 10 and stddev is 2, then the sample mean, stddev and spread match (N = 50,000)', () => {
    // Each check allows 6 standard errors: under a correct generator the estimate is (very nearly) normal,
    // so it falls outside with probability 2e-9 (two-sided), yet the bands are narrow enough to catch real
    // mistakes almost surely: a mean off by 0.1 (5 % of a stddev), a stddev off by 4 % (let alone variance
    // for stddev, or a lost factor sqrt(2) in Box-Muller), or a non-normal shape with the right moments (a
    // uniform has 57.7 % of its values within one stddev of the mean, a normal 68.3 %).
    const n = 50_000;
    const mean = 10;
    const stddev = 2;

    const values = gaussians(n, mean, stddev, 10);

    const sampleMean = values.reduce((a, b) => a + b, 0) / n;
    const sampleStddev = Math.sqrt(values.reduce((a, v) => a + (v - sampleMean) ** 2, 0) / (n - 1));
    const withinOne = values.filter((v) => Math.abs(v - mean) <= stddev).length / n;
    const pWithinOne = 0.6826894921370859; // P(|Z| <= 1) = erf(1 / sqrt(2))
    // Tolerances: 0.054, 0.038 and 0.0125.
    expect(Math.abs(sampleMean - mean)).toBeLessThan(6 * (stddev / Math.sqrt(n)));
    expect(Math.abs(sampleStddev - stddev)).toBeLessThan(6 * (stddev / Math.sqrt(2 * (n - 1))));
    expect(Math.abs(withinOne - pWithinOne)).toBeLessThan(6 * Math.sqrt((pWithinOne * (1 - pWithinOne)) / n));
  });

  it.each([1, 3, 10, 14])(
    'when places is %d, then every value has at most that many decimal places',
    (places) => {
      const values = gaussians(1_000, 10, 2, places);

      expect(violations(values, (v) => Number(v.toFixed(places)) === v)).toEqual([]);
      if (places <= 6) {
        const scale = 10 ** places;
        expect(violations(values, (v) => Math.abs(v * scale - Math.round(v * scale)) < 1e-6)).toEqual([]);
      }
    },
  );
});

describe('strings', () => {
  it.each(Object.entries(CHARSETS))(
    'when the charset is %s, then every string has the length and only its characters',
    (_name, charset) => {
      const alphabet = [...charset];
      const allowed = new Set(alphabet);

      const values = strings(200, 32, alphabet, false);

      expect(values).toHaveLength(200);
      expect(violations(values, (s) => s.length === 32 && [...s].every((ch) => allowed.has(ch)))).toEqual([]);
      // 6,400 symbols from at most 62: every character occurs (P(one missing) <= 62 * (61/62)^6400 ~ 1e-43).
      expect(new Set(values.join('')).size).toBe(alphabet.length);
    },
  );

  it('when the alphabet holds emoji (two UTF-16 code units), then each counts as one character', () => {
    const alphabet = ['🎲', '😀', '🔥', 'a'];

    const values = strings(300, 10, alphabet, false);

    expect(values).toHaveLength(300);
    // 10 code points each, all from the alphabet (so the UTF-16 length is 10 plus one per emoji).
    const malformed = violations(values, (s) => {
      const characters = [...s];
      return characters.length === 10 && characters.every((ch) => alphabet.includes(ch));
    });
    expect(malformed).toEqual([]);
    expect(values.some((s) => s.length > 10)).toBe(true);
    expect(new Set(values.flatMap((s) => [...s]))).toEqual(new Set(alphabet));
  });

  it('when unique and count equals the number of possible strings (dense path), then returns all of them', () => {
    const values = strings(8, 3, ['a', 'b'], true);

    expect([...values].sort()).toEqual(['aaa', 'aab', 'aba', 'abb', 'baa', 'bab', 'bba', 'bbb']);
  });

  it('when unique over an emoji alphabet (dense path), then returns every string of whole emoji', () => {
    const values = strings(4, 2, ['🎲', '😀'], true);

    expect([...values].sort()).toEqual(['🎲🎲', '🎲😀', '😀🎲', '😀😀'].sort());
  });

  it.each([
    ['dense path: half the space', ['a', 'b'], 3, 4],
    ['sparse path with frequent repeats: space 16 > 2 * 7', ['x', 'y'], 4, 7],
    ['sparse path over a large space', [...CHARSETS.hex], 8, 5_000],
  ])('when unique (%s), then returns count distinct strings', (_label, alphabet, length, count) => {
    for (let run = 0; run < 20; run++) {
      const values = strings(count, length, alphabet, true);

      expect(values).toHaveLength(count);
      expect(new Set(values).size).toBe(count);
      const allowed = new Set(alphabet);
      expect(violations(values, (s) => s.length === length && [...s].every((ch) => allowed.has(ch)))).toEqual(
        [],
      );
      if (count > 1_000) break;
    }
  });

  // hex (16 symbols) divides 256, so it checks the plain byte-to-symbol mapping; numeric (10) and
  // alphanumeric (62) do not, so they check the rejection of the top bytes: without it, `byte % 62` would
  // favour 8 characters by 25 % (noncentrality 659 at N = 100,000) and `byte % 10` would favour 6 digits
  // by 4 % (noncentrality 366 at N = 1,000,000), far beyond the critical values 128.5 (df 61) and 44.8
  // (df 9).
  it.each([
    ['hex', 2_000],
    ['alphanumeric', 2_000],
    ['numeric', 20_000],
  ] as const)(
    'when the charset is %s, then every character is equally likely (chi-square)',
    (charset, count) => {
      const alphabet = [...CHARSETS[charset]];

      const symbols = strings(count, 50, alphabet, false).join('');

      const counts = tally(symbols, alphabet.length, (ch) => alphabet.indexOf(ch));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(count * 50);
      const result = uniformityTest(counts);
      expect(result.statistic, report(result)).toBeLessThan(result.critical);
    },
  );
});

describe('stringSpace', () => {
  it.each([
    [2, 10, 1_024, 1_024],
    [10, 3, 1_000, 1_000],
    [26, 1, 100, 26],
    [62, 2, 10_000, 3_844],
  ])(
    'when k^length (k=%d, length=%d) is at most the cap %d, then returns it exactly',
    (k, length, cap, space) => {
      expect(stringSpace(k, length, cap)).toBe(space);
    },
  );

  it.each([
    [10, 4, 1_000],
    [2, 60, 100],
    [62, 256, 20_000],
    [256, 256, 20_000],
  ])(
    'when k^length (k=%d, length=%d) exceeds the cap %d, then returns a finite value above the cap',
    (k, length, cap) => {
      const space = stringSpace(k, length, cap);

      expect(Number.isFinite(space)).toBe(true);
      expect(space).toBeGreaterThan(cap);
      expect(space).toBeLessThanOrEqual(cap * k); // stops at the first power above the cap
    },
  );
});

describe('uuids', () => {
  const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('when version is 4, then returns count distinct RFC 9562 v4 ids (version 4, variant 10xx)', () => {
    const ids = uuids(1_000, 4);

    expect(ids).toHaveLength(1_000);
    expect(violations(ids, (id) => V4.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(1_000);
  });

  it('when version is 7, then returns count ids matching the v7 layout (version 7, variant 10xx)', () => {
    const ids = uuids(1_000, 7);

    expect(ids).toHaveLength(1_000);
    expect(violations(ids, (id) => V7.test(id))).toEqual([]);
  });

  it('when version is 7, then a batch is strictly increasing as strings (within one millisecond too)', () => {
    const ids = uuids(1_000, 7);

    for (let i = 1; i < ids.length; i++)
      expect(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`).toBe(true);
  });

  it('when version is 7, then the first 48 bits are the Unix time in milliseconds of the call', () => {
    const before = Date.now();

    const ids = uuids(1_000, 7);

    const after = Date.now();
    const timestamps = ids.map((id) => parseInt(id.replace(/-/g, '').slice(0, 12), 16));
    // A few seconds of slack: the clock may step, and v7 may run ahead to keep ids increasing.
    expect(violations(timestamps, (t) => t >= before - 2_000 && t <= after + 2_000)).toEqual([]);
  });
});

describe('bytes', () => {
  it.each([
    [1, 'base64'],
    [2, 'base64'],
    [3, 'base64'],
    [16, 'base64'],
    [1_024, 'base64'],
    [1, 'hex'],
    [16, 'hex'],
    [1_024, 'hex'],
  ] as const)(
    'when size is %d and format is %s, then the text decodes to exactly size bytes',
    (size, format) => {
      const text = bytes(size, format);

      const decoded = Buffer.from(text, format);
      expect(decoded).toHaveLength(size);
      expect(decoded.toString(format)).toBe(text); // canonical encoding, nothing dropped by a lenient decoder
      if (format === 'hex') expect(text).toMatch(new RegExp(`^[0-9a-f]{${2 * size}}$`));
    },
  );

  it('when called twice, then the bytes differ', () => {
    // 16 random bytes repeat with probability 2^-128.
    expect(bytes(16, 'hex')).not.toBe(bytes(16, 'hex'));
  });
});

describe('chi-square helper (the oracle of the statistical tests)', () => {
  it('lnGamma matches known values of ln Γ', () => {
    expect(lnGamma(1)).toBeCloseTo(0, 14);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 14);
    expect(lnGamma(10)).toBeCloseTo(Math.log(362_880), 13);
    expect(lnGamma(100.5)).toBeCloseTo(361.4355404677776, 11); // Python math.lgamma(100.5)
  });

  it('the survival function matches closed forms in both the series and the continued-fraction branch', () => {
    expect(chiSquareSurvival(1, 1)).toBeCloseTo(0.31731050786291115, 13); // erfc(1 / sqrt 2)
    expect(chiSquareSurvival(0.5, 2)).toBeCloseTo(Math.exp(-0.25), 14); // df 2: exp(-x / 2)
    expect(chiSquareSurvival(30, 2) / Math.exp(-15)).toBeCloseTo(1, 12);
    expect(chiSquareSurvival(0.01, 5)).toBeCloseTo(0.9999994699729957, 14); // scipy.stats.chi2.sf(0.01, 5)
    // Far tail, relative accuracy: scipy.stats.chi2.sf(100, 3) = 1.5541594313896026e-21.
    expect(chiSquareSurvival(100, 3) / 1.5541594313896026e-21).toBeCloseTo(1, 10);
    expect(regularizedUpperGamma(3, 0)).toBe(1);
  });

  it.each([
    [0.05, 1, 3.841],
    [0.05, 10, 18.307],
    [0.01, 2, 9.21],
  ])('the critical value at alpha %s with %s degrees of freedom is the textbook %s', (alpha, df, value) => {
    expect(chiSquareCritical(alpha, df)).toBeCloseTo(value, 3);
  });

  it.each([
    // scipy.stats.chi2.isf(1e-6, df), scipy 1.17.1.
    [9, 44.81093787068782],
    [11, 48.86564276320364],
    [15, 56.49344249977338],
    [16, 58.3243900143889],
  ])('the critical value at alpha 1e-6 with %d degrees of freedom matches scipy (%s)', (df, value) => {
    expect(chiSquareCritical(1e-6, df) / value).toBeCloseTo(1, 9);
  });
});
