// One outbound dependency: its transport behind cockatiel policies (bulkhead, breaker, retry, per-attempt
// timeout), the breaker's state as operators see it (snapshot, metrics, logs) and its admin controls.
import {
  bulkhead,
  circuitBreaker,
  CircuitState,
  handleWhen,
  isBrokenCircuitError,
  isBulkheadRejectedError,
  retry,
  timeout,
  TimeoutStrategy,
  wrap,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IPolicy,
} from 'cockatiel';
import type { Log } from '../../lib/log.js';
import type { BreakerState, OutboundMetrics } from './metrics.js';
import {
  ConsecutiveOrRatioBreaker,
  RETRYABLE_STATUSES,
  retryBackoff,
  type OutboundOutcome,
  type OutboundPolicy,
} from './policy.js';
import {
  OutboundError,
  Transport,
  type OutboundClient,
  type OutboundRequest,
  type OutboundResponse,
} from './transport.js';

export interface BreakerSnapshot {
  name: string;
  state: BreakerState;
  /** Origin of the dependency (no path, no credentials). */
  origin: string;
  calls: number;
  successes: number;
  failures: number;
  /** Calls refused without reaching the dependency: breaker open or bulkhead full. */
  rejections: number;
  consecutive_failures: number;
  in_flight: number;
  queued: number;
  opened_at: string | null;
  /** When an open breaker lets its next trial call through. */
  half_open_at: string | null;
  last_failure: { at: string; outcome: OutboundOutcome; status?: number } | null;
}

const FAILURES: ReadonlySet<OutboundOutcome> = new Set(['error_status', 'timeout', 'connection_error']);
const isDependencyFailure = (error: unknown) => error instanceof OutboundError && FAILURES.has(error.outcome);
const isRetryable = (error: unknown) =>
  isDependencyFailure(error) &&
  ((error as OutboundError).outcome !== 'error_status' ||
    RETRYABLE_STATUSES.has((error as OutboundError).status ?? 0));

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};

type Attempt = { signal: AbortSignal; attempt?: number };
type Chain = Pick<IPolicy<Attempt>, 'execute'>;

export interface DependencyOptions {
  log?: Log;
  metrics?: OutboundMetrics;
  /** Jitter source in [0, 1) for the retry backoff; cockatiel's full jitter when absent. */
  random?: () => number;
}

export class DependencyClient implements OutboundClient {
  readonly #transport: Transport;
  readonly #bulkhead: BulkheadPolicy;
  readonly #retry;
  readonly #timeout;
  #breaker!: CircuitBreakerPolicy;
  #trackers!: ConsecutiveOrRatioBreaker;
  #retrying!: Chain;
  #once!: Chain;
  #state: BreakerState = 'closed';
  #openedAt: number | undefined;
  #counts = { calls: 0, successes: 0, failures: 0, rejections: 0 };
  #lastFailure: BreakerSnapshot['last_failure'] = null;

