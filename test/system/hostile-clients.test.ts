// What a public endpoint meets every day, at the socket, against the real server process on the real
// PostgreSQL: trickled headers and bodies, oversized and malformed requests, smuggling-shaped framing,
// thousands of idle connections and clients that vanish midway. Each gets a 4xx (problem+json where an
// answer is still possible) or a closed socket within the configured timeouts, while a prober keeps
// timing /health/live, nothing is logged above warn, memory comes back and the process never exits.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logLines, run, waitFor, type Running } from '../helpers/process.js';
import { COLLECTABLE_CLI, bareServer, settledMemory, type Memory } from '../helpers/memory.js';
import { startProbe, type ProbeReport } from '../helpers/probe.js';
import { exchange, trickled, type RawAnswer } from '../helpers/raw-http.js';
import { closedPort, createTestDatabase, type TestDatabase } from '../helpers/services.js';
import { PROBLEM } from '../helpers/problem.js';

const HEADERS_TIMEOUT_S = 2;
const REQUEST_TIMEOUT_S = 4;
const KEEP_ALIVE_S = 5;
const BODY_LIMIT = 65_536;
// Node checks its timeouts once a second (see app.ts), so a deadline holds to within that, plus slack for
// a loaded CI machine.
const SLACK_MS = 1_500;
const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };

const MiB = 1024 * 1024;

/** Opens `count` keep-alive connections, 100 at a time, each after one answered request; then closes them. */
async function idleFlood(port: number, count: number, request: string): Promise<void> {
  const sockets: net.Socket[] = [];
  for (let batch = 0; batch < count / 100; batch++) {
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        const socket = net.connect(port, '127.0.0.1');
        sockets.push(socket);
        socket.on('error', () => {});
        await new Promise<void>((resolve) => {
          socket.once('data', () => resolve());
          socket.write(request);
        });
      }),
    );
  }
  for (const socket of sockets) socket.destroy();
  await sleep(500);
}

interface Row {
  attack: string;
  answer: string;
  closeMs: string;
}

