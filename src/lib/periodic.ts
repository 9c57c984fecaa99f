// Background jobs that repeat while the process runs (pruning, sweeping, catching up). Each run starts a
// jittered interval after the previous one ended, so replicas started together spread their load and a slow
// run never overlaps the next; the timer never keeps the process alive, and stop() waits for a run in flight.
import { randomInt } from 'node:crypto';

export interface PeriodicJob {
  /** Stops scheduling; resolves once a run in flight has finished. */
  stop(): Promise<void>;
}

export interface PeriodicOptions {
  /** Fraction of the interval added or taken at random to each wait, 0 to 1; 0.1 by default. */
  jitter?: number;
  /** Told about a run that threw; the job keeps its schedule. */
  onError?: (error: unknown) => void;
  /** Random source in [0, 1) for the jitter; tests pass a fixed one. */
  random?: () => number;
}

export function every(
  intervalMs: number,
  run: () => Promise<unknown>,
  options: PeriodicOptions = {},
): PeriodicJob {
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.1));
  const random = options.random ?? defaultRandom;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    const wait = intervalMs * (1 + jitter * (2 * random() - 1));
    timer = setTimeout(tick, Math.max(0, wait));
    timer.unref();
  };
  const tick = () => {
    running = run()
      .then(
        () => undefined,
        (error: unknown) => options.onError?.(error),
      )
      .finally(() => {
        running = undefined;
        schedule();
      });
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

// Jitter only spreads load, so any uniform value will do; Math.random is refused by lint, hence node:crypto.
const defaultRandom = (): number => randomInt(0, 1_000_000) / 1_000_000;
