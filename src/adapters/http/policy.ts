// The resilience policy of one outbound dependency: its settings, which failures count and which are
// retried, the breaker that opens on consecutive failures or a failure ratio, and the retry backoff.
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  fullJitterGenerator,
  noJitterGenerator,
  SamplingBreaker,
  type CircuitState,
  type GeneratorFn,
  type IBackoff,
  type IBackoffFactory,
  type IBreaker,
  type IRetryBackoffContext,
} from 'cockatiel';
import type { Config } from '../../config/schema.js';

export type OutboundOutcome =
  'success' | 'error_status' | 'timeout' | 'connection_error' | 'breaker_open' | 'bulkhead_rejected';

export interface OutboundPolicy {
  /** Deadline of one attempt, body included. */
  timeoutMs: number;
  /** Retries after the first attempt, for idempotent requests only. */
  maxRetries: number;
  maxConcurrency: number;
  /** Calls allowed to wait for a concurrency slot; beyond that they are rejected at once. */
  maxQueue: number;
  consecutiveFailures: number;
  /** Share of failed calls over the window that opens the breaker; 1 or more disables this trigger. */
  failureRatio: number;
  failureRatioWindowMs: number;
  failureRatioMinCalls: number;
  /** How long an open breaker fails fast before one trial call goes through. */
  cooldownMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

// Window and minimum as documented for BREAKER_FAILURE_RATIO. The first retry waits up to 100 ms and no
// wait exceeds 2 s, so a call with the default two retries stays within a few seconds even when it fails.
const FAILURE_RATIO_WINDOW_MS = 30_000;
const FAILURE_RATIO_MIN_CALLS = 10;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 2_000;

/** The settings an outbound policy is made of. */
export type OutboundConfig = Pick<
  Config,
  | 'OUTBOUND_TIMEOUT_MS'
  | 'OUTBOUND_MAX_RETRIES'
  | 'OUTBOUND_MAX_CONCURRENCY'
  | 'BREAKER_CONSECUTIVE_FAILURES'
  | 'BREAKER_FAILURE_RATIO'
  | 'BREAKER_COOLDOWN_SECONDS'
>;

export function outboundPolicyFrom(config: OutboundConfig): OutboundPolicy {
  return {
    timeoutMs: config.OUTBOUND_TIMEOUT_MS,
    maxRetries: config.OUTBOUND_MAX_RETRIES,
    maxConcurrency: config.OUTBOUND_MAX_CONCURRENCY,
    // "up to as many more wait" (OUTBOUND_MAX_CONCURRENCY)
    maxQueue: config.OUTBOUND_MAX_CONCURRENCY,
    consecutiveFailures: config.BREAKER_CONSECUTIVE_FAILURES,
    failureRatio: config.BREAKER_FAILURE_RATIO,
    failureRatioWindowMs: FAILURE_RATIO_WINDOW_MS,
    failureRatioMinCalls: FAILURE_RATIO_MIN_CALLS,
    cooldownMs: config.BREAKER_COOLDOWN_SECONDS * 1000,
    backoffBaseMs: BACKOFF_BASE_MS,
    backoffMaxMs: BACKOFF_MAX_MS,
  };
}

/** Statuses that say "try again later" rather than "this request is wrong"; a 500 is neither safe nor useful to repeat. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** An answer that counts as the dependency failing: 5xx, and 429 (it is overloaded or limiting us). */
export const isFailureStatus = (status: number): boolean => status === 429 || status >= 500;

/**
 * Opens on either trigger: `consecutive` failed calls in a row, or more than `ratio` of the calls over the
 * window failed once the window holds `minCalls` calls. Both trackers see every call so either can trip.
 */
export class ConsecutiveOrRatioBreaker implements IBreaker {
  readonly consecutive: ConsecutiveBreaker;
  readonly sampling: SamplingBreaker | undefined;

  constructor(policy: OutboundPolicy) {
    this.consecutive = new ConsecutiveBreaker(policy.consecutiveFailures);
    // SamplingBreaker wants a ratio strictly inside (0, 1): 1 can never be exceeded (the trigger is off)
    // and 0 means "any failure", which the smallest positive ratio expresses.
    this.sampling =
      policy.failureRatio >= 1
        ? undefined
        : new SamplingBreaker({
            threshold: Math.max(policy.failureRatio, Number.EPSILON),
            duration: policy.failureRatioWindowMs,
            // It takes a minimum rate, not a count: calls over the window. Half a call of slack keeps float
            // rounding (and its rounding of the window to whole sub-windows) from asking for one call more.
            minimumRps: ((policy.failureRatioMinCalls - 0.5) * 1000) / policy.failureRatioWindowMs,
          });
  }

  /** Failed calls in a row so far. */
  get consecutiveFailures(): number {
    return this.consecutive.state;
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, sampling: this.sampling?.state };
  }

  set state(value: unknown) {
    const saved = value as { consecutive: number; sampling: unknown };
    this.consecutive.state = saved.consecutive;
    if (this.sampling !== undefined) this.sampling.state = saved.sampling;
  }

  success(state: CircuitState): void {
    this.consecutive.success();
    this.sampling?.success(state);
  }

  failure(state: CircuitState): boolean {
    const inARow = this.consecutive.failure();
    const byRatio = this.sampling?.failure(state) ?? false;
    return inARow || byRatio;
  }
}

/** A failure that carries the dependency's own "retry after" hint, in seconds. */
export interface RetryHint {
  retryAfterSeconds?: number;
}

/**
 * Exponential backoff with full jitter (a random wait below base * 2^attempt, capped), except after an
 * answer with Retry-After: then exactly that wait, capped too, since retrying sooner would only be refused.
 */
export function retryBackoff(
  policy: Pick<OutboundPolicy, 'backoffBaseMs' | 'backoffMaxMs'>,
  random?: () => number,
): IBackoffFactory<IRetryBackoffContext<unknown>> {
  const generator: GeneratorFn<number> =
    random === undefined
      ? fullJitterGenerator
      : (state, options) => {
          const [ceiling, next] = noJitterGenerator(state, options);
          return [Math.floor(random() * ceiling), next];
        };
  const exponential = new ExponentialBackoff({
    generator,
    initialDelay: policy.backoffBaseMs,
    maxDelay: policy.backoffMaxMs,
    exponent: 2,
  });
  const step = (
    source: IBackoffFactory<unknown>,
    context: IRetryBackoffContext<unknown>,
  ): IBackoff<IRetryBackoffContext<unknown>> => {
    const jittered = source.next(context);
    const hint =
      'error' in context.result ? (context.result.error as RetryHint).retryAfterSeconds : undefined;
    return {
      duration: hint === undefined ? jittered.duration : Math.min(hint * 1000, policy.backoffMaxMs),
      next: (nextContext) => step(jittered, nextContext),
    };
  };
  return { next: (context) => step(exponential, context) };
}

/** Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}
