// Baseline for the load benchmark: the least a Node.js server can do. node:http answering a fixed body per
// route, built once at start-up, with only content-type and content-length, the route chosen by a prefix
// check on req.url. No parsing, no randomness per request, no header reads: the ratio service/raw is then
// what everything the service does per request costs over Node.js's own HTTP handling.
import { randomInt, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const COUNT = 100;

// The service's shapes and sizes (the same JSON fields, values of the same lengths), fixed for the life of
// the process. /v1/auth/me is shaped like the demo admin: a uuid and an ISO time.
const json = (value) => {
  const body = Buffer.from(JSON.stringify(value));
  return { body, headers: { 'content-type': 'application/json', 'content-length': body.length } };
};
const INTEGERS = json({
  data: Array.from({ length: COUNT }, () => randomInt(1, 101)),
  min: 1,
  max: 100,
  count: COUNT,
  unique: false,
  base: 10,
});
const ME = json({
  id: randomUUID(),
  username: 'demo-admin',
  role: 'admin',
  created_at: new Date().toISOString(),
});
const SINGLE = json({ value: randomInt(1, 101), min: 1, max: 100 });

const server = createServer((req, res) => {
  const url = req.url;
  const answer = url.startsWith('/v1/random/integers')
    ? INTEGERS
    : url.startsWith('/v1/auth/me')
      ? ME
      : SINGLE;
  res.writeHead(200, answer.headers);
  res.end(answer.body);
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
