// A TCP relay in front of a real server that can go silent the way a cut network does: bytes stop
// flowing both ways on open connections and new ones are accepted but never answered, with no RST
// or FIN (a refused connection would be the easy case). Not a fake of the server: every byte that
// flows is the real server's.
import net from 'node:net';

export class SilencingProxy {
  #server: net.Server;
  #silent = false;
  #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  #held = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<SilencingProxy> {
    const server = net.createServer();
    const proxy = new SilencingProxy(server);
    server.on('connection', (client) => {
      client.on('error', () => {});
      if (proxy.#silent) {
        proxy.#held.add(client);
        return;
      }
      const upstream = net.connect(targetPort, targetHost);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      const pair = { client, upstream };
      proxy.#pairs.add(pair);
      const relay = (from: net.Socket, to: net.Socket) =>
        from.on('data', (chunk: Buffer) => {
          if (!proxy.#silent) to.write(chunk);
        });
      relay(client, upstream);
      relay(upstream, client);
      const end = () => {
        proxy.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end);
      upstream.on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** From now on nothing flows, and new connections hang. */
  silence(): void {
    this.#silent = true;
  }

  /** Flowing again for new connections; the ones that lost bytes while silent are dropped. */
  restore(): void {
    this.#silent = false;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    for (const socket of this.#held) socket.destroy();
    this.#held.clear();
  }

  async close(): Promise<void> {
    this.restore();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
