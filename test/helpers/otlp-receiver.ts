// A stand-in OpenTelemetry collector: a real HTTP server on loopback that accepts OTLP/HTTP JSON exports of
// traces (POST /v1/traces) and logs (POST /v1/logs), as the app's exporters send them, and keeps every span
// and log record it receives.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: { code?: number; message?: string };
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  resource: Record<string, AttributeValue>;
}

export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

export interface ReceivedLog {
  /** Nanoseconds since the epoch, as a decimal string. */
  timeUnixNano: string;
  severityNumber: number | undefined;
  severityText: string | undefined;
  body: AttributeValue;
  attributes: Record<string, AttributeValue>;
  /** Empty when the record has no trace context. */
  traceId: string;
  spanId: string;
  flags: number | undefined;
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiver {
  /** Base URL to give the app as OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** The spans exported under one `service.name`: give each app its own to tell their spans apart. */
  spansOf(service: string): ReceivedSpan[];
  logs: ReceivedLog[];
  /** Export requests received, accepted or not. */
  requests: number;
  close(): Promise<void>;
}

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
  events?: { name: string; attributes?: OtlpKeyValue[] }[];
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

function decodeValue(value: OtlpAnyValue | undefined): AttributeValue {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(decodeValue);
  // A map value (log attributes may nest), kept as its JSON text.
  if (value.kvlistValue !== undefined) return JSON.stringify(decodeAttributes(value.kvlistValue.values));
  return null;
}

function decodeAttributes(list: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, decodeValue(kv.value)]));
}

export function decodeExport(body: OtlpExport): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((rs) => {
    const resource = decodeAttributes(rs.resource?.attributes);
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((span) => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId || undefined,
        name: span.name,
        kind: span.kind,
        attributes: decodeAttributes(span.attributes),
        status: span.status ?? {},
        events: (span.events ?? []).map((e) => ({
          name: e.name,
          attributes: decodeAttributes(e.attributes),
        })),
        resource,
      })),
    );
  });
}

interface OtlpLogsExport {
  resourceLogs?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeLogs?: {
      logRecords?: {
        timeUnixNano?: string | number;
        severityNumber?: number;
        severityText?: string;
        body?: OtlpAnyValue;
        attributes?: OtlpKeyValue[];
        traceId?: string;
        spanId?: string;
        flags?: number;
      }[];
    }[];
  }[];
}

export function decodeLogsExport(body: OtlpLogsExport): ReceivedLog[] {
  return (body.resourceLogs ?? []).flatMap((rl) => {
    const resource = decodeAttributes(rl.resource?.attributes);
    return (rl.scopeLogs ?? []).flatMap((sl) =>
      (sl.logRecords ?? []).map((record) => ({
        timeUnixNano: String(record.timeUnixNano ?? '0'),
        severityNumber: record.severityNumber,
        severityText: record.severityText,
        body: decodeValue(record.body),
        attributes: decodeAttributes(record.attributes),
        traceId: record.traceId ?? '',
        spanId: record.spanId ?? '',
        flags: record.flags,
        resource,
      })),
    );
  });
}

/** A W3C traceparent header, as an upstream service sends it; flags 01 is sampled, 00 is not. */
export const traceparent = (traceId: string, spanId: string, flags: '00' | '01' = '01') =>
  `00-${traceId}-${spanId}-${flags}`;

/** Whether `span` hangs, directly or through other spans of `spans`, under the span `ancestorId`. */
export function descendsFrom(span: ReceivedSpan, ancestorId: string, spans: ReceivedSpan[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  let current: ReceivedSpan | undefined = span;
  for (let depth = 0; current !== undefined && depth < 100; depth++) {
    if (current.parentSpanId === ancestorId) return true;
    current = current.parentSpanId === undefined ? undefined : byId.get(current.parentSpanId);
  }
  return false;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const receiver: Omit<OtlpReceiver, 'close' | 'url'> = {
    spans,
    spansOf: (service) => spans.filter((s) => s.resource['service.name'] === service),
    logs: [],
    requests: 0,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      receiver.requests++;
      if (req.method !== 'POST' || (req.url !== '/v1/traces' && req.url !== '/v1/logs')) {
        res.writeHead(404).end();
        return;
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        res.writeHead(415).end(); // protobuf exports are not what the app is configured to send
        return;
      }
      try {
        const raw = Buffer.concat(chunks);
        const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        const body: unknown = JSON.parse(text);
        if (req.url === '/v1/logs') receiver.logs.push(...decodeLogsExport(body as OtlpLogsExport));
        else receiver.spans.push(...decodeExport(body as OtlpExport));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  });
}
