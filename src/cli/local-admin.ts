// How a CLI command reaches the database: it opens it itself, or, when a running server owns the embedded
// database (whose lock then refuses a second opener), it goes through that server's local admin channel.
import { Client } from 'undici';
import {
  createDatabase,
  embeddedPaths,
  type Database,
  type DatabaseOptions,
} from '../adapters/postgres/database.js';
import { EmbeddedDatabaseInUseError } from '../adapters/postgres/embedded-lock.js';
import type { LocalAdminError } from '../modules/local-admin/protocol.js';

export interface ChannelAnswer {
  status: number;
  body: Buffer;
}

/** The running server's local admin channel. */
export interface LocalAdminChannel {
  /** The error to report when the server refuses a command it cannot run for the CLI. */
  readonly inUse: EmbeddedDatabaseInUseError;
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ChannelAnswer>;
}

export type DatabaseAccess = { database: Database } | { channel: LocalAdminChannel };

/** A refusal by the server, with its one-line reason. */
export class LocalAdminRefusedError extends Error {}

// Past this, the server is not answering its channel (stalled or stuck): say so instead of hanging.
const CHANNEL_TIMEOUT_MS = 60_000;

async function send(socket: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const client = new Client('http://localhost', {
    socketPath: socket,
    headersTimeout: CHANNEL_TIMEOUT_MS,
    bodyTimeout: CHANNEL_TIMEOUT_MS,
  });
  try {
    const answer = await client.request({
      method,
      path,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: answer.statusCode, body: Buffer.from(await answer.body.arrayBuffer()) };
  } finally {
    await client.close();
  }
}

const NOT_LISTENING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'EACCES', 'EPERM']);

/**
 * Opens the database as `options` say. When the embedded database is held by a running server, returns its
 * channel instead; when it is held by anything else (another CLI command, a server without a channel),
 * the in-use error stands, naming the holder.
 */
export async function openDatabaseOrChannel(options: DatabaseOptions): Promise<DatabaseAccess> {
  try {
    return { database: await createDatabase(options) };
  } catch (error) {
    if (!(error instanceof EmbeddedDatabaseInUseError)) throw error;
    // Where the server placed it; no socket there (or nobody on it) means the holder is not a server.
    const socket = embeddedPaths(options.url, options.dataDir)?.socket;
    if (socket === undefined) throw error;
    const inUse = error;
    return {
      channel: {
        inUse,
        async request(method, path, body) {
          try {
            return await send(socket, method, path, body);
          } catch (cause) {
            const code = (cause as NodeJS.ErrnoException).code;
            if (code !== undefined && NOT_LISTENING.has(code)) throw inUse;
            throw new Error(
              `the running server did not answer its local admin channel (${socket}): ${code ?? String(cause)}`,
            );
          }
        },
      },
    };
  }
}

/** The answer's JSON when it is a success (2xx); otherwise the server's one-line reason, thrown. */
export function expectSuccess<T>(answer: ChannelAnswer): T {
  if (answer.status >= 200 && answer.status < 300) return JSON.parse(answer.body.toString('utf8')) as T;
  let detail = `the server answered ${answer.status}`;
  try {
    detail = (JSON.parse(answer.body.toString('utf8')) as LocalAdminError).detail ?? detail;
  } catch {
    // not JSON: keep the status
  }
  throw new LocalAdminRefusedError(detail);
}
