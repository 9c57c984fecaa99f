// The parsers the settings schema is written in: each takes the raw environment string and gives a typed
// value or an error message that names the rule.
import { z } from 'zod';

export const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');

export const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const url = (protocols: readonly string[]) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL with scheme ${protocols.map((p) => p.replace(/:$/, '://')).join(' or ')}`,
    );

export const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

/** `false`, `true`, a hop count, or a comma-separated list of trusted proxy addresses/CIDRs. */
export const trustProxy = z
  .string()
  .trim()
  .transform((v): boolean | number | string[] => {
    const lower = v.toLowerCase();
    if (lower === 'false' || lower === '0' || lower === '') return false;
    if (lower === 'true') return true;
    if (/^\d+$/.test(v)) return Number(v);
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  });

export const ratePolicy = z
  .object({
    limit: z.number().int().min(1),
    window_seconds: z.number().int().min(1),
    burst: z.number().int().min(1),
  })
  .strict();

/** A decimal from 0 to 1 inclusive, as a share (`0.9`, `1`, `0`). */
export const ratio = () =>
  z
    .string()
    .trim()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a ratio between 0 and 1')
    .transform(Number);