describe.skipIf(!inject('postgresAvailable'))('hostile and broken clients', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let server: Running;
  let port: number;
  const rows: Row[] = [];
  let probe: ReturnType<typeof startProbe>;
  let before: Memory;
  // What the runtime itself keeps after 2,000 connections at once (see beforeAll), in MiB.
  let runtimeRetainsMiB: number;

  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
  const post = (path: string, body: string, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

  function record(attack: string, answers: RawAnswer[]) {
    const statuses = [...new Set(answers.map((a) => a.status ?? 'none'))].join('/');
    const closes = answers.map((a) => a.closedAfterMs).filter((ms) => ms !== undefined);
    const closeMs =
      closes.length === 0
        ? 'kept open'
        : `${Math.round(Math.min(...closes))}-${Math.round(Math.max(...closes))} ms (${closes.length}/${answers.length})`;
    rows.push({ attack, answer: statuses === 'none' ? 'no answer' : statuses, closeMs });
  }

  function expectProblem(answer: RawAnswer, status: number) {
    expect(answer.status, answer.body || answer.error).toBe(status);
    expect(answer.headers['content-type']).toBe(PROBLEM);
    const body = JSON.parse(answer.body) as { status: number; type: string; request_id: string };
    expect(body.status).toBe(status);
    expect(body.type).toMatch(/^urn:reliability-api:problem:/);
    expect(body.request_id).toMatch(/\S/);
  }

  beforeAll(async () => {
    // The same flood of 2,000 connections against a bare node:http server on this runtime: the memory
    // its allocator keeps afterwards is Node's (measured: +20 MiB on Node 20, +45 MiB on Node 24 after
    // the first flood, with a flat JavaScript heap), and does not count against the service.
    const barePort = await closedPort();
    const bare = run([], {}, bareServer(barePort));
    await waitFor(`http://127.0.0.1:${barePort}/`, 200, 10_000);
    for (let i = 0; i < 200; i++) await (await fetch(`http://127.0.0.1:${barePort}/`)).arrayBuffer();
    const bareBefore = await settledMemory(bare);
    await idleFlood(barePort, 2_000, `GET / HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const bareAfter = await settledMemory(bare);
    bare.child.kill('SIGKILL');
    await bare.exited;
    runtimeRetainsMiB = Math.max(0, (bareAfter.rssBytes - bareBefore.rssBytes) / MiB);

    db = await createTestDatabase('hostile');
    port = await closedPort();
    server = run(
      ['serve'],
      {
        ENVIRONMENT: 'test',
        DATABASE_URL: db.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        HTTP_HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_S),
        HTTP_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_S),
        HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: String(KEEP_ALIVE_S),
        BODY_LIMIT_BYTES: String(BODY_LIMIT),
        RATE_LIMITS: JSON.stringify({
          api: { anonymous: UNLIMITED, user: UNLIMITED, api_key: UNLIMITED, admin: UNLIMITED },
          auth: { anonymous: UNLIMITED },
        }),
        LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
        SHUTDOWN_DRAIN_SECONDS: '0',
      },
      COLLECTABLE_CLI,
    );
    await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 60_000);
    // Warm up (JIT, pools, first allocations) before the memory baseline.
    for (let i = 0; i < 200; i++) await (await fetch(`http://127.0.0.1:${port}/v1/random`)).arrayBuffer();
    before = await settledMemory(server);
    probe = startProbe(`http://127.0.0.1:${port}/health/live`, 20, 5_000);
  });

  afterAll(async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await db?.drop();
  });

  it('when clients trickle headers, trickle a body, hold idle keep-alive connections or connect and say nothing, then each is closed within its timeout while others are served', async () => {
    const slowloris = Array.from({ length: 50 }, () =>
      exchange(port, {
        send: trickled(`GET /v1/random HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'a'.repeat(40)}`, 1000),
        waitMs: 20_000,
      }),
    );
    const slowBody = Array.from({ length: 20 }, () =>
      exchange(port, {
        send: [
          `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`,
          ...trickled('{"username":"slow-body-client-sends-one-byte-a-second"', 1000),
        ],
        waitMs: 20_000,
      }),
    );
    const silent = Array.from({ length: 100 }, () => exchange(port, { send: [], waitMs: 20_000 }));

    // 2,000 keep-alive connections, each after one answered request, then idle.
    const idle: { socket: net.Socket; answeredAt?: number; closedAt?: number }[] = [];
    const opened = performance.now();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const socket = net.connect(port, '127.0.0.1');
          const entry: { socket: net.Socket; answeredAt?: number; closedAt?: number } = { socket };
          idle.push(entry);
          socket.on('error', () => {});
          socket.on('close', () => (entry.closedAt = performance.now()));
          await new Promise<void>((resolve) => {
            socket.once('data', () => {
              entry.answeredAt = performance.now();
              resolve();
            });
            socket.write(get('/v1/random?min=1&max=6'));
          });
        }),
      );
    }
    const idleReady = performance.now();
    // Meanwhile an ordinary client is served at once.
    const ordinary = await fetch(`http://127.0.0.1:${port}/v1/random?min=1&max=6`);
    expect(ordinary.status).toBe(200);
    // None is closed before its keep-alive timeout (opening 2,000 takes longer than that on a loaded
    // machine, so the first ones may already be gone: only early closes are wrong).
    const early = (c: (typeof idle)[number]) =>
      c.closedAt !== undefined && c.closedAt - c.answeredAt! < KEEP_ALIVE_S * 1000 - 500;
    expect(idle.filter(early)).toHaveLength(0);

    const [lorisAnswers, bodyAnswers, silentAnswers] = await Promise.all([
      Promise.all(slowloris),
      Promise.all(slowBody),
      Promise.all(silent),
    ]);
    for (const answer of lorisAnswers) {
      expectProblem(answer, 408);
      expect(answer.closedAfterMs!).toBeLessThan(HEADERS_TIMEOUT_S * 1000 + SLACK_MS);
    }
    record('slowloris: 50 connections, headers 1 byte/s', lorisAnswers);
    for (const answer of bodyAnswers) {
      expectProblem(answer, 408);
      expect(answer.closedAfterMs!).toBeLessThan(REQUEST_TIMEOUT_S * 1000 + SLACK_MS);
    }
    record('slow body: 20 connections, body 1 byte/s', bodyAnswers);
    // Node starts a connection's headers clock when it is accepted, so one that sends nothing gets the same
    // 408 as a slowloris client, written by the client-error handler.
    for (const answer of silentAnswers) {
      expectProblem(answer, 408);
      expect(answer.closedAfterMs!).toBeLessThan(HEADERS_TIMEOUT_S * 1000 + SLACK_MS);
    }
    record('100 connections that send nothing', silentAnswers);

    const deadline = idleReady + KEEP_ALIVE_S * 1000 + SLACK_MS + 1_000;
    while (idle.some((c) => c.closedAt === undefined) && performance.now() < deadline) await sleep(100);
    const stillOpen = idle.filter((c) => c.closedAt === undefined).length;
    for (const c of idle) c.socket.destroy();
    expect(stillOpen).toBe(0);
    expect(idle.filter(early)).toHaveLength(0);
    const closes = idle.map((c) => c.closedAt! - idleReady);
    rows.push({
      attack: '2,000 idle keep-alive connections',
      answer: '200, then idle',
      closeMs: `${Math.round(Math.min(...closes))}-${Math.round(Math.max(...closes))} ms after the last opened (opening took ${Math.round(idleReady - opened)} ms)`,
    });
  });

  it('when requests are oversized or malformed, then each gets its 4xx as problem+json', async () => {
    const deep = (open: string, close: string, inner = '') =>
      open.repeat(10_000) + inner + close.repeat(10_000);
    const cases: { attack: string; raw: string; status: number; closes?: boolean }[] = [
      {
        attack: 'headers over 16 KiB',
        raw: `GET /v1/random HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`,
        status: 431,
        closes: true,
      },
      {
        attack: `body over BODY_LIMIT_BYTES (Content-Length ${BODY_LIMIT * 4})`,
        raw: `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${BODY_LIMIT * 4}\r\n\r\n{"username":"`,
        status: 413,
      },
      {
        attack: 'chunked body over BODY_LIMIT_BYTES',
        raw: `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${`ffff\r\n${'a'.repeat(0xffff)}\r\n`.repeat(2)}`,
        status: 413,
      },
      { attack: 'invalid JSON', raw: post('/v1/auth/login', '{"username": "a", "password": '), status: 400 },
      { attack: 'JSON array nested 10,000 deep', raw: post('/v1/auth/login', deep('[', ']')), status: 400 },
      {
        attack: 'JSON object nested 10,000 deep',
        raw: post('/v1/auth/login', deep('{"a":', '}', '1')),
        status: 400,
      },
      { attack: 'invalid UTF-8 in the path (%FF)', raw: get('/v1/random/%FF'), status: 400 },
      { attack: 'invalid UTF-8 in the query (%FF)', raw: get('/v1/random?min=%FF'), status: 400 },
      { attack: 'NUL in the path (%00)', raw: get('/v1/random%00'), status: 404 },
      { attack: 'NUL in the query (%00)', raw: get('/v1/random?min=1%00'), status: 400 },
      { attack: 'raw NUL byte in the request line', raw: get('/v1/ran\x00dom'), status: 400, closes: true },
      { attack: 'raw 0xFF byte in the query', raw: get('/v1/random?min=\xff'), status: 400, closes: true },
      {
        attack: 'Content-Length and Transfer-Encoding (smuggling)',
        raw: `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/random HTTP/1.1\r\nHost: localhost\r\n\r\n`,
        status: 400,
        closes: true,
      },
      {
        attack: 'two different Content-Lengths (smuggling)',
        raw: `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /v1/random HTTP/1.1\r\nHost: localhost\r\n\r\n`,
        status: 400,
        closes: true,
      },
    ];
    for (const c of cases) {
      const answer = await exchange(port, { send: [Buffer.from(c.raw, 'latin1')], waitMs: 1_500 });
      expectProblem(answer, c.status);
      // A smuggled second request is never answered: the connection ends with the refusal.
      expect(answer.body.match(/HTTP\/1\.1 /g) ?? [], c.attack).toHaveLength(0);
      if (c.closes === true) expect(answer.closedAfterMs, c.attack).toBeDefined();
      record(c.attack, [answer]);
    }
  });

  it('when 200 clients drop their connection midway, then nothing breaks and the next request is served', async () => {
    const drops = Array.from({ length: 200 }, (_, i) =>
      exchange(port, {
        send:
          i % 2 === 0
            ? ['GET /v1/random HTTP/1.1\r\nHost: loc', 20]
            : [
                `POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user`,
                20,
              ],
        waitMs: 1_000,
        dropAfterSend: true,
      }),
    );
    const answers = await Promise.all(drops);
    expect(answers.every((a) => a.status === undefined)).toBe(true);
    rows.push({
      attack: '200 connections dropped mid-request',
      answer: 'none (client left)',
      closeMs: 'client closed',
    });
    expect((await fetch(`http://127.0.0.1:${port}/v1/random`)).status).toBe(200);
  });

  it('then the prober never waited long, memory came back, nothing was logged above warn and the process lives', async () => {
    const report: ProbeReport = await probe.stop();
    // Both readings follow a full collection, so the difference is what the attacks left behind.
    const after = await settledMemory(server);
    const rssDeltaMiB = (after.rssBytes - before.rssBytes) / MiB;
    const heapDeltaMiB = (after.heapUsedBytes - before.heapUsedBytes) / MiB;
    const signed = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;
    const loud = logLines(server.stdout()).filter((l) => l.level === 'error' || l.level === 'fatal');
    process.stdout.write(
      [
        '',
        '| attack | server answer | closed after |',
        '| --- | --- | --- |',
        ...rows.map((r) => `| ${r.attack} | ${r.answer} | ${r.closeMs} |`),
        '',
        `probe /health/live: ${report.count} requests, ${report.failures.length} failed, p99 ${report.p99Ms.toFixed(1)} ms, max ${report.maxMs.toFixed(1)} ms`,
        `after a full collection: RSS ${(before.rssBytes / MiB).toFixed(1)} -> ${(after.rssBytes / MiB).toFixed(1)} MiB (${signed(rssDeltaMiB)}), heap in use ${(before.heapUsedBytes / MiB).toFixed(1)} -> ${(after.heapUsedBytes / MiB).toFixed(1)} MiB (${signed(heapDeltaMiB)}); a bare node:http server on ${process.version} keeps ${signed(runtimeRetainsMiB)} MiB after 2,000 connections`,
        '',
      ].join('\n'),
    );
    expect(report.failures).toEqual([]);
    // The figure is the report above; the bound only tells a served probe from one held up by the attacks
    // (a blocked event loop holds it for seconds): the latency objective, 0.25 s, on a noisy shared machine.
    expect(report.p99Ms).toBeLessThan(250);
    // Live JavaScript objects: thousands of connections leave nothing reachable behind them.
    expect(heapDeltaMiB).toBeLessThan(5);
    // Process memory: within 20 MiB, beyond what the runtime itself keeps after such a flood.
    expect(rssDeltaMiB).toBeLessThan(20 + runtimeRetainsMiB);
    expect(loud).toEqual([]);
    expect(server.child.exitCode).toBeNull();
  });
});
