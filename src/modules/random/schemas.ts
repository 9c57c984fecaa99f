// Request and response schemas of the random API. They validate input (unknown parameters are refused, so a
// typo such as `cont=5` is an error, not a silently ignored default), serialize output and feed OpenAPI.
import { Type, type Static } from '@sinclair/typebox';
import { CHARSETS } from './generator.js';

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const MAX_COUNT = 10_000;
export const MAX_SEQUENCE_LENGTH = 10_000;

const SafeInteger = (description: string, def: number) =>
  Type.Integer({ minimum: -MAX_SAFE, maximum: MAX_SAFE, default: def, description });
const Count = Type.Integer({ minimum: 1, maximum: MAX_COUNT, default: 1, description: 'How many values.' });
const Unique = (what: string) => Type.Boolean({ default: false, description: `No two ${what} are equal.` });

const strict = { additionalProperties: false } as const;

export const SingleQuery = Type.Object(
  {
    min: SafeInteger('Smallest possible value (inclusive).', 1),
    max: SafeInteger('Largest possible value (inclusive).', 100),
  },
  strict,
);
export const SingleReply = Type.Object({ value: Type.Integer(), min: Type.Integer(), max: Type.Integer() });

export const IntegersQuery = Type.Object(
  {
    min: SafeInteger('Smallest possible value (inclusive).', 1),
    max: SafeInteger('Largest possible value (inclusive).', 100),
    count: Count,
    unique: Unique('values'),
    base: Type.Unsafe<2 | 8 | 10 | 16>({
      type: 'integer',
      enum: [2, 8, 10, 16],
      default: 10,
      description: 'Number base; values are strings for bases other than 10.',
    }),
  },
  strict,
);
export const IntegersReply = Type.Object({
  data: Type.Union([Type.Array(Type.Integer()), Type.Array(Type.String())]),
  min: Type.Integer(),
  max: Type.Integer(),
  count: Type.Integer(),
  unique: Type.Boolean(),
  base: Type.Integer(),
});

export const SequenceQuery = Type.Object(
  {
    min: SafeInteger('First value of the range (inclusive).', 1),
    max: SafeInteger(`Last value of the range (inclusive); at most ${MAX_SEQUENCE_LENGTH} values.`, 10),
  },
  strict,
);
export const SequenceReply = Type.Object({
  data: Type.Array(Type.Integer()),
  min: Type.Integer(),
  max: Type.Integer(),
});

export const DecimalsQuery = Type.Object(
  {
    count: Count,
    places: Type.Integer({ minimum: 1, maximum: 14, default: 10, description: 'Decimal places.' }),
  },
  strict,
);
export const DecimalsReply = Type.Object({
  data: Type.Array(Type.Number()),
  count: Type.Integer(),
  places: Type.Integer(),
});

// Bounds keep mean + stddev * deviate comfortably inside the range where toFixed(14) is exact enough.
const GAUSSIAN_BOUND = 1e6;
export const GaussiansQuery = Type.Object(
  {
    count: Count,
    mean: Type.Number({ minimum: -GAUSSIAN_BOUND, maximum: GAUSSIAN_BOUND, default: 0 }),
    stddev: Type.Number({
      exclusiveMinimum: 0,
      maximum: GAUSSIAN_BOUND,
      default: 1,
      description: 'Must be > 0.',
    }),
    places: Type.Integer({ minimum: 1, maximum: 14, default: 10, description: 'Decimal places.' }),
  },
  strict,
);
export const GaussiansReply = Type.Object({
  data: Type.Array(Type.Number()),
  count: Type.Integer(),
  mean: Type.Number(),
  stddev: Type.Number(),
  places: Type.Integer(),
});

export const CHARSET_NAMES = Object.keys(CHARSETS) as (keyof typeof CHARSETS)[];
// `charset` and `chars` have no default: which one is present decides the alphabet (see the service).
export const StringsQuery = Type.Object(
  {
    count: Count,
    length: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'Characters per string.' }),
    charset: Type.Optional(
      Type.Unsafe<keyof typeof CHARSETS>({
        type: 'string',
        enum: CHARSET_NAMES,
        description: 'Named alphabet (alphanumeric when neither charset nor chars is given).',
      }),
    ),
    chars: Type.Optional(
      Type.String({
        minLength: 2,
        maxLength: 1024,
        description: 'Custom alphabet: 2 to 256 distinct characters. Use instead of `charset`.',
      }),
    ),
    unique: Unique('strings'),
  },
  strict,
);
export const StringsReply = Type.Object({
  data: Type.Array(Type.String()),
  count: Type.Integer(),
  length: Type.Integer(),
  charset: Type.String(),
  unique: Type.Boolean(),
});

export const UuidsQuery = Type.Object(
  {
    count: Count,
    version: Type.Unsafe<4 | 7>({
      type: 'integer',
      enum: [4, 7],
      default: 4,
      description: '4 (random) or 7 (time-ordered).',
    }),
  },
  strict,
);
export const UuidsReply = Type.Object({
  data: Type.Array(Type.String({ format: 'uuid' })),
  count: Type.Integer(),
  version: Type.Integer(),
});

export const BytesQuery = Type.Object(
  {
    size: Type.Integer({ minimum: 1, maximum: 65_536, default: 32, description: 'Number of bytes.' }),
    format: Type.Unsafe<'base64' | 'hex'>({ type: 'string', enum: ['base64', 'hex'], default: 'base64' }),
  },
  strict,
);
export const BytesReply = Type.Object({ data: Type.String(), size: Type.Integer(), format: Type.String() });

export type IntegersQueryT = Static<typeof IntegersQuery>;
export type StringsQueryT = Static<typeof StringsQuery>;
