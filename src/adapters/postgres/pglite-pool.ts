// Presents an embedded PGlite database as the small pg-Pool-shaped interface Kysely's PostgresDialect
// drives, so the embedded default and real PostgreSQL share one dialect, one SQL and one migrator.
// Hand-written because the maintained Kysely PGlite dialects pin PGlite < 0.5.
import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

type Command = PostgresQueryResult<unknown>['command'];

// PGlite does not report the command tag; Kysely only needs it to report affected rows of writes.
function commandOf(sql: string): Command {
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
  return verb === 'INSERT' || verb === 'UPDATE' || verb === 'DELETE' || verb === 'MERGE' ? verb : 'SELECT';
}

/**
 * PGlite is a single session, so "connections" are handed out one at a time: a transaction holds the
 * session from connect() to release() and other queries queue behind it.
 */
export class PGlitePool implements PostgresPool {
  #tail: Promise<void> = Promise.resolve();
  #ended = false;
  #inUse = 0;
  #waiting = 0;

  constructor(private readonly pglite: PGlite) {}

  /** The session's state as pg.Pool reports its own: held (0 or 1) and callers queued behind it. */
  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#waiting;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#ended) throw new Error('PGlite pool has ended');
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const previous = this.#tail;
    this.#tail = previous.then(() => turn);
    this.#waiting++;
    try {
      await previous;
    } finally {
      this.#waiting--;
    }
    this.#inUse = 1;
    const pglite = this.pglite;
    const handBack = () => {
      this.#inUse = 0;
      release();
    };
    let released = false;
    const client = {
      async query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        const result = await pglite.query<R>(sql, [...parameters]);
        return {
          command: commandOf(sql),
          rowCount: result.affectedRows ?? result.rows.length,
          rows: result.rows,
        };
      },
      release(): void {
        if (released) return;
        released = true;
        handBack();
      },
    };
    return client as PostgresPoolClient;
  }

  /**
   * The data directory as a gzipped tar. It waits for its turn like a connection, so no transaction is
   * open while it runs, and checkpoints first, so the copy's data files are current, not only its WAL.
   */
  async dumpDataDir(): Promise<Blob> {
    const client = await this.connect();
    try {
      await this.pglite.exec('CHECKPOINT');
      return await this.pglite.dumpDataDir('gzip');
    } finally {
      client.release();
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    await this.#tail;
    await this.pglite.close();
  }
}
