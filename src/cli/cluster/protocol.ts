// Messages between the primary and its worker processes, over the cluster IPC channel.
/** One metric as prom-client's getMetricsAsJSON() gives it (its `type` is the name: counter, gauge, ...). */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

/** One registry's metrics. */
export type MetricsJson = MetricJson[];

export type ToPrimary =
  /** Listening, initialized (migrations included): it may take traffic, and a predecessor may retire. */
  | { type: 'ready' }
  /** Served its MAX_REQUESTS: replace me. */
  | { type: 'recycle' }
  /** A scrape arrived: the whole service's metrics, please. */
  | { type: 'metrics-request'; id: number }
  | { type: 'metrics-snapshot'; id: number; metrics: MetricsJson }
  /** The last counts of a retiring worker, once its requests have finished, so totals survive it. */
  | { type: 'metrics-final'; metrics: MetricsJson };

export type ToWorker =
  /** Replaced: stop accepting, finish in-flight requests (readiness unchanged) and exit 0. */
  | { type: 'retire' }
  /** The service is stopping: the full shutdown plan (drain, close), then exit. */
  | { type: 'shutdown' }
  | { type: 'metrics-collect'; id: number }
  | { type: 'metrics-response'; id: number; text: string; contentType: string };

export const isMessage = (value: unknown): value is { type: string } =>
  typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
