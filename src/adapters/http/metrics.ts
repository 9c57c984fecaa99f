// Prometheus series of outbound calls and their circuit breakers: circuit_breaker_state{name},
// circuit_breaker_transitions_total{name,to}, outbound_requests_total{dependency,outcome} and its duration.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutboundOutcome } from './policy.js';

export type BreakerState = 'closed' | 'open' | 'half_open' | 'isolated';

// An isolated breaker is open by hand: it fails fast like an open one, so alerts and panels see it as open.
const GAUGE_VALUE: Record<BreakerState, number> = { closed: 0, open: 1, isolated: 1, half_open: 2 };

// From 5 ms (a keep-alive round trip on the same network) to 10 s (past any outbound deadline we allow
// by default), dense where a healthy dependency answers.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface OutboundMetrics {
  breakerState(name: string, state: BreakerState): void;
  transition(name: string, to: BreakerState): void;
  request(dependency: string, outcome: OutboundOutcome, seconds: number): void;
}

export function outboundMetrics(registry: Registry): OutboundMetrics {
  const state = new Gauge({
    name: 'circuit_breaker_state',
    help: 'State of each circuit breaker: 0 closed, 1 open (or held open by an operator), 2 half-open.',
    labelNames: ['name'],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'circuit_breaker_transitions_total',
    help: 'Circuit breaker state changes, by breaker and the state entered.',
    labelNames: ['name', 'to'],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'outbound_requests_total',
    help: 'Outbound calls (retries included in one call), by dependency and final outcome.',
    labelNames: ['dependency', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'outbound_request_duration_seconds',
    help: 'Time of an outbound call from the caller to its final outcome, queueing and retries included.',
    labelNames: ['dependency', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  return {
    breakerState: (name, to) => state.set({ name }, GAUGE_VALUE[to]),
    transition(name, to) {
      state.set({ name }, GAUGE_VALUE[to]);
      transitions.inc({ name, to });
    },
    request(dependency, outcome, seconds) {
      requests.inc({ dependency, outcome });
      duration.observe({ dependency, outcome }, seconds);
    },
  };
}
