// From a pino line, as the logger writes it (redacted, serialized), to the OpenTelemetry log record that is
// exported: severity, time, body, attributes, the error's exception attributes and the trace context.
import { Writable } from 'node:stream';
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { describe, expect, it } from 'vitest';
import { toLogRecord } from '../../src/observability/log-export.js';
import { createLogger } from '../../src/observability/logger.js';

/** A logger configured as the service's, with every written line captured. */
function capture() {
  const lines: string[] = [];
  const tapped: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ LOG_LEVEL: 'trace' }, 'svc', '1.2.3', sink, (line) => tapped.push(line));
  return { log, lines, tapped };
}

const TRACE = { trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' };

describe('toLogRecord', () => {
  it('maps every pino level to its OpenTelemetry severity, with the label as its text', () => {
    const { log, tapped } = capture();
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    expect(tapped.map((l) => [toLogRecord(l).severityNumber, toLogRecord(l).severityText])).toEqual([
      [SeverityNumber.TRACE, 'TRACE'],
      [SeverityNumber.DEBUG, 'DEBUG'],
      [SeverityNumber.INFO, 'INFO'],
      [SeverityNumber.WARN, 'WARN'],
      [SeverityNumber.ERROR, 'ERROR'],
      [SeverityNumber.FATAL, 'FATAL'],
    ]);
  });

  it("keeps the line's time, its message as the body and its other fields as attributes, without the resource's", () => {
    const record = toLogRecord(
      JSON.stringify({
        level: 'info',
        time: '2026-12-04T18:00:00.123Z',
        service: 'svc',
        version: '1.2.3',
        request_id: 'r1',
        status: 200,
        nested: { a: [1, 2] },
        msg: 'request completed',
      }),
    );
    expect(record.timestamp).toEqual(new Date('2026-12-04T18:00:00.123Z'));
    expect(record.body).toBe('request completed');
    expect(record.attributes).toEqual({ request_id: 'r1', status: 200, nested: { a: [1, 2] } });
  });

  it('gives an error its exception attributes (type, message, stack)', () => {
    const { log, tapped } = capture();
    log.error({ err: new TypeError('bad thing') }, 'failed');
    const record = toLogRecord(tapped[0]!);
    expect(record.attributes).toMatchObject({
      'exception.type': 'TypeError',
      'exception.message': 'bad thing',
    });
    expect(record.attributes!['exception.stacktrace']).toContain('TypeError: bad thing');
    expect(record.attributes).not.toHaveProperty('err');
  });

  it("sets the record's trace context from the line's ids, sampled unless trace_flags says 00", () => {
    const sampled = toLogRecord(JSON.stringify({ level: 'info', msg: 'x', ...TRACE, trace_flags: '01' }));
    expect(trace.getSpanContext(sampled.context!)).toMatchObject({
      traceId: TRACE.trace_id,
      spanId: TRACE.span_id,
      traceFlags: TraceFlags.SAMPLED,
    });
    const unsampled = toLogRecord(JSON.stringify({ level: 'info', msg: 'x', ...TRACE, trace_flags: '00' }));
    expect(trace.getSpanContext(unsampled.context!)?.traceFlags).toBe(TraceFlags.NONE);
    expect(sampled.attributes).toEqual({});
  });

  it('gives a line without valid ids no trace context (not the one active where it is exported)', () => {
    for (const ids of [
      {},
      { trace_id: 'nope', span_id: TRACE.span_id },
      { ...TRACE, trace_id: '0'.repeat(32) },
    ]) {
      const record = toLogRecord(JSON.stringify({ level: 'info', msg: 'x', ...ids }));
      expect(record.context).toBe(ROOT_CONTEXT);
    }
  });

  it('exports what is not a JSON object as a plain body, and numeric pino levels by their label', () => {
    expect(toLogRecord('not json\n')).toEqual({ body: 'not json' });
    expect(toLogRecord('[1,2]')).toEqual({ body: '[1,2]' });
    expect(toLogRecord(JSON.stringify({ level: 50, msg: 'm' })).severityText).toBe('ERROR');
    expect(toLogRecord(JSON.stringify({ level: 'loud', msg: 'm' })).severityNumber).toBeUndefined();
  });

  it('sees each line exactly as stdout does: the same text, redacted', () => {
    const { log, lines, tapped } = capture();
    log.info({ password: 'hunter2', req: { headers: { authorization: 'Bearer abc' } } }, 'login');
    log.child({ worker: '2' }).warn('from a child');
    expect(tapped).toEqual(lines);
    expect(tapped.join('')).not.toMatch(/hunter2|Bearer abc/);
    expect(toLogRecord(tapped[1]!).attributes).toEqual({ worker: '2' });
  });
});
