// Memory of a server process under test, measured after a full collection (see collect-on-signal.mjs).
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, type Running } from './process.js';

const PRELOAD = new URL('./collect-on-signal.mjs', import.meta.url).href;
const BARE_SERVER = new URL('./bare-http-server.mjs', import.meta.url).pathname;

/** The command for `run()` that starts the CLI with the collect-on-signal preload. */
export const COLLECTABLE_CLI = [process.execPath, '--expose-gc', '--import', PRELOAD, CLI];

/** The command for `run()` that starts a bare node:http server (with the preload) on `port`. */
export const bareServer = (port: number) => [process.execPath, '--expose-gc', BARE_SERVER, String(port)];

export interface Memory {
  rssBytes: number;
  heapUsedBytes: number;
}

/** Asks the process for a full collection and returns its RSS and heap in use afterwards. */
export async function settledMemory(server: Running, timeoutMs = 10_000): Promise<Memory> {
  const reports = () =>
    server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{"collected":true'));
  const seen = reports().length;
  server.child.kill('SIGUSR2');
  for (let waited = 0; waited < timeoutMs; waited += 50) {
    const all = reports();
    if (all.length > seen) {
      const { rss, heap_used } = JSON.parse(all[all.length - 1]!) as { rss: number; heap_used: number };
      return { rssBytes: rss, heapUsedBytes: heap_used };
    }
    await sleep(50);
  }
  throw new Error(`no memory report within ${timeoutMs} ms; stderr: ${server.stderr().slice(-500)}`);
}
