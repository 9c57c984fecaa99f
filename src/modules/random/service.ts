// The random API's use cases: the rules that span several parameters, then the draw. Each function reads
// like the endpoint's contract and returns the answer body.
import { InvalidParametersError, type FieldProblem } from '../../lib/errors.js';
import * as generate from './generator.js';
import { MAX_SEQUENCE_LENGTH, type IntegersQueryT, type StringsQueryT } from './schemas.js';

function requireMinNotAboveMax(min: number, max: number): void {
  if (min > max) {
    throw new InvalidParametersError([
      { name: 'min', in: 'query', reason: `must be less than or equal to max (${max})` },
      { name: 'max', in: 'query', reason: `must be greater than or equal to min (${min})` },
    ]);
  }
}

export function single(min: number, max: number) {
  requireMinNotAboveMax(min, max);
  return { value: generate.randomInteger(min, max), min, max };
}

export function integers(q: IntegersQueryT) {
  requireMinNotAboveMax(q.min, q.max);
  // max - min + 1 can exceed 2^53 here, where it is no longer exact; the comparison with count still is.
  if (q.unique && q.max - q.min + 1 < q.count) {
    throw new InvalidParametersError([
      {
        name: 'count',
        in: 'query',
        reason: `unique=true allows at most ${q.max - q.min + 1} values in [${q.min}, ${q.max}]`,
      },
    ]);
  }
  const values = generate.integers(q);
  return {
    data: q.base === 10 ? values : values.map((v) => v.toString(q.base)),
    min: q.min,
    max: q.max,
    count: q.count,
    unique: q.unique,
    base: q.base,
  };
}

export function sequence(min: number, max: number) {
  requireMinNotAboveMax(min, max);
  if (max - min + 1 > MAX_SEQUENCE_LENGTH) {
    throw new InvalidParametersError([
      {
        name: 'max',
        in: 'query',
        reason: `a sequence holds at most ${MAX_SEQUENCE_LENGTH} values (max - min + 1)`,
      },
    ]);
  }
  return { data: generate.sequence(min, max), min, max };
}

export function decimals(count: number, places: number) {
  return { data: generate.decimals(count, places), count, places };
}

export function gaussians(count: number, mean: number, stddev: number, places: number) {
  return { data: generate.gaussians(count, mean, stddev, places), count, mean, stddev, places };
}

function alphabetOf(q: StringsQueryT): { alphabet: string[]; charset: string } {
  if (q.chars !== undefined && q.charset !== undefined) {
    const reason = 'give either charset or chars, not both';
    throw new InvalidParametersError([
      { name: 'charset', in: 'query', reason },
      { name: 'chars', in: 'query', reason },
    ]);
  }
  if (q.chars === undefined) {
    const charset = q.charset ?? 'alphanumeric';
    return { alphabet: [...generate.CHARSETS[charset]], charset };
  }
  const alphabet = [...q.chars]; // code points, so one emoji counts as one character
  const problems: FieldProblem[] = [];
  if (new Set(alphabet).size !== alphabet.length)
    problems.push({ name: 'chars', in: 'query', reason: 'characters must be distinct' });
  if (alphabet.length < 2 || alphabet.length > 256) {
    problems.push({ name: 'chars', in: 'query', reason: 'must hold 2 to 256 characters' });
  }
  if (problems.length > 0) throw new InvalidParametersError(problems);
  return { alphabet, charset: 'custom' };
}

export function strings(q: StringsQueryT) {
  const { alphabet, charset } = alphabetOf(q);
  if (q.unique) {
    const space = generate.stringSpace(alphabet.length, q.length, q.count);
    if (space < q.count) {
      throw new InvalidParametersError([
        {
          name: 'count',
          in: 'query',
          reason: `unique=true allows at most ${space} strings of length ${q.length} over this alphabet`,
        },
      ]);
    }
  }
  return {
    data: generate.strings(q.count, q.length, alphabet, q.unique),
    count: q.count,
    length: q.length,
    charset,
    unique: q.unique,
  };
}

export function uuids(count: number, version: 4 | 7) {
  return { data: generate.uuids(count, version), count, version };
}

export function bytes(size: number, format: 'base64' | 'hex') {
  return { data: generate.bytes(size, format), size, format };
}
