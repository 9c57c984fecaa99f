// HTTP/1.1 at the socket, for clients no well-behaved library would be: trickled bytes, broken framing,
// connections held open or dropped midway. Each exchange reports what came back and when the server closed.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawAnswer {
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** When the server closed the connection, from its opening; undefined if it was still open. */
  closedAfterMs: number | undefined;
  error: string | undefined;
}

export function parseAnswer(text: string): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 ') || end === -1) return { status: undefined, headers: {}, body: text };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

export interface ExchangeOptions {
  /** Pieces to write, in order; a number is a pause in milliseconds. */
  send: (string | Buffer | number)[];
  /** Give up waiting for the server to close after this long (the connection is then destroyed). */
  waitMs: number;
  /** Destroy the connection right after the last piece, as a client that goes away midway. */
  dropAfterSend?: boolean;
}

export function exchange(port: number, options: ExchangeOptions): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const opened = performance.now();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    const finish = (closedAfterMs: number | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(Buffer.concat(chunks).toString('latin1')), closedAfterMs, error });
    };
    const timer = setTimeout(() => finish(undefined), options.waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => finish(performance.now() - opened));
    socket.once('connect', () => {
      void (async () => {
        for (const piece of options.send) {
          if (settled || socket.destroyed) return;
          if (typeof piece === 'number') await sleep(piece);
          else socket.write(piece);
        }
        if (options.dropAfterSend) finish(undefined);
      })();
    });
  });
}

/** `text` as one byte per piece with `pauseMs` between them: a client that trickles. */
export function trickled(text: string, pauseMs: number): (string | number)[] {
  return [...text].flatMap((c) => [c, pauseMs]);
}
