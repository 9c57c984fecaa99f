// A clock a test moves by hand: time-based behaviour (cache expiry, token lifetimes) without sleeping.
import type { Clock } from '../../src/lib/clock.js';

export interface ManualClock extends Clock {
  /** Moves time forward by `ms`. */
  advance(ms: number): void;
}

export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
  };
}
