// Baseline for the load benchmark: bare node:http answering bodies shaped and sized like the service's, so
// the ratio service/raw measures what the framework, validation, logging and metrics cost.
import { randomInt } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const COUNT = 100;

// Bodies are built per request, as the service does, so the baseline also pays for randomness and JSON.
function body(pathname) {
  if (pathname === '/v1/random/integers') {
    const data = Array.from({ length: COUNT }, () => randomInt(1, 101));
    return JSON.stringify({ data, min: 1, max: 100, count: COUNT, unique: false, base: 10 });
  }
  return JSON.stringify({ value: randomInt(1, 101), min: 1, max: 100 });
}

const server = createServer((req, res) => {
  const pathname = (req.url ?? '/').split('?', 1)[0];
  const payload = body(pathname);
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
});

server.listen(port, host, () => {
  const address = server.address();
  process.stdout.write(
    `raw server listening on ${host}:${typeof address === 'object' ? address?.port : port}\n`,
  );
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
