// Wall-clock time as a dependency: production reads the system clock; a test passes a clock it moves
// forward, so time-based behaviour (cache expiry, token lifetimes) is tested without sleeping.

export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
