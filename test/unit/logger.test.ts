// The logger's hot-path pieces: the cached ISO time, stdout's deferred access lines and the request
// loggers made on first use. Each is checked against what it replaces (Date#toISOString, a write per line,
// a pino child per request).
import fs, { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  StdoutLines,
  createLogger,
  deferWrites,
  isoTimeAt,
  lazyRequestLogger,
} from '../../src/observability/logger.js';

describe('isoTimeAt', () => {
  it("formats every millisecond of a second, and the seconds around it, as pino's isoTime does", () => {
    const start = Date.UTC(2026, 11, 5, 23, 59, 58, 0);
    for (let t = start; t < start + 3_000; t += 1) {
      expect(isoTimeAt(t)).toBe(`,"time":"${new Date(t).toISOString()}"`);
    }
  });

  it('is right when the clock steps back to an earlier second', () => {
    const later = Date.UTC(2026, 0, 1, 0, 0, 1, 5);
    const earlier = Date.UTC(2025, 11, 31, 23, 59, 59, 999);
    expect(isoTimeAt(later)).toBe(',"time":"2026-01-01T00:00:01.005Z"');
    expect(isoTimeAt(earlier)).toBe(',"time":"2025-12-31T23:59:59.999Z"');
    expect(isoTimeAt(later)).toBe(',"time":"2026-01-01T00:00:01.005Z"');
  });
});

describe('StdoutLines', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A StdoutLines on a fresh file, with the periodic flush far beyond the test unless asked. */
  function onFile(flushMs = 600_000) {
    const dir = mkdtempSync(path.join(tmpdir(), 'stdout-lines-'));
    dirs.push(dir);
    const file = path.join(dir, 'out.log');
    const fd = openSync(file, 'a');
    const lines = new StdoutLines(fd, flushMs);
    const read = () => readFileSync(file, 'utf8');
    const close = () => {
      lines.flushSync();
      lines.end();
    };
    return { lines, read, close };
  }

  const written = async (read: () => string, expected: string) =>
    vi.waitFor(() => expect(read()).toBe(expected), { timeout: 5_000, interval: 10 });

  it('writes an ordinary line before the call that logs it returns, after the deferred lines before it', () => {
    const { lines, read, close } = onFile();
    lines.deferred.write('a1\n');
    lines.deferred.write('a2\n');
    expect(read()).toBe('');
    lines.write('ready\n');
    expect(read()).toBe('a1\na2\nready\n');
    lines.write('next\n');
    expect(read()).toBe('a1\na2\nready\nnext\n');
    close();
  });

  it('writes deferred lines once 3 KiB are waiting, in writes of whole lines of at most 4 KiB', () => {
    const { lines, read, close } = onFile();
    const writes = vi.spyOn(fs, 'writeSync');
    const line = `${'x'.repeat(99)}\n`;
    for (let i = 0; i < 100; i += 1) lines.deferred.write(line);
    // 10,000 bytes logged: written in whole-line writes until less than 3 KiB is left.
    const sizes = writes.mock.calls.map(([, data]) => Buffer.byteLength(data));
    writes.mockRestore();
    expect(read().length).toBeGreaterThan(10_000 - 3_072);
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.every((size) => size <= 4_096 && size % line.length === 0)).toBe(true);
    close();
    expect(read()).toBe(line.repeat(100));
  });

  it('writes deferred lines within its flush interval when nothing else is logged', async () => {
    const { lines, read, close } = onFile(100);
    lines.deferred.write('quiet\n');
    await written(read, 'quiet\n');
    close();
  });

  it('writes everything buffered on flushSync (the exit path)', () => {
    const { lines, read, close } = onFile();
    lines.deferred.write('last\n');
    lines.flushSync();
    expect(read()).toBe('last\n');
    close();
  });
});

describe('deferWrites', () => {
  it('leaves a logger that writes anywhere but StdoutLines as it was', () => {
    const seen: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        seen.push(chunk.toString());
        done();
      },
    });
    const log = createLogger({ LOG_LEVEL: 'info' }, 'svc', '1.0.0', sink);
    const access = log.child({});
    deferWrites(access);
    access.info('through the sink');
    expect(seen.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['through the sink']);
  });
});

describe('lazyRequestLogger', () => {
  function parent() {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    // Synchronous: the stream's write runs inside the log call.
    const log = createLogger({ LOG_LEVEL: 'info' }, 'svc', '1.0.0', sink);
    const child = vi.spyOn(log, 'child');
    return { log, lines, child };
  }

  it('makes no pino child for a request that never logs', () => {
    const { log, child } = parent();
    const requestLog = lazyRequestLogger.call(undefined as never, log, { request_id: 'r1' }, {}, {} as never);
    expect(requestLog.level).toBe('info');
    expect(child).not.toHaveBeenCalled();
  });

  it("makes the child Fastify would have made on first use: the request's bindings, redaction, its level", () => {
    const { log, lines, child } = parent();
    const requestLog = lazyRequestLogger.call(
      undefined as never,
      log,
      { request_id: 'r1' },
      { level: 'warn' },
      {} as never,
    );
    expect(requestLog.level).toBe('warn');
    requestLog.info('below the level');
    requestLog.warn({ password: 'hunter2' }, 'with a secret');
    requestLog.error('again');
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines).toMatchObject([
      { level: 'warn', request_id: 'r1', password: '[REDACTED]', msg: 'with a secret', service: 'svc' },
      { level: 'error', request_id: 'r1', msg: 'again' },
    ]);
    const nested = requestLog.child({ step: 'nested' });
    nested.warn('deeper');
    expect(lines.at(-1)).toMatchObject({ request_id: 'r1', step: 'nested', msg: 'deeper' });
  });

  it('is a logger Fastify accepts: every method it checks for', () => {
    const { log } = parent();
    const requestLog = lazyRequestLogger.call(undefined as never, log, {}, {}, {} as never);
    for (const method of ['info', 'error', 'debug', 'fatal', 'warn', 'trace', 'child', 'silent'] as const)
      expect(typeof requestLog[method]).toBe('function');
    expect(pino.levels.values[requestLog.level]).toBe(30);
  });
});
