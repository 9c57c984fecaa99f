// The process source of the SLO report estimates p99 as Prometheus's histogram_quantile() does.
import { describe, expect, it } from 'vitest';
import { histogramQuantile } from '../../src/modules/slo/process-source.js';

const inf = Number.POSITIVE_INFINITY;

describe('histogramQuantile', () => {
  it('when the histogram is empty, then there is no quantile', () => {
    expect(histogramQuantile(0.99, [])).toBeNull();
    expect(
      histogramQuantile(0.99, [
        [0.1, 0],
        [inf, 0],
      ]),
    ).toBeNull();
  });

  it('when the rank falls inside a bucket, then it interpolates linearly within it', () => {
    // 100 observations: 50 under 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1].
    const buckets = [
      [0.1, 50],
      [0.5, 90],
      [1, 100],
      [inf, 100],
    ] as const;
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.7, buckets)).toBeCloseTo(0.3);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.95);
    // The first bucket starts at 0.
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.05);
  });

  it('when the rank falls in the +Inf bucket, then it answers the highest finite bound', () => {
    expect(
      histogramQuantile(0.99, [
        [0.25, 90],
        [inf, 100],
      ]),
    ).toBe(0.25);
  });

  it('when buckets come unsorted, then the answer is the same', () => {
    expect(
      histogramQuantile(0.7, [
        [inf, 100],
        [1, 100],
        [0.1, 50],
        [0.5, 90],
      ]),
    ).toBeCloseTo(0.3);
  });
});
