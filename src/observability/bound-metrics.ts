// Hot-path metrics: series whose labels are resolved once, counting in plain numbers. prom-client checks
// and hashes a series' labels on every inc() and observe(), even through a labels() child, which was about
// 6% of a small request's CPU in the bench profile. No maintained library offers bound series for
// prom-client, so these are small: a Counter folds its series in from its collect() (public API), and the
// histogram is a metric of its own that answers get() in prom-client's own format. Scrapes, the SLO
// report and the cluster's aggregation read them like any other metric.
import {
  Counter,
  type CounterConfiguration,
  type LabelValues,
  type Metric,
  type MetricValueWithName,
  type Registry,
} from 'prom-client';

/** One series of a counter: inc() adds to a number that the next scrape moves into the counter. */
export interface CounterSeries {
  inc(value?: number): void;
}

/** A prom-client Counter with series bound once (every bound series is exported, at 0 until counted). */
export class BoundCounter<T extends string> {
  readonly counter: Counter<T>;
  readonly #series: { labels: LabelValues<T>; pending: number }[] = [];
  readonly #byKey = new Map<string, CounterSeries>();

  constructor(config: Omit<CounterConfiguration<T>, 'collect'>) {
    const series = this.#series;
    this.counter = new Counter<T>({
      ...config,
      collect() {
        for (const s of series) {
          this.inc(s.labels, s.pending);
          s.pending = 0;
        }
      },
    });
  }

  /** The series of these label values, made on first use; keep it (a lookup costs a join and a map). */
  series(labels: LabelValues<T>): CounterSeries {
    const key = JSON.stringify(labels);
    let series = this.#byKey.get(key);
    if (series === undefined) {
      const entry = { labels, pending: 0 };
      this.#series.push(entry);
      series = {
        inc: (value = 1) => {
          entry.pending += value;
        },
      };
      this.#byKey.set(key, series);
    }
    return series;
  }
}

/** One series of a histogram. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface HistogramEntry<T extends string> {
  labels: LabelValues<T>;
  /** Observations per bucket, not cumulative; the last one is past every bound (+Inf). */
  counts: number[];
  sum: number;
  count: number;
}

type Value = MetricValueWithName<string>;

/**
 * A histogram registered like prom-client's, whose series are bound once. Exported exactly as prom-client's
 * Histogram exports its own: cumulative `_bucket{le}` series ending in `le="+Inf"`, then `_sum` and `_count`.
 */
export class BoundHistogram<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly T[];
  readonly #bounds: readonly number[];
  #entries: HistogramEntry<T>[] = [];
  readonly #byKey = new Map<string, { entry: HistogramEntry<T>; series: HistogramSeries }>();

  constructor(config: {
    name: string;
    help: string;
    labelNames: readonly T[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    // The registry takes any object with prom-client's metric surface (name, help, type, get, reset).
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric<T>);
  }

  series(labels: LabelValues<T>): HistogramSeries {
    const key = JSON.stringify(labels);
    let bound = this.#byKey.get(key);
    if (bound === undefined) {
      for (const name of Object.keys(labels))
        if (!(this.labelNames as readonly string[]).includes(name))
          throw new Error(`${this.name} has no label "${name}"`);
      const entry: HistogramEntry<T> = {
        labels,
        counts: new Array<number>(this.#bounds.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#entries.push(entry);
      const bounds = this.#bounds;
      const series: HistogramSeries = {
        observe: (value) => {
          if (!Number.isFinite(value)) return;
          let i = 0;
          while (i < bounds.length && value > bounds[i]!) i += 1;
          entry.counts[i]! += 1;
          entry.sum += value;
          entry.count += 1;
        },
      };
      bound = { entry, series };
      this.#byKey.set(key, bound);
    }
    return bound.series;
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; values: Value[]; aggregator: 'sum' }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, counts, sum, count } of this.#entries) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: bucket });
      values.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }

  /** Every series back to zero (Registry#resetMetrics). */
  reset(): void {
    for (const entry of this.#entries) {
      entry.counts.fill(0);
      entry.sum = 0;
      entry.count = 0;
    }
  }
}
