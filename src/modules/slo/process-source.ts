// The SLO indicators from this process's own counters (since it started): what /v1/slo answers when no
// Prometheus is configured, or when Prometheus cannot be reached.
import type { Registry } from 'prom-client';

/** Probes and scrapes are not answers to clients; the shipped recording rules leave them out too. */
const OPERATIONAL_ROUTE = /^\/health|^\/ready$|^\/metrics$/;

export interface ProcessIndicators {
  requests: number;
  errors: number;
  /** null before the first request. */
  p99_latency_seconds: number | null;
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

async function values(registry: Registry, name: string): Promise<MetricValue[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return [];
  return (await metric.get()).values as MetricValue[];
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside the bucket it falls in, as
 * Prometheus's histogram_quantile() does, so both sources of the report agree on the same data.
 */
export function histogramQuantile(q: number, buckets: readonly (readonly [number, number])[]): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      // Past the last finite bucket Prometheus answers that bucket's upper bound; so do we.
      if (!Number.isFinite(bound)) return previousBound;
      const inBucket = count - previousCount;
      return inBucket === 0
        ? bound
        : previousBound + ((bound - previousBound) * (rank - previousCount)) / inBucket;
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}

export async function processIndicators(registry: Registry): Promise<ProcessIndicators> {
  let requests = 0;
  let errors = 0;
  for (const { value, labels } of await values(registry, 'http_requests_total')) {
    if (OPERATIONAL_ROUTE.test(String(labels.route))) continue;
    requests += value;
    if (String(labels.status_code).startsWith('5')) errors += value;
  }
  const buckets = new Map<number, number>();
  for (const { value, labels, metricName } of await values(registry, 'http_request_duration_seconds')) {
    if (metricName !== 'http_request_duration_seconds_bucket') continue;
    if (OPERATIONAL_ROUTE.test(String(labels.route))) continue;
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + value);
  }
  return { requests, errors, p99_latency_seconds: histogramQuantile(0.99, [...buckets]) };
}
