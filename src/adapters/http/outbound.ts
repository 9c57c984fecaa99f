// The resilient outbound HTTP client: one named client per dependency (its own connection pool, bulkhead
// and circuit breaker), their breaker snapshots and controls for the admin API, and their metrics.
import type { Registry } from 'prom-client';
import type { Log } from '../../lib/log.js';
import { DependencyClient, type BreakerSnapshot } from './dependency.js';
import { outboundMetrics, type BreakerState } from './metrics.js';
import type { OutboundPolicy } from './policy.js';
import type { OutboundClient, OutboundRequest, OutboundResponse } from './transport.js';

export { OutboundError } from './transport.js';
export type { BreakerSnapshot, OutboundClient, OutboundRequest, OutboundResponse, BreakerState };
export {
  outboundPolicyFrom,
  type OutboundConfig,
  type OutboundOutcome,
  type OutboundPolicy,
} from './policy.js';

export type BreakerAction = 'open' | 'close' | 'reset';

export interface OutboundRegistry {
  /** The client of a dependency; the same name always gives the same client (and breaker). */
  client(name: string, baseUrl: string, overrides?: Partial<OutboundPolicy>): OutboundClient;
  snapshots(): BreakerSnapshot[];
  /** Forces a breaker's state; undefined when no client has that name. */
  control(name: string, action: BreakerAction): BreakerSnapshot | undefined;
  /** Closes every connection pool; calls still running finish first. */
  close(): Promise<void>;
}

export function createOutboundRegistry(opts: {
  policy: OutboundPolicy;
  registry?: Registry;
  logger?: Log;
  /** Jitter source in [0, 1) for retry backoff (tests make it deterministic). */
  random?: () => number;
}): OutboundRegistry {
  const metrics = opts.registry === undefined ? undefined : outboundMetrics(opts.registry);
  const clients = new Map<string, DependencyClient>();
  return {
    client(name, baseUrl, overrides = {}) {
      const existing = clients.get(name);
      if (existing !== undefined) {
        // Two dependencies behind one name would share a breaker: one's outage would cut the other off.
        if (existing.baseUrl !== new URL(baseUrl).toString())
          throw new Error(`outbound client "${name}" already exists for another base URL`);
        return existing;
      }
      const client = new DependencyClient(
        name,
        baseUrl,
        { ...opts.policy, ...overrides },
        {
          log: opts.logger,
          metrics,
          random: opts.random,
        },
      );
      clients.set(name, client);
      return client;
    },
    snapshots: () => [...clients.values()].map((c) => c.snapshot()),
    control: (name, action) => clients.get(name)?.control(action),
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}
