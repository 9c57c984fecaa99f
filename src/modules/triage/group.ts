// Groups error events by fingerprint: count, first and last seen, a few sample request and trace ids, a
// redacted sample message and the statuses seen. Sorted by count, then by recency.
import type { ErrorEvent } from './events.js';
import { fingerprint, fingerprintParts } from './fingerprint.js';
import { redact } from './redact.js';

// Enough ids to find a few requests in the logs or the tracing backend; more only bloat the answer.
const MAX_SAMPLES = 5;

export interface ErrorGroup {
  fingerprint: string;
  code: string;
  /** The normalized message: ids, numbers, addresses and quoted values replaced by placeholders. */
  pattern: string;
  route: string;
  count: number;
  first_seen: string;
  last_seen: string;
  levels: ('error' | 'fatal')[];
  statuses: number[];
  methods: string[];
  sample_message: string;
  request_ids: string[];
  trace_ids: string[];
}

interface Building {
  group: ErrorGroup;
  first: number;
  last: number;
}

function addSample(list: string[], value: string | undefined): void {
  if (value !== undefined && list.length < MAX_SAMPLES && !list.includes(value)) list.push(value);
}

function addDistinct<T>(list: T[], value: T | undefined): void {
  if (value !== undefined && !list.includes(value)) list.push(value);
}

/**
 * Groups `events` (any order by time; within one millisecond, in the order they happened, as the ring and
 * a log file hold them), newest samples first, most frequent group first.
 */
export function groupEvents(events: readonly ErrorEvent[]): ErrorGroup[] {
  const byFingerprint = new Map<string, Building>();
  // Newest first, so the sample ids and the sample message are the most recent ones. Reversed before the
  // (stable) sort: of two events in the same millisecond, the later one comes first.
  const newestFirst = [...events].reverse().sort((a, b) => b.time - a.time);
  for (const event of newestFirst) {
    const parts = fingerprintParts(event);
    const key = fingerprint(parts);
    let building = byFingerprint.get(key);
    if (building === undefined) {
      building = {
        group: {
          fingerprint: key,
          ...parts,
          count: 0,
          first_seen: '',
          last_seen: '',
          levels: [],
          statuses: [],
          methods: [],
          sample_message: redact(event.message),
          request_ids: [],
          trace_ids: [],
        },
        first: event.time,
        last: event.time,
      };
      byFingerprint.set(key, building);
    }
    const { group } = building;
    group.count += 1;
    building.first = Math.min(building.first, event.time);
    building.last = Math.max(building.last, event.time);
    addDistinct(group.levels, event.level);
    addDistinct(group.statuses, event.status);
    addDistinct(group.methods, event.method);
    addSample(group.request_ids, event.request_id);
    addSample(group.trace_ids, event.trace_id);
  }
  const groups = [...byFingerprint.values()].map(({ group, first, last }) => ({
    ...group,
    first_seen: new Date(first).toISOString(),
    last_seen: new Date(last).toISOString(),
    statuses: group.statuses.sort((a, b) => a - b),
  }));
  return groups.sort((a, b) => b.count - a.count || b.last_seen.localeCompare(a.last_seen));
}
