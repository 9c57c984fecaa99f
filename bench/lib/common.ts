// What every part of the benchmark shares: where the repository and its results are, the error that means
// the benchmark cannot go on (printed without a stack), and the parsing of its numeric settings.
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..', '..');
export const resultsDir = path.join(root, 'bench', 'results');

export class BenchError extends Error {}

export function intSetting(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new BenchError(`${name} must be a whole number in [${min}, ${max}], got "${raw}"`);
  }
  return Number(raw);
}
