// A private redis-server on its own port, killed and restarted by the scenarios.
import { Socket } from 'node:net';
import { onCleanup, start, stop, until, type Child } from './processes.js';

function answersPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(500);
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
  });
}

export class PrivateRedis {
  #child: Child | undefined;

  private constructor(
    readonly port: number,
    readonly listen: string[],
  ) {}

  url(host = '127.0.0.1'): string {
    return `redis://${host}:${this.port}`;
  }

  static async create(port: number, listen: string[]): Promise<PrivateRedis> {
    const server = new PrivateRedis(port, listen);
    onCleanup(() => server.kill());
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    this.#child = start('redis-server', [
      '--port',
      String(this.port),
      '--bind',
      ...this.listen,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ]);
    await until('redis-server', () => answersPing('127.0.0.1', this.port), 10_000);
  }

  /** SIGKILL: an outage, not a shutdown (every key is gone with it: it keeps nothing on disk). */
  async kill(): Promise<void> {
    if (this.#child !== undefined) await stop(this.#child, 'SIGKILL');
    this.#child = undefined;
  }
}
