// The prober (bench/lib/probe.ts runs it on the load core): sequential GETs of one URL at a fixed rate on one
// keep-alive connection, each timed with performance.now(), for a number of seconds. A request slower than
// the timeout counts as an error. Prints one JSON line: { elapsedMs, latencies, non2xx, errors }.
// Usage: node bench/lib/prober.mjs <url> <seconds> <requests per second> <timeout ms>
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
const [url, seconds, rate, timeoutMs] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const interval = 1000 / Number(rate);
const latencies = [];
let non2xx = 0;
let errors = 0;
const once = () =>
  new Promise((resolve) => {
    let settled = false;
    const settle = (latency, ok) => {
      if (settled) return;
      settled = true;
      if (latency === undefined) errors++;
      else {
        latencies.push(Math.round(latency * 1000) / 1000);
        if (!ok) non2xx++;
      }
      resolve();
    };
    const start = performance.now();
    const req = get(url, { agent, timeout: Number(timeoutMs) }, (res) => {
      res.on('data', () => {});
      res.once('end', () => settle(performance.now() - start, res.statusCode >= 200 && res.statusCode < 300));
      res.once('error', () => settle(undefined));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => settle(undefined));
  });
const begin = performance.now();
const end = begin + Number(seconds) * 1000;
let due = begin;
while (performance.now() < end) {
  await once();
  due += interval;
  const wait = due - performance.now();
  // Behind schedule (a slow answer): carry on at the rate from now rather than bursting to catch up.
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  else due = performance.now();
}
agent.destroy();
process.stdout.write(
  JSON.stringify({ elapsedMs: performance.now() - begin, latencies, non2xx, errors }) + '\n',
);
