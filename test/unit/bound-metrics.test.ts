// Bound series against prom-client's own metrics: the same observations must give the same exposition
// text, the same JSON for the cluster's aggregation, and the same aggregate across processes.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundHistogram } from '../../src/observability/bound-metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ['method', 'route', 'status_code'] as const;
// Below, on and above bounds, past the last one, and zero.
const OBSERVATIONS: [Record<(typeof LABELS)[number], string>, number][] = [
  [{ method: 'GET', route: '/v1/random', status_code: '200' }, 0.0004],
  [{ method: 'GET', route: '/v1/random', status_code: '200' }, 0.005],
  [{ method: 'GET', route: '/v1/random', status_code: '200' }, 0.0051],
  [{ method: 'GET', route: '/v1/random', status_code: '200' }, 12],
  [{ method: 'GET', route: '/v1/random', status_code: '429' }, 0],
  [{ method: 'POST', route: '/v1/users', status_code: '201' }, 0.3],
  [{ method: 'POST', route: '/v1/users', status_code: '201' }, 2.5],
];

function both() {
  const reference = new Registry();
  const bound = new Registry();
  const histogram = new Histogram({
    name: 'h_seconds',
    help: 'help',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [reference],
  });
  const counter = new Counter({ name: 'c_total', help: 'help', labelNames: LABELS, registers: [reference] });
  const boundHistogram = new BoundHistogram({
    name: 'h_seconds',
    help: 'help',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [bound],
  });
  const boundCounter = new BoundCounter({
    name: 'c_total',
    help: 'help',
    labelNames: LABELS,
    registers: [bound],
  });
  const observe = () => {
    for (const [labels, value] of OBSERVATIONS) {
      histogram.observe(labels, value);
      counter.inc(labels, 2);
      boundHistogram.series(labels).observe(value);
      boundCounter.series(labels).inc(2);
    }
  };
  return { reference, bound, observe, boundHistogram, boundCounter };
}

describe('bound series', () => {
  it("give prom-client's exposition text for the same observations", async () => {
    const { reference, bound, observe } = both();
    observe();
    expect(await bound.metrics()).toBe(await reference.metrics());
    // A second scrape after more counting: the counter's series were moved in once, not twice.
    observe();
    expect(await bound.metrics()).toBe(await reference.metrics());
  });

  it("give prom-client's JSON, and the same aggregate over processes as the cluster computes it", async () => {
    const first = both();
    const second = both();
    first.observe();
    second.observe();
    second.observe();
    // prom-client's own values carry `exemplar: null` (exemplars are off); the bound ones leave it out.
    const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((m) => ({
        ...m,
        values: m.values.map((value) => {
          const rest: Record<string, unknown> = { ...value };
          delete rest.exemplar;
          return rest;
        }),
      }));
    expect(await first.bound.getMetricsAsJSON()).toEqual(
      withoutExemplars(await first.reference.getMetricsAsJSON()),
    );
    const aggregate = async (registries: Registry[]) =>
      AggregatorRegistry.aggregate(await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).metrics();
    expect(await aggregate([first.bound, second.bound])).toBe(
      await aggregate([first.reference, second.reference]),
    );
  });

  it('hand out one series per label set, and refuse a label the metric does not have', () => {
    const { boundHistogram, boundCounter } = both();
    const labels = { method: 'GET', route: '/', status_code: '200' };
    expect(boundHistogram.series(labels)).toBe(boundHistogram.series({ ...labels }));
    expect(boundCounter.series(labels)).toBe(boundCounter.series({ ...labels }));
    expect(() => boundHistogram.series({ nope: 'x' } as never)).toThrow(/no label "nope"/);
  });

  it('start again from zero when the registry is reset', async () => {
    const { bound, observe, boundHistogram } = both();
    observe();
    bound.resetMetrics();
    const values = (await boundHistogram.get()).values;
    expect(values.length).toBeGreaterThan(0);
    expect(values.every((v) => v.value === 0)).toBe(true);
  });
});
