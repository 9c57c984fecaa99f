// Sessions (one per login: a refresh-token family) and their refresh tokens.
import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema } from '../../adapters/postgres/schema.js';

type Db = Kysely<DatabaseSchema>;

export async function createSession(db: Db, userId: string, expiresAt: Date): Promise<string> {
  const row = await db
    .insertInto('sessions')
    .values({ user_id: userId, expires_at: expiresAt, revoked_at: null, revoked_reason: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function insertRefreshToken(
  db: Db,
  sessionId: string,
  tokenHash: string,
  expiresAt: Date,
): Promise<void> {
  await db
    .insertInto('refresh_tokens')
    .values({ session_id: sessionId, token_hash: tokenHash, expires_at: expiresAt, rotated_at: null })
    .execute();
}

export interface RefreshTokenState {
  id: string;
  session_id: string;
  user_id: string;
  expires_at: Date;
  rotated_at: Date | null;
  session_revoked_at: Date | null;
}

export async function findRefreshToken(db: Db, tokenHash: string): Promise<RefreshTokenState | undefined> {
  return db
    .selectFrom('refresh_tokens as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .select([
      't.id',
      't.session_id',
      's.user_id',
      't.expires_at',
      't.rotated_at',
      's.revoked_at as session_revoked_at',
    ])
    .where('t.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

/**
 * Marks a refresh token used. Atomic: of two concurrent rotations of one token exactly one gets true; the
 * other sees a token that was already rotated, which is what a replayed (stolen) token looks like.
 */
export async function markRotated(db: Db, tokenId: string): Promise<boolean> {
  const result = await db
    .updateTable('refresh_tokens')
    .set({ rotated_at: sql<Date>`now()` })
    .where('id', '=', tokenId)
    .where('rotated_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Revokes sessions; returns the ids that were live (so their access tokens can be refused everywhere). */
export async function revokeSessions(
  db: Db,
  where: { sessionId?: string; userId?: string; exceptSessionId?: string },
  reason: string,
): Promise<string[]> {
  let query = db
    .updateTable('sessions')
    .set({ revoked_at: sql<Date>`now()`, revoked_reason: reason })
    .where('revoked_at', 'is', null);
  if (where.sessionId !== undefined) query = query.where('id', '=', where.sessionId);
  if (where.userId !== undefined) query = query.where('user_id', '=', where.userId);
  if (where.exceptSessionId !== undefined) query = query.where('id', '!=', where.exceptSessionId);
  const rows = await query.returning('id').execute();
  return rows.map((r) => r.id);
}

export async function sessionOwner(db: Db, sessionId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('sessions')
    .select('user_id')
    .where('id', '=', sessionId)
    .executeTakeFirst();
  return row?.user_id;
}

/**
 * Deletes what can never be used again: expired refresh tokens, and sessions that expired or were revoked
 * longer ago than an access token lives (nothing can still present them).
 */
export async function prune(db: Db, accessTtlSeconds: number): Promise<{ tokens: number; sessions: number }> {
  const tokens = await db
    .deleteFrom('refresh_tokens')
    .where('expires_at', '<', sql<Date>`now()`)
    .executeTakeFirst();
  const cutoff = sql<Date>`now() - make_interval(secs => ${accessTtlSeconds * 2})`;
  const sessions = await db
    .deleteFrom('sessions')
    .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)]))
    .executeTakeFirst();
  return { tokens: Number(tokens.numDeletedRows), sessions: Number(sessions.numDeletedRows) };
}

// Any constant shared by every replica; names the "one pruner at a time" advisory lock.
const PRUNE_LOCK_ID = 7_264_001;

/**
 * prune() by one replica at a time: under a transaction-scoped advisory lock, so replicas that wake together
 * do not delete the same rows twice. Resolves undefined when another replica holds the lock.
 */
export async function pruneExclusive(
  db: Db,
  accessTtlSeconds: number,
): Promise<{ tokens: number; sessions: number } | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{
      locked: boolean;
    }>`select pg_try_advisory_xact_lock(${PRUNE_LOCK_ID}) as locked`.execute(trx);
    if (rows[0]?.locked !== true) return undefined;
    return prune(trx, accessTtlSeconds);
  });
}
