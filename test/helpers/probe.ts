// A prober beside a test: GETs a URL on a fixed period over its own keep-alive connection, as a load
// balancer's health check does, and records every answer and its latency.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';

export interface ProbeReport {
  count: number;
  /** Answers other than 200, and requests that failed or passed `timeoutMs`, each with when and why. */
  failures: { atMs: number; reason: string }[];
  latenciesMs: number[];
  p99Ms: number;
  maxMs: number;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Starts probing `url` every `periodMs`; stop() ends it and reports. */
export function startProbe(url: string, periodMs = 50, timeoutMs = 2_000) {
  const agent = new Agent({ connections: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const started = performance.now();
  const report: ProbeReport = { count: 0, failures: [], latenciesMs: [], p99Ms: 0, maxMs: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const sent = performance.now();
      try {
        const answer = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) });
        await answer.body.arrayBuffer();
        if (answer.statusCode !== 200)
          report.failures.push({ atMs: sent - started, reason: `status ${answer.statusCode}` });
      } catch (error) {
        report.failures.push({ atMs: sent - started, reason: (error as Error).message });
      }
      report.count++;
      report.latenciesMs.push(performance.now() - sent);
      await sleep(Math.max(0, periodMs - (performance.now() - sent)));
    }
  })();
  return {
    async stop(): Promise<ProbeReport> {
      running = false;
      await loop;
      await agent.close();
      const sorted = [...report.latenciesMs].sort((a, b) => a - b);
      report.p99Ms = quantile(sorted, 0.99);
      report.maxMs = sorted.at(-1) ?? 0;
      return report;
    },
  };
}
