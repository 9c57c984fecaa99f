// Fingerprints and grouping: the same failure with different variable parts groups together, different
// failures do not, and groups carry counts, times and samples.
import { describe, expect, it } from 'vitest';
import type { ErrorEvent } from '../../src/modules/triage/events.js';
import { ErrorRing } from '../../src/modules/triage/events.js';
import { fingerprint, fingerprintParts, normalizeMessage } from '../../src/modules/triage/fingerprint.js';
import { groupEvents } from '../../src/modules/triage/group.js';

const event = (over: Partial<ErrorEvent>): ErrorEvent => ({
  time: Date.parse('2024-05-01T12:00:00Z'),
  level: 'error',
  code: 'Error',
  message: 'boom',
  route: '/v1/things/:id',
  method: 'GET',
  status: 500,
  ...over,
});

describe('normalizeMessage', () => {
  it.each([
    ['order 12345 failed after 3.5 s', 'order <num> failed after <num> s'],
    ['no row for 3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'no row for <uuid>'],
    ['object 5f1d7c2ab3e4 missing', 'object <hex> missing'],
    ['user bob@example.com locked', 'user [EMAIL] locked'],
    ['connect ECONNREFUSED 10.1.2.3:5432', 'connect ECONNREFUSED [IP]:<num>'],
    ['duplicate key "bob" in \'users\'', 'duplicate key <str> in <str>'],
    ['token=abc123 rejected', 'token=[REDACTED] rejected'],
    ['  many   spaces\nand lines ', 'many spaces and lines'],
  ])('when the message is %j, then it normalizes to %j', (message, expected) => {
    expect(normalizeMessage(message)).toBe(expected);
  });

  it('when a message is very long, then the pattern is bounded', () => {
    expect(normalizeMessage('x'.repeat(5_000)).length).toBeLessThanOrEqual(203);
  });
});

describe('fingerprint', () => {
  it('when only ids, numbers, emails, IPs or quoted values differ, then the fingerprint is the same', () => {
    const a = fingerprint(
      fingerprintParts(
        event({ message: 'charge 17 for "ann" (ann@x.io) from 10.0.0.1 failed: 5f1d7c2ab3e4' }),
      ),
    );
    const b = fingerprint(
      fingerprintParts(
        event({ message: 'charge 9001 for "bob" (bob@y.org) from 172.16.0.9 failed: 00aa11bb22cc' }),
      ),
    );
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{12}$/);
  });

  it('when the code, the wording or the route differ, then the fingerprints differ', () => {
    const base = fingerprint(fingerprintParts(event({})));
    expect(fingerprint(fingerprintParts(event({ code: 'TypeError' })))).not.toBe(base);
    expect(fingerprint(fingerprintParts(event({ message: 'bang' })))).not.toBe(base);
    expect(fingerprint(fingerprintParts(event({ route: '/v1/other' })))).not.toBe(base);
  });
});

describe('groupEvents', () => {
  it('when events repeat, then groups count them, span first to last seen and keep recent samples', () => {
    const t0 = Date.parse('2024-05-01T12:00:00Z');
    const events = [
      ...Array.from({ length: 7 }, (_, i) =>
        event({ time: t0 + i * 1_000, message: `order ${i} failed`, request_id: `r${i}`, trace_id: `t${i}` }),
      ),
      event({ time: t0 + 500, code: 'APP_OVERLOADED', message: 'overloaded', status: 503, request_id: 'x' }),
      event({ time: t0 + 100, code: 'APP_OVERLOADED', message: 'overloaded', status: 503, method: 'POST' }),
    ];
    const [first, second, ...rest] = groupEvents(events);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({
      code: 'Error',
      pattern: 'order <num> failed',
      route: '/v1/things/:id',
      count: 7,
      first_seen: '2024-05-01T12:00:00.000Z',
      last_seen: '2024-05-01T12:00:06.000Z',
      statuses: [500],
      sample_message: 'order 6 failed',
      request_ids: ['r6', 'r5', 'r4', 'r3', 'r2'],
      trace_ids: ['t6', 't5', 't4', 't3', 't2'],
    });
    expect(second).toMatchObject({ code: 'APP_OVERLOADED', count: 2, statuses: [503], request_ids: ['x'] });
    expect(second!.methods.sort()).toEqual(['GET', 'POST']);
  });

  it('when two groups have the same count, then the more recent comes first', () => {
    const groups = groupEvents([
      event({ time: 1_000, message: 'old failure' }),
      event({ time: 9_000, message: 'new failure' }),
    ]);
    expect(groups.map((g) => g.pattern)).toEqual(['new failure', 'old failure']);
  });

  it('when a sample message holds a secret, then the group shows it redacted', () => {
    const [group] = groupEvents([event({ message: 'login failed password=hunter2 for bob@example.com' })]);
    expect(group!.sample_message).toBe('login failed password=[REDACTED] for [EMAIL]');
  });
});

describe('ErrorRing', () => {
  it('when more events arrive than it holds, then the oldest are dropped and order is kept', () => {
    const ring = new ErrorRing(3);
    for (let i = 1; i <= 5; i++) ring.record(event({ time: i }));
    expect(ring.size).toBe(3);
    expect(ring.snapshot().map((e) => e.time)).toEqual([3, 4, 5]);
  });

  it('when a message is huge, then only a bounded prefix is kept', () => {
    const ring = new ErrorRing(1);
    ring.record(event({ message: 'y'.repeat(50_000) }));
    expect(ring.snapshot()[0]!.message.length).toBe(1_000);
  });
});
