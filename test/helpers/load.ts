// Steady closed-loop load for system tests: `connections` clients, each sending its next request as soon as
// the previous one is answered, over keep-alive connections. Every failure is kept with when it was sent.
import { Agent, request } from 'undici';

export interface LoadFailure {
  sentAtMs: number;
  failedAtMs: number;
  reason: string;
}

export interface LoadReport {
  sent: number;
  ok: number;
  failures: LoadFailure[];
  durationMs: number;
}

export function startLoad(url: string, connections = 8, init: { headers?: Record<string, string> } = {}) {
  const agent = new Agent({ connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const started = performance.now();
  const report: LoadReport = { sent: 0, ok: 0, failures: [], durationMs: 0 };
  let running = true;
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      const sentAt = performance.now() - started;
      report.sent++;
      try {
        const answer = await request(url, { dispatcher: agent, headers: init.headers });
        await answer.body.arrayBuffer();
        if (answer.statusCode === 200) report.ok++;
        else
          report.failures.push({
            sentAtMs: sentAt,
            failedAtMs: performance.now() - started,
            reason: `status ${answer.statusCode}`,
          });
      } catch (error) {
        report.failures.push({
          sentAtMs: sentAt,
          failedAtMs: performance.now() - started,
          reason: (error as { code?: string }).code ?? (error as Error).message,
        });
      }
    }
  });
  return {
    /** Milliseconds since the load began. */
    now: () => performance.now() - started,
    async stop(): Promise<LoadReport> {
      running = false;
      await Promise.all(loops);
      await agent.close();
      report.durationMs = performance.now() - started;
      return report;
    },
  };
}
