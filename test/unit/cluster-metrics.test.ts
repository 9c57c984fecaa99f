// The pieces of worker processes that need no process: CPU quota reading and the merged /metrics.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RetiredCounts, labelGauges, render } from '../../src/cli/cluster/metrics.js';
import type { MetricsJson } from '../../src/cli/cluster/protocol.js';
import { cgroupCpuQuota, usableCpus } from '../../src/lib/usable-cpus.js';

const files = (entries: Record<string, string>) => (path: string) => entries[path];

describe('usable CPUs', () => {
  it('when a cgroup v2 or v1 quota is set, then it bounds the count (rounded up), else the available cores do', () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }), 8)).toBe(2);
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }), 8)).toBe(8);
    const v1 = {
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
    };
    expect(usableCpus(files(v1), 8)).toBe(3);
    expect(usableCpus(files({ ...v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1' }), 8)).toBe(8);
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '800000 100000' }), 2)).toBe(2);
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '10000 100000' }), 4)).toBe(1);
  });
});

async function workerRegistry(requests: number, heap: number): Promise<MetricsJson> {
  const registry = new Registry();
  new Counter({ name: 'http_requests_total', help: 'h', labelNames: ['route'], registers: [registry] })
    .labels({ route: '/r' })
    .inc(requests);
  new Gauge({ name: 'heap_bytes', help: 'h', registers: [registry] }).set(heap);
  const histogram = new Histogram({
    name: 'latency_seconds',
    help: 'h',
    buckets: [0.1, 1],
    registers: [registry],
  });
  for (let i = 0; i < requests; i++) histogram.observe(0.05);
  return (await registry.getMetricsAsJSON()) as unknown as MetricsJson;
}

describe('merged metrics of worker processes', () => {
  it('when two workers report, then counters and histograms are summed and each gauge keeps its worker label', async () => {
    const text = await render([
      labelGauges(await workerRegistry(3, 100), '1'),
      labelGauges(await workerRegistry(4, 200), '2'),
    ]).text;
    expect(text).toContain('http_requests_total{route="/r"} 7');
    expect(text).toContain('heap_bytes{worker="1"} 100');
    expect(text).toContain('heap_bytes{worker="2"} 200');
    expect(text).toContain('latency_seconds_bucket{le="0.1"} 7');
    expect(text).toContain('latency_seconds_count 7');
  });

  it('when a worker is gone, then its counts stay in every later total and its gauges do not', async () => {
    const retired = new RetiredCounts();
    await retired.add(await workerRegistry(5, 999));
    await retired.add(await workerRegistry(2, 999));
    const text = await render([retired.counts, labelGauges(await workerRegistry(1, 10), '1')]).text;
    expect(text).toContain('http_requests_total{route="/r"} 8');
    expect(text).toContain('latency_seconds_count 8');
    expect(text).not.toMatch(/^heap_bytes.* 999$/m);
    expect(text).toContain('heap_bytes{worker="1"} 10');
  });
});
