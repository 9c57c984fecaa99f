// Failed-login limits on a private redis-server (its own port, so it can be frozen without touching the
// shared one): counted across replicas while Redis answers; when Redis stops answering (SIGSTOP: the
// connection stays open, nothing comes back, as when packets are dropped) a login check costs the short
// deadline, not the client's command timeout, and failures are still counted, locally.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { LoginLimiter } from '../../src/modules/auth/login-limiter.js';
import pino from 'pino';
import { closedPort } from '../helpers/services.js';

const installed = spawnSync('redis-server', ['--version']).status === 0;
if (!installed && process.env.CI === 'true')
  throw new Error('redis-server is not installed; CI=true requires it');

const MAX_FAILURES = 3;
// The shared client's command timeout (src/adapters/redis/client.ts): what a call waits without a deadline.
const COMMAND_TIMEOUT_MS = 500;

describe.skipIf(!installed)('login limiter on Redis', () => {
  let server: ChildProcess;
  let url: string;
  const clients: ReturnType<typeof createRedis>[] = [];
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    const port = await closedPort();
    url = `redis://127.0.0.1:${port}`;
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    const probe = createRedis({ url, logger });
    for (let i = 0; i < 100; i++) {
      if (
        (await probe.connect().then(
          () => probe.ping(),
          () => undefined,
        )) === 'PONG'
      )
        break;
      await sleep(50);
    }
    probe.disconnect();
  });
  afterAll(() => {
    for (const client of clients) client.disconnect();
    server.kill('SIGCONT');
    server.kill('SIGKILL');
  });

  async function replica(prefix: string): Promise<LoginLimiter> {
    const redis = createRedis({ url, logger });
    clients.push(redis);
    await redis.connect();
    return new LoginLimiter({
      redis,
      keyPrefix: prefix,
      maxFailures: MAX_FAILURES,
      windowSeconds: 60,
      redisTimeoutMs: 50,
    });
  }

  it('when Redis answers, failures counted by one replica lock the next attempt on another', async () => {
    const [a, b] = [await replica('shared:'), await replica('shared:')];
    for (let i = 0; i < MAX_FAILURES; i++) await a.recordFailure('ada', '192.0.2.1');
    expect(await b.retryAfterSeconds('ada', '192.0.2.1')).toBeGreaterThan(0);
    expect(await b.retryAfterSeconds('bob', '192.0.2.1')).toBe(0);
    await b.recordSuccess('ada', '192.0.2.1');
    expect(await a.retryAfterSeconds('ada', '192.0.2.1')).toBe(0);
  });

  it('when Redis stops answering, each check costs the deadline, failures still lock, and Redis is used again after', async () => {
    const limiter = await replica('frozen:');
    expect(await limiter.retryAfterSeconds('cy', '192.0.2.2')).toBe(0); // connected and answering
    server.kill('SIGSTOP');
    try {
      let slowest = 0;
      for (let i = 0; i < MAX_FAILURES; i++) {
        const started = performance.now();
        expect(await limiter.retryAfterSeconds('cy', '192.0.2.2')).toBe(0);
        slowest = Math.max(slowest, performance.now() - started);
        await limiter.recordFailure('cy', '192.0.2.2');
      }
      // Without the deadline each check would wait for the client's command timeout.
      expect(slowest).toBeLessThan(COMMAND_TIMEOUT_MS / 2);
      // Counted locally meanwhile: guessing is still limited.
      expect(await limiter.retryAfterSeconds('cy', '192.0.2.2')).toBeGreaterThan(0);
    } finally {
      server.kill('SIGCONT');
    }
    // Redis again: the frozen calls' replies are discarded, new ones are answered by Redis.
    const other = await replica('frozen:');
    for (let i = 0; i < MAX_FAILURES; i++) await limiter.recordFailure('dee', '192.0.2.3');
    expect(await other.retryAfterSeconds('dee', '192.0.2.3')).toBeGreaterThan(0);
  });
});
