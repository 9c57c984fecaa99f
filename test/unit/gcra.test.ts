// GCRA arithmetic on a fake clock: burst, smooth refill, exact remaining and retry-after.
import { describe, expect, it } from 'vitest';
import { MemoryGcra, gcraParams, gcraStep } from '../../src/lib/gcra.js';

const SECOND = 1_000_000;

describe('GCRA', () => {
  it('when a bucket is empty, then exactly `burst` requests pass at once and the next waits one interval', () => {
    const { intervalUs, capacityUs } = gcraParams({ limit: 60, windowSeconds: 60, burst: 5 });
    expect(intervalUs).toBe(SECOND);
    let tat: number | undefined;
    const now = 1_000 * SECOND;
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const step = gcraStep(now, tat, intervalUs, capacityUs);
      expect(step.decision.allowed).toBe(true);
      remaining.push(step.decision.remaining);
      tat = step.newTat;
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    const denied = gcraStep(now, tat, intervalUs, capacityUs);
    expect(denied.decision).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000 });
    expect(denied.newTat).toBeUndefined(); // a denied request does not consume
  });

  it('refills one request per interval, smoothly', () => {
    const clock = { now: 0 };
    const gcra = new MemoryGcra(() => clock.now);
    const { intervalUs, capacityUs } = gcraParams({ limit: 10, windowSeconds: 1, burst: 2 });
    expect(gcra.take('k', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('k', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('k', intervalUs, capacityUs).allowed).toBe(false);
    clock.now += 99_000; // 99 ms: not yet
    expect(gcra.take('k', intervalUs, capacityUs)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    clock.now += 1_000; // 100 ms: one more
    expect(gcra.take('k', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('k', intervalUs, capacityUs).allowed).toBe(false);
    clock.now += 10 * SECOND; // long idle: full burst again, never more
    expect(gcra.take('k', intervalUs, capacityUs)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('sustains exactly `limit` per window under constant pressure', () => {
    const clock = { now: 0 };
    const gcra = new MemoryGcra(() => clock.now);
    const { intervalUs, capacityUs } = gcraParams({ limit: 100, windowSeconds: 10, burst: 1 });
    let allowed = 0;
    for (let t = 0; t < 10 * SECOND; t += 1_000) {
      clock.now = t;
      if (gcra.take('k', intervalUs, capacityUs).allowed) allowed++;
    }
    expect(allowed).toBe(100);
  });

  it('keeps keys apart and bounds memory by evicting the key written longest ago', () => {
    const gcra = new MemoryGcra(() => 0, 2);
    const { intervalUs, capacityUs } = gcraParams({ limit: 1, windowSeconds: 60, burst: 1 });
    expect(gcra.take('a', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('b', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('a', intervalUs, capacityUs).allowed).toBe(false);
    expect(gcra.take('b', intervalUs, capacityUs).allowed).toBe(false);
    // A third key evicts the key written longest ago (a); its bucket starts full again.
    expect(gcra.take('c', intervalUs, capacityUs).allowed).toBe(true);
    expect(gcra.take('a', intervalUs, capacityUs).allowed).toBe(true);
  });
});
