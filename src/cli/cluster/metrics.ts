// One /metrics for the whole service: every live worker's registry, the primary's own, and the final
// counts of workers that are gone, merged with prom-client's cluster aggregation. Counters and
// histograms are summed; gauges are each process's own, labelled `worker` (its slot, 1..N, or `primary`).
//
// Why the counts of gone workers are kept: a sum that drops when a worker is recycled or crashes reads
// to Prometheus as a counter reset, and rate() would then count the survivors' whole totals again.
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricJson, MetricsJson } from './protocol.js';

const SUMMED = new Set(['counter', 'histogram']);

/** The process's gauges labelled with `worker`; counters and histograms unchanged. */
export function labelGauges(metrics: MetricsJson, worker: string): MetricsJson {
  return metrics.map((metric) =>
    SUMMED.has(metric.type)
      ? metric
      : {
          ...metric,
          // Each process's series stays apart (its own labels), so even prom-client's `omit` and
          // `average` gauges (start time, event-loop lag) are kept as they are.
          aggregator: 'sum',
          values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, worker } })),
        },
  );
}

export const countsOf = (metrics: MetricsJson): MetricsJson => metrics.filter((m) => SUMMED.has(m.type));

export async function merge(parts: MetricsJson[]): Promise<MetricsJson> {
  return (await AggregatorRegistry.aggregate(parts).getMetricsAsJSON()) as unknown as MetricJson[];
}

/** The counts left by workers that have exited, added to every scrape. */
export class RetiredCounts {
  #counts: MetricsJson = [];

  async add(metrics: MetricsJson): Promise<void> {
    this.#counts = await merge([this.#counts, countsOf(metrics)]);
  }

  get counts(): MetricsJson {
    return this.#counts;
  }
}

export function render(parts: MetricsJson[]): { text: Promise<string>; contentType: string } {
  const registry: Registry = AggregatorRegistry.aggregate(parts);
  return { text: registry.metrics(), contentType: registry.contentType };
}
