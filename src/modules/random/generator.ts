// Random values from node:crypto only, each draw unbiased: integers by rejection sampling (never a modulo
// of a wider value), permutations by Fisher-Yates, floats from 53 random bits. Framework-free.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** crypto.randomInt(min, max) needs max - min < 2^48, max exclusive: at most 2^48 - 1 outcomes. */
const RANDOM_INT_SPAN_LIMIT = 2 ** 48;
const TWO_64 = 1n << 64n;

/**
 * A uniform integer in [min, max] (inclusive) for any safe integers. Spans over 2^48 (crypto.randomInt's
 * limit) are drawn here from 64 random bits with rejection: values in the incomplete top block are redrawn,
 * so every outcome keeps exactly the same probability.
 */
export function randomInteger(min: number, max: number): number {
  if (max - min + 1 < RANDOM_INT_SPAN_LIMIT) return min + randomInt(0, max - min + 1);
  const span = BigInt(max) - BigInt(min) + 1n;
  const limit = TWO_64 - (TWO_64 % span);
  for (;;) {
    const draw = randomBytes(8).readBigUInt64LE();
    if (draw < limit) return Number(BigInt(min) + (draw % span));
  }
}

/** In-place Fisher-Yates shuffle of the first `take` positions (all by default): a uniform permutation. */
function shuffle<T>(values: T[], take = values.length): T[] {
  const n = values.length;
  for (let i = 0; i < take && i < n - 1; i++) {
    const j = i + randomInt(0, n - i);
    const tmp = values[i] as T;
    values[i] = values[j] as T;
    values[j] = tmp;
  }
  return values;
}

export interface IntegersRequest {
  min: number;
  max: number;
  count: number;
  unique: boolean;
}

export function integers({ min, max, count, unique }: IntegersRequest): number[] {
  const out = new Array<number>(count);
  if (!unique) {
    for (let i = 0; i < count; i++) out[i] = randomInteger(min, max);
    return out;
  }
  const span = max - min + 1;
  if (span <= 2 * count) {
    // Dense draw: shuffle the whole (small) range and take a prefix, instead of rejecting repeats.
    const all = Array.from({ length: span }, (_, i) => min + i);
    return shuffle(all, count).slice(0, count);
  }
  // Sparse draw: fewer than half the values are taken, so a repeat is redrawn at most ~1 time in 2.
  const seen = new Set<number>();
  while (seen.size < count) seen.add(randomInteger(min, max));
  return [...seen];
}

/** A uniformly random permutation of min..max. */
export function sequence(min: number, max: number): number[] {
  return shuffle(Array.from({ length: max - min + 1 }, (_, i) => min + i));
}

/** Uniform doubles in [0, 1) with 53 random bits each (the full precision of a double). */
function unitFloats(count: number): number[] {
  const bytes = randomBytes(count * 8);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const hi = bytes.readUInt32LE(i * 8) >>> 5; // 27 bits
    const lo = bytes.readUInt32LE(i * 8 + 4) >>> 6; // 26 bits
    out[i] = (hi * 67_108_864 + lo) / 9_007_199_254_740_992; // (hi * 2^26 + lo) / 2^53
  }
  return out;
}

/** Uniform decimals in [0, 1) on the grid of `places` decimal places: every k / 10^places equally likely. */
export function decimals(count: number, places: number): number[] {
  const scale = 10 ** places;
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = randomInt(0, scale) / scale;
  return out;
}

/** Normal deviates by the Box-Muller transform, rounded to `places` decimal places. */
export function gaussians(count: number, mean: number, stddev: number, places: number): number[] {
  const uniforms = unitFloats(count + (count % 2));
  const out = new Array<number>(count);
  for (let i = 0; i < count; i += 2) {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - (uniforms[i] as number)));
    const angle = 2 * Math.PI * (uniforms[i + 1] as number);
    out[i] = Number((mean + stddev * radius * Math.cos(angle)).toFixed(places));
    if (i + 1 < count) out[i + 1] = Number((mean + stddev * radius * Math.sin(angle)).toFixed(places));
  }
  return out;
}

export const CHARSETS = {
  alphanumeric: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  alpha: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  lower: 'abcdefghijklmnopqrstuvwxyz',
  upper: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  numeric: '0123456789',
  hex: '0123456789abcdef',
} as const;
export type Charset = keyof typeof CHARSETS;

/**
 * Unbiased indexes into an alphabet of k <= 256 symbols, from random bytes: a byte is kept only below the
 * largest multiple of k (so `byte % k` is uniform) and redrawn otherwise. One byte per symbol on average,
 * where crypto.randomInt per symbol would cost a call each (strings reach 2.5 million symbols).
 */
function symbolIndexes(k: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const accept = 256 - (256 % k);
  let filled = 0;
  while (filled < n) {
    const bytes = randomBytes(Math.ceil((n - filled) * (256 / accept)) + 16);
    for (let i = 0; i < bytes.length && filled < n; i++) {
      const b = bytes[i] as number;
      if (b < accept) out[filled++] = b % k;
    }
  }
  return out;
}

/** Number of distinct strings of `length` symbols over `k` symbols, capped (only compared with counts). */
export function stringSpace(k: number, length: number, cap: number): number {
  let space = 1;
  for (let i = 0; i < length && space <= cap; i++) space *= k;
  return space;
}

export function strings(
  count: number,
  length: number,
  alphabet: readonly string[],
  unique: boolean,
): string[] {
  const k = alphabet.length;
  const space = stringSpace(k, length, 2 * count);
  if (unique && space <= 2 * count) {
    // Dense: draw distinct indexes of the (small) space and spell each in base k.
    return integers({ min: 0, max: space - 1, count, unique: true }).map((index) => {
      let s = '';
      for (let i = 0; i < length; i++) {
        s = (alphabet[index % k] as string) + s;
        index = Math.floor(index / k);
      }
      return s;
    });
  }
  const make = (n: number): string[] => {
    const idx = symbolIndexes(k, n * length);
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let j = 0; j < length; j++) s += alphabet[idx[i * length + j] as number];
      out[i] = s;
    }
    return out;
  };
  if (!unique) return make(count);
  const seen = new Set<string>();
  while (seen.size < count) for (const s of make(count - seen.size)) seen.add(s);
  return [...seen].slice(0, count);
}

export function uuids(count: number, version: 4 | 7): string[] {
  const out = new Array<string>(count);
  // uuid's v7 keeps ids from one process strictly increasing, also within one millisecond (RFC 9562 §6.2).
  for (let i = 0; i < count; i++) out[i] = version === 4 ? randomUUID() : uuidv7();
  return out;
}

export function bytes(size: number, format: 'base64' | 'hex'): string {
  return randomBytes(size).toString(format);
}
