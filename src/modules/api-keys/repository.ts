// API keys: stored as a SHA-256 hash (the key is 256 random bits, so a slow hash adds nothing) and a short
// prefix that lets a person recognise a key in a list.
import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema, Role } from '../../adapters/postgres/schema.js';

type Db = Kysely<DatabaseSchema>;

export interface ApiKey {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export interface ApiKeyWithOwner extends ApiKey {
  owner_role: Role;
  owner_disabled: boolean;
}

const columns = [
  'id',
  'user_id',
  'name',
  'prefix',
  'scopes',
  'created_at',
  'expires_at',
  'revoked_at',
] as const;

export async function create(
  db: Db,
  key: {
    user_id: string;
    name: string;
    prefix: string;
    key_hash: string;
    scopes: string[];
    expires_at: Date | null;
  },
): Promise<ApiKey> {
  return db
    .insertInto('api_keys')
    .values({ ...key, revoked_at: null })
    .returning([...columns])
    .executeTakeFirstOrThrow();
}

export async function listForUser(db: Db, userId: string): Promise<ApiKey[]> {
  return db
    .selectFrom('api_keys')
    .select([...columns])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute();
}

export async function findById(db: Db, id: string): Promise<ApiKey | undefined> {
  return db
    .selectFrom('api_keys')
    .select([...columns])
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function findByHash(db: Db, keyHash: string): Promise<ApiKeyWithOwner | undefined> {
  return db
    .selectFrom('api_keys as k')
    .innerJoin('users as u', 'u.id', 'k.user_id')
    .select([
      'k.id',
      'k.user_id',
      'k.name',
      'k.prefix',
      'k.scopes',
      'k.created_at',
      'k.expires_at',
      'k.revoked_at',
      'u.role as owner_role',
      'u.disabled as owner_disabled',
    ])
    .where('k.key_hash', '=', keyHash)
    .executeTakeFirst();
}

/** Revokes keys; returns the ids that were live. */
export async function revoke(db: Db, where: { id?: string; userId?: string }): Promise<string[]> {
  let query = db
    .updateTable('api_keys')
    .set({ revoked_at: sql<Date>`now()` })
    .where('revoked_at', 'is', null);
  if (where.id !== undefined) query = query.where('id', '=', where.id);
  if (where.userId !== undefined) query = query.where('user_id', '=', where.userId);
  const rows = await query.returning('id').execute();
  return rows.map((r) => r.id);
}
