// random_values_generated_total{kind}: how many values the random API handed out, by kind. Each kind's
// child is resolved once, so a draw costs one increment on the benchmarked /v1/random path.
import type { Registry } from 'prom-client';
import { BoundCounter } from '../../observability/bound-metrics.js';

export const VALUE_KINDS = ['integer', 'sequence', 'decimal', 'gaussian', 'string', 'uuid', 'byte'] as const;
export type ValueKind = (typeof VALUE_KINDS)[number];

export type GeneratedCounters = Record<ValueKind, { inc(values: number): void }>;

/** Registers random_values_generated_total on the registry, every kind's series at 0. */
export function generatedCounters(registry: Registry): GeneratedCounters {
  const counter = new BoundCounter({
    name: 'random_values_generated_total',
    help: 'Random values produced, by kind (integer, sequence, decimal, gaussian, string, uuid, byte).',
    labelNames: ['kind'],
    registers: [registry],
  });
  const children = {} as GeneratedCounters;
  for (const kind of VALUE_KINDS) {
    children[kind] = counter.series({ kind });
  }
  return children;
}
