// Users in PostgreSQL: plain objects in, plain objects out.
import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema, Role } from '../../adapters/postgres/schema.js';

export interface User {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

type Db = Kysely<DatabaseSchema>;

export async function findByUsername(db: Db, username: string): Promise<User | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql<string>`lower(username)`, '=', username.toLowerCase())
    .executeTakeFirst();
}

export async function findById(db: Db, id: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Whether any enabled admin exists: none means the first one is still to be created. */
export async function hasActiveAdmin(db: Db): Promise<boolean> {
  const row = await db
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('disabled', '=', false)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Inserts a user; undefined when the username is taken (case-insensitively). */
export async function create(
  db: Db,
  user: { username: string; password_hash: string; role: Role },
): Promise<User | undefined> {
  // ON CONFLICT instead of catching the unique violation: the transaction stays usable and no error is logged.
  return db
    .insertInto('users')
    .values(user)
    .onConflict((oc) => oc.expression(sql`lower(username)`).doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function update(
  db: Db,
  id: string,
  changes: { role?: Role; disabled?: boolean; password_hash?: string },
): Promise<User | undefined> {
  return db
    .updateTable('users')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export interface PageCursor {
  created_at: string;
  id: string;
}

/**
 * Keyset pagination on (created_at, id): stable under inserts, no OFFSET scans. Each row carries its exact
 * created_at as text (a JavaScript Date would drop the microseconds and repeat rows across pages).
 */
export async function list(
  db: Db,
  limit: number,
  after?: PageCursor,
): Promise<(User & { cursor_created_at: string })[]> {
  let query = db
    .selectFrom('users')
    .selectAll()
    .select(sql<string>`created_at::text`.as('cursor_created_at'))
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit);
  if (after) {
    query = query.where((eb) =>
      eb(
        eb.refTuple('created_at', 'id'),
        '>',
        eb.tuple(sql<Date>`${after.created_at}::timestamptz`, after.id),
      ),
    );
  }
  return query.execute();
}
