// Node's headersTimeout starts with a request's first byte, so a connection that never sends one is held
// until the keep-alive or socket timeout, which do not apply before a first request either: thousands of
// silent connections would hold as many sockets for ever. One timer per connection (not per request)
// closes a connection that has sent nothing within the headers timeout.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export function closeSilentConnections(server: Server, afterMs: number): void {
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, afterMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
}
