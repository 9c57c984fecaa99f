// A constant-rate load generator in the manner of wrk2: GET <url> at <rate> requests per second, spread
// evenly (request i is due at start + i / rate), over <connections> keep-alive connections opened before the
// start. It does not wait for an answer before the next request is due (open loop): a request goes out on
// the first idle connection, or waits for one. Every latency is timed from the moment its request was due,
// not from when it was written, so a stall of the server shows in the latency of every request it delayed
// instead of hiding them (coordinated omission). The first <warm-up seconds> run the same way and are
// discarded. Plain sockets and a minimal HTTP/1.1 reader (status line, content-length) keep its own cost per
// request far below the server's.
//
//   node bench/lib/fixed-rate.mjs <url> <seconds> <warm-up seconds> <rate> <connections> <timeout ms>
//
// Prints one JSON line: {latencies (ms, the measured 200s), non2xx, errors, due, completed, maxSendLagMs},
// maxSendLagMs being how late this process noticed a request was due (its own lag, not the server's). It
// spins on setImmediate to send each request on time, so it keeps its core busy: run it on the load core.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

const [url, secondsArg, warmupArg, rateArg, connectionsArg, timeoutArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const warmup = Number(warmupArg);
const rate = Number(rateArg);
const connections = Number(connectionsArg);
const timeoutMs = Number(timeoutArg);
if (
  ![seconds, warmup, rate, connections, timeoutMs].every((n) => Number.isFinite(n) && n >= 0) ||
  rate <= 0
) {
  process.stderr.write(
    'usage: fixed-rate.mjs <url> <seconds> <warm-up seconds> <rate> <connections> <timeout ms>\n',
  );
  process.exit(2);
}

const target = new URL(url);
const port = Number(target.port || 80);
const REQUEST = Buffer.from(
  `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n\r\n`,
);
const HEADER_END = Buffer.from('\r\n\r\n');
const interval = 1_000 / rate;
const total = Math.round((warmup + seconds) * rate);
const firstMeasured = Math.round(warmup * rate);
const latencies = [];
let non2xx = 0;
let errors = 0;
let sent = 0;
let settled = 0;
let maxSendLagMs = 0;
let start = 0;
const idle = [];
// Requests due while every connection was busy, oldest first: [index, due] pairs from `head` on.
const waiting = [];
let head = 0;

function report() {
  const line = JSON.stringify({
    latencies: latencies.map((ms) => Math.round(ms * 1_000) / 1_000),
    non2xx,
    errors,
    due: total - firstMeasured,
    completed: latencies.length + non2xx,
    maxSendLagMs,
  });
  // Exit only once the line is out: a pipe may take it in several writes.
  process.stdout.write(`${line}\n`, () => process.exit(0));
}

function settle(index, due, outcome) {
  if (index >= firstMeasured) {
    if (outcome === 200) latencies.push(performance.now() - due);
    else if (outcome === 'error') errors += 1;
    else non2xx += 1;
  }
  if (++settled === total) report();
}

function next(conn) {
  if (head < waiting.length) {
    const [index, due] = waiting[head];
    waiting[head++] = undefined;
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    write(conn, index, due);
  } else {
    idle.push(conn);
  }
}

function write(conn, index, due) {
  conn.index = index;
  conn.due = due;
  conn.socket.write(REQUEST);
}

function open() {
  return new Promise((resolve, reject) => {
    const conn = {
      socket: connect({ host: target.hostname, port, noDelay: true }),
      buffer: Buffer.alloc(0),
      index: -1,
      due: 0,
    };
    const { socket } = conn;
    socket.setTimeout(timeoutMs);
    socket.once('connect', () => resolve(conn));
    socket.on('data', (chunk) => {
      conn.buffer = conn.buffer.length === 0 ? chunk : Buffer.concat([conn.buffer, chunk]);
      for (;;) {
        const end = conn.buffer.indexOf(HEADER_END);
        if (end < 0) return;
        const header = conn.buffer.toString('latin1', 0, end);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(header);
        if (length === null) {
          socket.destroy(new Error('a response without content-length'));
          return;
        }
        const size = end + HEADER_END.length + Number(length[1]);
        if (conn.buffer.length < size) return;
        conn.buffer = conn.buffer.subarray(size);
        const { index, due } = conn;
        conn.index = -1;
        settle(index, due, Number(header.slice(9, 12)) === 200 ? 200 : 'non2xx');
        next(conn);
      }
    });
    socket.on('timeout', () => socket.destroy(new Error('timeout')));
    socket.once('error', reject);
    socket.once('close', () => {
      if (start === 0) return;
      // The request in flight fails; a new connection takes this one's place.
      if (conn.index >= 0) settle(conn.index, conn.due, 'error');
      const at = idle.indexOf(conn);
      if (at >= 0) idle.splice(at, 1);
      if (settled < total) open().then(next, () => undefined);
    });
  });
}

function tick() {
  const now = performance.now();
  while (sent < total && start + sent * interval <= now) {
    const due = start + sent * interval;
    maxSendLagMs = sent >= firstMeasured ? Math.max(maxSendLagMs, now - due) : maxSendLagMs;
    const conn = idle.pop();
    if (conn === undefined) waiting.push([sent, due]);
    else write(conn, sent, due);
    sent += 1;
  }
  if (sent < total) setImmediate(tick);
}

idle.push(...(await Promise.all(Array.from({ length: connections }, open))));
start = performance.now() + 10;
// Whatever is still unanswered this long after the last request was due counts as an error.
setTimeout(
  () => {
    errors = total - firstMeasured - latencies.length - non2xx;
    report();
  },
  (warmup + seconds) * 1_000 + timeoutMs + 1_000,
);
tick();
