// lib/periodic: jittered, never overlapping runs that stop cleanly. Fake timers stand in for the
// interval so the schedule is checked exactly instead of slept through.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { every } from '../../src/lib/periodic.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('every()', () => {
  it('when no jitter is drawn, then the job runs once per interval, first after one interval', async () => {
    const run = vi.fn(async () => undefined);
    const job = every(1_000, run, { random: () => 0.5 });
    await vi.advanceTimersByTimeAsync(999);
    expect(run).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(run).toHaveBeenCalledTimes(4);
    await job.stop();
  });

  it('when the random source is at its ends, then each wait is the interval plus or minus the jitter', async () => {
    const low = vi.fn(async () => undefined);
    const high = vi.fn(async () => undefined);
    const a = every(1_000, low, { jitter: 0.2, random: () => 0 });
    const b = every(1_000, high, { jitter: 0.2, random: () => 0.999_999 });
    await vi.advanceTimersByTimeAsync(800);
    expect([low.mock.calls.length, high.mock.calls.length]).toEqual([1, 0]);
    await vi.advanceTimersByTimeAsync(400);
    expect([low.mock.calls.length, high.mock.calls.length]).toEqual([1, 1]);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('when a run is slower than the interval, then the next starts an interval after it ended, never alongside', async () => {
    let running = 0;
    let most = 0;
    const run = async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      running--;
    };
    const job = every(1_000, run, { jitter: 0 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(most).toBe(1);
    const stopped = job.stop();
    await vi.advanceTimersByTimeAsync(2_500);
    await stopped;
  });

  it('when a run throws, then onError hears of it and the schedule goes on', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const job = every(
      100,
      async () => {
        calls++;
        throw new Error(`run ${calls}`);
      },
      { jitter: 0, onError: (error) => errors.push(error) },
    );
    await vi.advanceTimersByTimeAsync(350);
    expect(calls).toBe(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(['run 1', 'run 2', 'run 3']);
    await job.stop();
  });

  it('when stopped during a run, then stop waits for that run and nothing runs after', async () => {
    let finished = false;
    let calls = 0;
    const job = every(
      100,
      async () => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        finished = true;
      },
      { jitter: 0 },
    );
    await vi.advanceTimersByTimeAsync(110);
    expect(calls).toBe(1);
    const stopped = job.stop();
    await vi.advanceTimersByTimeAsync(50);
    await stopped;
    expect(finished).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(1);
  });
});
