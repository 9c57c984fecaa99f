// Runs once before the suite: builds dist/ for the system tests (they run the real CLI) and checks that
// the real PostgreSQL and Redis are reachable. With CI=true an unreachable service fails the whole run;
// elsewhere the suites that need it are reported as skipped, never silently passed.
import { spawnSync } from 'node:child_process';
import { Socket } from 'node:net';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from './helpers/services.js';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
    socket.connect(Number(port || (url.startsWith('redis') ? 6379 : 5432)), hostname);
  });
}

export default async function setup(project: TestProject): Promise<void> {
  const built = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('build failed');

  const [postgres, redis] = await Promise.all([reachable(TEST_POSTGRES_URL), reachable(TEST_REDIS_URL)]);
  const ci = process.env.CI === 'true';
  const missing = [
    !postgres && `PostgreSQL at ${TEST_POSTGRES_URL}`,
    !redis && `Redis at ${TEST_REDIS_URL}`,
  ].filter(Boolean);
  if (missing.length > 0) {
    const message = `unreachable: ${missing.join(', ')}`;
    if (ci) throw new Error(`${message}; CI=true requires the real services`);
    process.stderr.write(`warning: ${message}; their suites are skipped\n`);
  }
  project.provide('postgresAvailable', postgres);
  project.provide('redisAvailable', redis);
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAvailable: boolean;
    redisAvailable: boolean;
  }
}
