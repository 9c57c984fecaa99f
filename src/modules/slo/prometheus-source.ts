// The SLO indicators from Prometheus: the shipped recording rules (deploy/monitoring/prometheus/rules/
// slo.yml), read through the resilient outbound client so a slow or failing Prometheus trips its breaker
// instead of holding requests.
import type { OutboundClient } from '../../adapters/http/outbound.js';

export interface PrometheusIndicators {
  /** Error ratio over the 30-day SLO window; null without traffic. */
  error_ratio_30d: number | null;
  requests_30d: number | null;
  p99_latency_seconds: number | null;
  /** Error ratios over the burn-rate windows of the alerts. */
  error_ratios: Record<'5m' | '30m' | '1h' | '6h', number | null>;
}

// min/max over every namespace and service the rules recorded: the report speaks for the worst of them.
// Error ratios rather than the recorded burn rates: those are fixed to the shipped 0.999 objective, and the
// report divides by the configured one.
const QUERIES = {
  error_ratio_30d: 'max(slo:request_error:ratio_rate30d)',
  requests_30d: 'sum(slo:requests:increase30d)',
  p99_latency_seconds: 'max(slo:request_latency_p99:seconds_5m)',
  ratio_5m: 'max(slo:request_error:ratio_rate5m)',
  ratio_30m: 'max(slo:request_error:ratio_rate30m)',
  ratio_1h: 'max(slo:request_error:ratio_rate1h)',
  ratio_6h: 'max(slo:request_error:ratio_rate6h)',
} as const;

interface QueryAnswer {
  status?: string;
  error?: string;
  data?: { resultType?: string; result?: { value?: [number, string] }[] };
}

/** A Prometheus answer that is not what the query API promises. */
export class PrometheusAnswerError extends Error {}

async function scalar(client: OutboundClient, query: string): Promise<number | null> {
  const response = await client.request({ path: '/api/v1/query', query: { query } });
  const answer = response.body as QueryAnswer;
  if (response.status !== 200 || answer?.status !== 'success' || !Array.isArray(answer.data?.result))
    throw new PrometheusAnswerError(
      `prometheus answered ${response.status}${answer?.error === undefined ? '' : `: ${answer.error}`}`,
    );
  const raw = answer.data.result[0]?.value?.[1];
  if (raw === undefined) return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

export async function prometheusIndicators(client: OutboundClient): Promise<PrometheusIndicators> {
  const names = Object.keys(QUERIES) as (keyof typeof QUERIES)[];
  const results = await Promise.all(names.map((name) => scalar(client, QUERIES[name])));
  const value = Object.fromEntries(names.map((name, i) => [name, results[i]!])) as Record<
    keyof typeof QUERIES,
    number | null
  >;
  return {
    error_ratio_30d: value.requests_30d === 0 ? null : value.error_ratio_30d,
    requests_30d: value.requests_30d,
    p99_latency_seconds: value.p99_latency_seconds,
    error_ratios: {
      '5m': value.ratio_5m,
      '30m': value.ratio_30m,
      '1h': value.ratio_1h,
      '6h': value.ratio_6h,
    },
  };
}
