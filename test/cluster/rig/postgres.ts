// A private PostgreSQL 15 cluster in a temporary directory, on its own port, that scenarios may stop and
// start without touching the machine's shared server. As root, initdb and pg_ctl run as `postgres`
// (both refuse root).
import { chownSync, mkdtempSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { onCleanup, runChecked } from './processes.js';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

function asPostgres(command: string, args: string[]): string {
  if (process.getuid?.() !== 0) return runChecked(command, args);
  return runChecked('runuser', ['-u', 'postgres', '--', command, ...args]);
}

export class PrivatePostgres {
  private constructor(
    readonly directory: string,
    readonly port: number,
    /** Addresses it listens on: 127.0.0.1 and the host side of every replica's network. */
    readonly listen: string[],
  ) {}

  private get data() {
    return path.join(this.directory, 'data');
  }

  /** A connection URL for `database` as seen from `host` (one of the listen addresses). */
  url(database: string, host = '127.0.0.1'): string {
    return `postgres://postgres@${host}:${this.port}/${database}`;
  }

  static async create(port: number, listen: string[]): Promise<PrivatePostgres> {
    const directory = mkdtempSync(path.join(tmpdir(), 'rig-postgres-'));
    const server = new PrivatePostgres(directory, port, listen);
    onCleanup(() => server.destroy());
    if (process.getuid?.() === 0) {
      const uid = Number(runChecked('id', ['-u', 'postgres']).trim());
      const gid = Number(runChecked('id', ['-g', 'postgres']).trim());
      chownSync(directory, uid, gid);
    }
    asPostgres(path.join(BIN, 'initdb'), ['-D', server.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    // The replicas connect from their own networks (10.x.y.2).
    appendFileSync(path.join(server.data, 'pg_hba.conf'), 'host all all 10.0.0.0/8 trust\n');
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    asPostgres(path.join(BIN, 'pg_ctl'), [
      '-D',
      this.data,
      '-l',
      path.join(this.directory, 'log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${this.port} -k ${this.directory} -c listen_addresses='${this.listen.join(',')}' -c max_connections=200`,
      'start',
    ]);
  }

  /** `fast`: what a clean shutdown or a failover does to clients (their sessions are terminated). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    asPostgres(path.join(BIN, 'pg_ctl'), ['-D', this.data, '-m', mode, '-w', 'stop']);
  }

  async query<R extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []) {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.query('postgres', `create database "${name}"`);
  }

  destroy(): void {
    try {
      asPostgres(path.join(BIN, 'pg_ctl'), ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Not running.
    }
    rmSync(this.directory, { recursive: true, force: true });
  }
}
