// Baseline for the load benchmark: bare node:http answering bodies shaped and sized like the service's, so
// the ratio service/raw measures what the framework, validation, authentication, logging and metrics cost.
import { randomInt, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const COUNT = 100;

// The caller of /v1/auth/me, shaped like the service's demo admin (a uuid, an ISO time: the same sizes). It
// is fixed for the life of the process, as the user row is in the service; no database is asked for it.
const ME = { id: randomUUID(), username: 'demo-admin', role: 'admin', created_at: new Date().toISOString() };
const UNAUTHORIZED = JSON.stringify({ status: 401, title: 'Unauthorized', detail: 'credentials required' });

// Bodies are built per request, as the service does, so the baseline also pays for randomness and JSON.
function body(pathname) {
  if (pathname === '/v1/random/integers') {
    const data = Array.from({ length: COUNT }, () => randomInt(1, 101));
    return JSON.stringify({ data, min: 1, max: 100, count: COUNT, unique: false, base: 10 });
  }
  if (pathname === '/v1/auth/me') return JSON.stringify(ME);
  return JSON.stringify({ value: randomInt(1, 101), min: 1, max: 100 });
}

function send(res, status, payload) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

const server = createServer((req, res) => {
  const pathname = (req.url ?? '/').split('?', 1)[0];
  // The Authorization header is read but its token is never verified: checking it is part of what the
  // service costs. /v1/auth/me refuses a call without one, so a benchmark that forgot it would show.
  const authorization = req.headers.authorization;
  if (pathname === '/v1/auth/me' && !authorization?.startsWith('Bearer ')) {
    send(res, 401, UNAUTHORIZED);
    return;
  }
  send(res, 200, body(pathname));
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