  constructor(
    readonly name: string,
    baseUrl: string,
    readonly policy: OutboundPolicy,
    private readonly options: DependencyOptions = {},
  ) {
    this.#transport = new Transport(name, new URL(baseUrl), policy.timeoutMs, policy.maxConcurrency);
    this.#bulkhead = bulkhead(policy.maxConcurrency, policy.maxQueue);
    this.#retry = retry(handleWhen(isRetryable), {
      maxAttempts: policy.maxRetries,
      backoff: retryBackoff(policy, options.random),
    });
    // Cooperative: the deadline aborts the request's signal, so undici tears the socket down instead of
    // leaving a call running unobserved after we stopped waiting for it.
    this.#timeout = timeout(policy.timeoutMs, TimeoutStrategy.Cooperative);
    this.#installBreaker();
    options.metrics?.breakerState(name, 'closed');
  }

  /** The normalized base URL this client was made for. */
  get baseUrl(): string {
    return this.#transport.base.toString();
  }

  // Outermost to innermost, and why:
  // - bulkhead: bounds everything this dependency holds (in flight and waiting, retries and backoff
  //   included), and sheds excess before any other work;
  // - breaker: outside the retries, so an open breaker answers at once without a single attempt, and a
  //   call that exhausted its retries counts as one failure, not as 1 + retries;
  // - retry: repeats only the attempt below it;
  // - timeout: innermost, so the deadline bounds each attempt and a retry gets a fresh one.
  #installBreaker(): void {
    const trackers = new ConsecutiveOrRatioBreaker(this.policy);
    const breaker = circuitBreaker(handleWhen(isDependencyFailure), {
      halfOpenAfter: this.policy.cooldownMs,
      breaker: trackers,
    });
    this.#breaker = breaker;
    this.#trackers = trackers;
    // A replaced breaker may still finish a trial call; its transitions no longer describe this client.
    breaker.onStateChange((state) => {
      if (this.#breaker === breaker) this.#transition(STATE_NAMES[state]);
    });
    this.#retrying = wrap(this.#bulkhead, breaker, this.#retry, this.#timeout);
    this.#once = wrap(this.#bulkhead, breaker, this.#timeout);
  }

  #transition(to: BreakerState): void {
    if (to === this.#state) return;
    const from = this.#state;
    this.#state = to;
    if (to === 'open' || to === 'isolated') this.#openedAt = Date.now();
    if (to === 'closed') this.#openedAt = undefined;
    this.options.metrics?.transition(this.name, to);
    const fields = { breaker: this.name, from, to, consecutive_failures: this.#trackers.consecutiveFailures };
    if (to === 'open' || to === 'isolated') this.options.log?.warn(fields, 'circuit breaker opened');
    else
      this.options.log?.info(
        fields,
        to === 'closed' ? 'circuit breaker closed' : 'circuit breaker half-open',
      );
  }

  async request(req: OutboundRequest): Promise<OutboundResponse> {
    const started = performance.now();
    this.#counts.calls++;
    const idempotent = req.idempotent ?? (req.method ?? 'GET') !== 'POST';
    try {
      const response = await (idempotent ? this.#retrying : this.#once).execute(
        (attempt) => this.#attempt(req, attempt.signal, attempt.attempt ?? 0),
        req.signal,
      );
      this.#counts.successes++;
      this.options.metrics?.request(this.name, 'success', (performance.now() - started) / 1000);
      return response;
    } catch (error) {
      // The caller gave up: that says nothing about the dependency, so it is neither counted nor wrapped.
      if (req.signal?.aborted === true) throw req.signal.reason;
      const failure = this.#asOutboundError(error);
      if (failure === undefined) throw error;
      if (FAILURES.has(failure.outcome)) {
        this.#counts.failures++;
        this.#lastFailure = {
          at: new Date().toISOString(),
          outcome: failure.outcome,
          status: failure.status,
        };
      } else this.#counts.rejections++;
      this.options.metrics?.request(this.name, failure.outcome, (performance.now() - started) / 1000);
      throw failure;
    }
  }

  #asOutboundError(error: unknown): OutboundError | undefined {
    if (error instanceof OutboundError) return error;
    if (isBrokenCircuitError(error)) return this.#breakerOpen();
    if (isBulkheadRejectedError(error))
      return new OutboundError(this.name, 'bulkhead_rejected', `${this.name}: too many calls in flight`);
    return undefined;
  }

  #breakerOpen(): OutboundError {
    const until = this.#state === 'open' ? this.#halfOpenAt() : undefined;
    return new OutboundError(this.name, 'breaker_open', `${this.name}: circuit breaker is ${this.#state}`, {
      retryAfterSeconds: until === undefined ? undefined : Math.max(0, (until - Date.now()) / 1000),
    });
  }

  #halfOpenAt(): number | undefined {
    return this.#openedAt === undefined ? undefined : this.#openedAt + this.policy.cooldownMs;
  }

  async #attempt(req: OutboundRequest, signal: AbortSignal, attempt: number): Promise<OutboundResponse> {
    // Another call opened the breaker while this one waited to retry: stop here rather than add load.
    const now = this.#breaker.state;
    if (attempt > 0 && (now === CircuitState.Open || now === CircuitState.Isolated))
      throw this.#breakerOpen();
    return this.#transport.send(req, signal, attempt);
  }

  snapshot(): BreakerSnapshot {
    const halfOpenAt = this.#state === 'open' ? this.#halfOpenAt() : undefined;
    return {
      name: this.name,
      state: this.#state,
      origin: this.#transport.base.origin,
      ...this.#counts,
      consecutive_failures: this.#trackers.consecutiveFailures,
      in_flight: this.policy.maxConcurrency - this.#bulkhead.executionSlots,
      queued: this.policy.maxQueue - this.#bulkhead.queueSlots,
      opened_at: this.#openedAt === undefined ? null : new Date(this.#openedAt).toISOString(),
      half_open_at: halfOpenAt === undefined ? null : new Date(halfOpenAt).toISOString(),
      last_failure: this.#lastFailure,
    };
  }

  /** open: hold the breaker open; close: a fresh closed breaker; reset: that, and the counts zeroed. */
  control(action: 'open' | 'close' | 'reset'): BreakerSnapshot {
    if (action === 'open') {
      // cockatiel counts isolations; one held by the admin API is enough.
      if (this.#state !== 'isolated') this.#breaker.isolate();
      return this.snapshot();
    }
    // cockatiel cannot close a breaker that opened on its own, so both replace it: the isolation handle
    // and any trial call in flight go with the old one.
    if (action === 'reset' || this.#state !== 'closed') {
      this.#installBreaker();
      this.#transition('closed');
    }
    if (action === 'reset') {
      this.#counts = { calls: 0, successes: 0, failures: 0, rejections: 0 };
      this.#lastFailure = null;
    }
    return this.snapshot();
  }

  close(): Promise<void> {
    return this.#transport.close();
  }
}
