// The idempotency_keys table. PostgreSQL, not Redis: a replay must survive restarts and failovers as long as
// the data it protects, which lives in the same database; and the database is always present (Redis is
// optional here). A running request holds its row as a lease (lock_id, expires_at); its final answer
// replaces the lease with the stored answer until the key's TTL.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { idempotencyKeyInUse } from '../../lib/errors.js';
import type { DatabaseSchema } from './schema.js';

export interface StoredAnswer {
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: Uint8Array | null;
}

export type ClaimOutcome = { kind: 'claimed'; lockId: string } | { kind: 'existing'; row: StoredAnswer };

/** A key held by one request: who holds it, under which lease. */
export interface Lease {
  scope: string;
  keyHash: string;
  lockId: string;
}

// Up to 10,000 rows per sweep, in short batches so no sweep holds locks or runs unbounded.
const PURGE_BATCH = 500;
const PURGE_MAX_BATCHES = 20;

export class IdempotencyStore {
  constructor(
    private readonly db: Kysely<DatabaseSchema>,
    private readonly options: { leaseSeconds: number; ttlSeconds: number },
  ) {}

  /** Takes the key for this request, or returns the row already under it (running or answered). */
  async claim(scope: string, keyHash: string, fingerprint: string): Promise<ClaimOutcome> {
    const { db } = this;
    // Three tries: the row we collided with can expire or be released between our statements.
    for (let attempt = 0; attempt < 3; attempt++) {
      const lockId = randomUUID();
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({
          scope,
          key_hash: keyHash,
          fingerprint,
          lock_id: lockId,
          expires_at: sql<Date>`now() + make_interval(secs => ${this.options.leaseSeconds})`,
        })
        .onConflict((oc) => oc.columns(['scope', 'key_hash']).doNothing())
        .returning('lock_id')
        .executeTakeFirst();
      if (inserted !== undefined) return { kind: 'claimed', lockId };
      const row = await db
        .selectFrom('idempotency_keys')
        .select(['fingerprint', 'status', 'headers', 'body'])
        .select(sql<boolean>`expires_at <= now()`.as('expired'))
        .where('scope', '=', scope)
        .where('key_hash', '=', keyHash)
        .executeTakeFirst();
      if (row === undefined) continue;
      if (!row.expired) return { kind: 'existing', row };
      await db
        .deleteFrom('idempotency_keys')
        .where('scope', '=', scope)
        .where('key_hash', '=', keyHash)
        .where('expires_at', '<=', sql<Date>`now()`)
        .execute();
    }
    throw idempotencyKeyInUse();
  }

  /** Extends a running request's lease by another lease period. */
  async renew(lease: Lease): Promise<void> {
    await this.db
      .updateTable('idempotency_keys')
      .set({ expires_at: sql<Date>`now() + make_interval(secs => ${this.options.leaseSeconds})` })
      .where('scope', '=', lease.scope)
      .where('key_hash', '=', lease.keyHash)
      .where('lock_id', '=', lease.lockId)
      .execute();
  }

  /** Frees the key: the request had no storable outcome (a 5xx, a streamed body). */
  async release(lease: Lease): Promise<void> {
    await this.db
      .deleteFrom('idempotency_keys')
      .where('scope', '=', lease.scope)
      .where('key_hash', '=', lease.keyHash)
      .where('lock_id', '=', lease.lockId)
      .execute();
  }

  /** Keeps the final answer (sealed by the caller) for the key's TTL; false when the lease had expired. */
  async store(
    lease: Lease,
    answer: { status: number; headers: Record<string, string>; body: Buffer },
  ): Promise<boolean> {
    const updated = await this.db
      .updateTable('idempotency_keys')
      .set({
        status: answer.status,
        headers: JSON.stringify(answer.headers),
        body: answer.body,
        lock_id: null,
        expires_at: sql<Date>`now() + make_interval(secs => ${this.options.ttlSeconds})`,
      })
      .where('scope', '=', lease.scope)
      .where('key_hash', '=', lease.keyHash)
      .where('lock_id', '=', lease.lockId)
      .executeTakeFirst();
    return updated.numUpdatedRows !== 0n;
  }

  /** Deletes expired keys, in bounded batches; resolves with how many went. */
  async purgeExpired(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
      // skip locked: replicas sweeping at the same moment take different rows instead of waiting.
      const result = await sql`
        delete from idempotency_keys where (scope, key_hash) in (
          select scope, key_hash from idempotency_keys where expires_at <= now()
          order by expires_at limit ${PURGE_BATCH} for update skip locked)`.execute(this.db);
      const removed = Number(result.numAffectedRows ?? 0n);
      total += removed;
      if (removed < PURGE_BATCH) break;
    }
    return total;
  }
}
