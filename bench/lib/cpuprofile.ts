// The self time of each function in a V8 CPU profile (what `node --cpu-prof` writes): a tree of nodes, each
// with a callFrame (function, script, line, column) and a hitCount, plus `samples` (the node on top of the
// stack at each sample) and `timeDeltas` (microseconds since the previous sample). A function's self time is
// the time of the samples in which it was on top, summed over every call path (node) it appears in.
import path from 'node:path';
import { root } from './common.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  functionName: string;
  /** `script:line:column` (1-based), relative to the repository when it is in it; empty for V8's own. */
  location: string;
  selfMs: number;
  /** Share of the whole profile's time, idle included. */
  share: number;
}

export interface ProfileSummary {
  /** Samples counted: those in the window when it held any, else all. */
  samples: number;
  totalSamples: number;
  /** Whether only the window's samples were counted. */
  windowed: boolean;
  durationMs: number;
  idleMs: number;
  top: SelfTime[];
}

function locationOf({ url, lineNumber, columnNumber }: CallFrame): string {
  if (url === '') return '';
  let file = url.startsWith('file://') ? new URL(url).pathname : url;
  if (file.startsWith(`${root}${path.sep}`)) file = path.relative(root, file);
  return `${file}:${lineNumber + 1}:${columnNumber + 1}`;
}

/**
 * The `limit` functions with the most self time; with `window` (microseconds of CLOCK_MONOTONIC, the clock
 * of the profile's timestamps and of process.hrtime), only the samples taken in it, if it holds any.
 */
export function summarizeProfile(
  profile: CpuProfile,
  limit: number,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const frameOf = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<number, number>();
  const { samples = [], timeDeltas = [] } = profile;
  let counted = 0;
  let windowed = false;
  if (samples.length > 0 && samples.length === timeDeltas.length) {
    // timeDeltas[i] is the time before sample i: sample i lasts until sample i + 1 (the last one, to the end).
    let at = profile.startTime;
    const stamps = timeDeltas.map((d) => (at += d));
    const inWindow = (t: number) => window !== undefined && t >= window.fromUs && t <= window.toUs;
    windowed = stamps.some(inWindow);
    samples.forEach((id, i) => {
      if (windowed && !inWindow(stamps[i]!)) return;
      const until = i + 1 < stamps.length ? stamps[i + 1]! : profile.endTime;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, until - stamps[i]!));
      counted += 1;
    });
  } else {
    // No sample list: spread the profile's time over the hit counts.
    const hits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
    const perHit = hits > 0 ? (profile.endTime - profile.startTime) / hits : 0;
    for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * perHit);
  }
  const byFunction = new Map<string, { frame: CallFrame; us: number }>();
  for (const [id, us] of selfUs) {
    const frame = frameOf.get(id);
    if (frame === undefined) continue;
    const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}\u0000${frame.columnNumber}`;
    const entry = byFunction.get(key) ?? { frame, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const totalUs = [...byFunction.values()].reduce((sum, e) => sum + e.us, 0);
  const idleUs = [...byFunction.values()]
    .filter((e) => e.frame.functionName === '(idle)')
    .reduce((sum, e) => sum + e.us, 0);
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map(({ frame, us }) => ({
      functionName: frame.functionName === '' ? '(anonymous)' : frame.functionName,
      location: locationOf(frame),
      selfMs: us / 1_000,
      share: totalUs > 0 ? us / totalUs : 0,
    }));
  return {
    samples: counted,
    totalSamples: samples.length,
    windowed,
    durationMs: totalUs / 1_000,
    idleMs: idleUs / 1_000,
    top,
  };
}
