// Reads error events out of a JSON-lines log file written by this service's pino logger. Only the tail is
// read (a bounded number of bytes and lines), as a stream, so a large file never sits in memory whole.
// Lines that are not JSON objects are skipped and counted.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { ErrorEvent } from './events.js';

// The most recent 16 MiB: hours of errors at any sane error rate, read in well under a second.
export const LOG_TAIL_BYTES = 16 * 1024 * 1024;
// A bound on the work per read whatever the line length.
export const LOG_MAX_LINES = 200_000;

export interface LogFileStats {
  path: string;
  /** Lines read (after the skipped head, if any). */
  lines: number;
  malformed: number;
  /** True when older content was left unread (the byte or line cap was reached). */
  truncated: boolean;
}

export interface LogFileRead {
  events: ErrorEvent[];
  stats: LogFileStats;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

type Json = Record<string, unknown>;
/** An event being assembled from lines; hasError: a line of it carried the error itself. */
type Candidate = ErrorEvent & { hasError: boolean };

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;
const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;
const obj = (value: unknown): Json | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;

function levelOf(value: unknown): number {
  if (typeof value === 'number') return value;
  return typeof value === 'string' ? (LEVELS[value.toLowerCase()] ?? 0) : 0;
}

function timeOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  return undefined;
}

/** What one log line says about a failure, or undefined when it is not about one. */
function fromLine(line: Json): Candidate | undefined {
  const level = levelOf(line.level);
  const res = obj(line.res);
  const req = obj(line.req);
  const status = num(line.status) ?? num(res?.statusCode);
  if (level < LEVELS.error! && !(status !== undefined && status >= 500)) return undefined;
  const err = obj(line.err) ?? obj(line.error);
  const code = str(err?.code) ?? str(err?.type) ?? str(err?.name);
  return {
    time: timeOf(line.time) ?? 0,
    level: level >= LEVELS.fatal! ? 'fatal' : 'error',
    code: code ?? (status === undefined ? 'log_error' : `HTTP_${status}`),
    message: str(err?.message) ?? (err === undefined && status !== undefined ? '' : (str(line.msg) ?? '')),
    route: str(line.route),
    method: str(line.method) ?? str(req?.method),
    status,
    request_id: str(line.request_id) ?? str(line.reqId) ?? str(req?.id),
    trace_id: str(line.trace_id) ?? str(line.traceId),
    span_id: str(line.span_id) ?? str(line.spanId),
    hasError: err !== undefined || code !== undefined || level >= LEVELS.error!,
  };
}

/**
 * One request writes several lines (the error handler's "request failed" with the error, the access line
 * with route and status): they are merged by request id into one event.
 */
function merge(into: Candidate, line: Candidate): void {
  if (line.hasError && !into.hasError) {
    into.code = line.code;
    into.message = line.message;
    into.hasError = true;
  }
  if (line.level === 'fatal') into.level = 'fatal';
  into.time = Math.max(into.time, line.time);
  into.route ??= line.route;
  into.method ??= line.method;
  into.status ??= line.status;
  into.trace_id ??= line.trace_id;
  into.span_id ??= line.span_id;
}

export async function readLogFile(
  path: string,
  limits: { tailBytes?: number; maxLines?: number } = {},
): Promise<LogFileRead> {
  const tailBytes = limits.tailBytes ?? LOG_TAIL_BYTES;
  const maxLines = limits.maxLines ?? LOG_MAX_LINES;
  const { size } = await stat(path);
  const start = Math.max(0, size - tailBytes);
  const stats: LogFileStats = { path, lines: 0, malformed: 0, truncated: start > 0 };
  const byRequest = new Map<string, Candidate>();
  const standalone: Candidate[] = [];

  const stream = createReadStream(path, { start, encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  // Starting mid-file lands inside a line: the first one is a fragment, not a malformed line.
  let skipFragment = start > 0;
  try {
    for await (const text of lines) {
      if (skipFragment) {
        skipFragment = false;
        continue;
      }
      if (stats.lines >= maxLines) {
        stats.truncated = true;
        break;
      }
      stats.lines += 1;
      if (text.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        stats.malformed += 1;
        continue;
      }
      const line = obj(parsed);
      if (line === undefined) {
        stats.malformed += 1;
        continue;
      }
      const event = fromLine(line);
      if (event === undefined) continue;
      if (event.request_id === undefined) {
        standalone.push(event);
        continue;
      }
      const seen = byRequest.get(event.request_id);
      if (seen === undefined) byRequest.set(event.request_id, event);
      else merge(seen, event);
    }
  } finally {
    lines.close();
    stream.destroy();
  }
  const events = [...byRequest.values(), ...standalone].map(({ hasError: _, ...event }) => event);
  return { events, stats };
}
