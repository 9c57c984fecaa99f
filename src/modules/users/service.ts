// User administration: list, read, change role, disable. Disabling or demoting a user takes effect on every
// replica at once: their sessions (and, when disabling, their API keys) are revoked and announced.
import type { Kysely } from 'kysely';
import type { DatabaseSchema, Role } from '../../adapters/postgres/schema.js';
import { InvalidParametersError, conflict, forbidden, notFound } from '../../lib/errors.js';
import * as keys from '../api-keys/repository.js';
import * as audit from '../audit/repository.js';
import type { RequestContext } from '../auth/principal.js';
import * as sessions from '../auth/repository.js';
import type { RevocationRegistry } from '../auth/revocations.js';
import * as users from './repository.js';

export interface PublicUser {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  created_at: string;
}

export const toPublic = (u: users.User): PublicUser => ({
  id: u.id,
  username: u.username,
  role: u.role,
  disabled: u.disabled,
  created_at: new Date(u.created_at).toISOString(),
});

const encodeCursor = (u: { cursor_created_at: string; id: string }) =>
  Buffer.from(JSON.stringify({ created_at: u.cursor_created_at, id: u.id })).toString('base64url');

function decodeCursor(cursor: string): users.PageCursor {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as users.PageCursor;
    if (
      typeof parsed.id === 'string' &&
      /^[0-9a-f-]{36}$/.test(parsed.id) &&
      !Number.isNaN(Date.parse(parsed.created_at))
    ) {
      return parsed;
    }
  } catch {
    // fall through
  }
  throw new InvalidParametersError([
    { name: 'cursor', in: 'query', reason: 'is not a cursor this API returned' },
  ]);
}

export class UserService {
  constructor(
    private readonly db: Kysely<DatabaseSchema>,
    private readonly revocations: RevocationRegistry,
  ) {}

  async list(
    limit: number,
    cursor: string | undefined,
  ): Promise<{ data: PublicUser[]; next_cursor: string | null }> {
    const rows = await users.list(
      this.db,
      limit + 1,
      cursor === undefined ? undefined : decodeCursor(cursor),
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: page.map(toPublic), next_cursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  async get(ctx: RequestContext, id: string): Promise<PublicUser> {
    const principal = ctx.principal!;
    if (principal.role !== 'admin' && principal.userId !== id)
      throw forbidden('admins only, or yourself', 'admin');
    const user = await users.findById(this.db, id);
    if (user === undefined) throw notFound(`no user ${id}`);
    return toPublic(user);
  }

  async update(
    ctx: RequestContext,
    id: string,
    changes: { role?: Role; disabled?: boolean },
  ): Promise<PublicUser> {
    const principal = ctx.principal!;
    if (id === principal.userId && (changes.disabled === true || changes.role === 'user')) {
      throw conflict('an admin cannot disable or demote their own account');
    }
    const before = await users.findById(this.db, id);
    if (before === undefined) throw notFound(`no user ${id}`);
    const after = await users.update(this.db, id, changes);
    if (after === undefined) throw notFound(`no user ${id}`);

    if (changes.disabled === true && !before.disabled) {
      const revokedSessions = await sessions.revokeSessions(this.db, { userId: id }, 'user_disabled');
      const revokedKeys = await keys.revoke(this.db, { userId: id });
      await this.revocations.announce({ kind: 'user_disabled', ids: [id] });
      await this.revocations.announce({ kind: 'session', ids: revokedSessions });
      await this.revocations.announce({ kind: 'api_key', ids: revokedKeys });
      await audit.record(this.db, 'user_disabled', ctx, id, {
        sessions_revoked: revokedSessions.length,
        api_keys_revoked: revokedKeys.length,
      });
    } else if (changes.disabled === false && before.disabled) {
      await this.revocations.announce({ kind: 'user_enabled', ids: [id] });
      await audit.record(this.db, 'user_enabled', ctx, id);
    }
    if (changes.role !== undefined && changes.role !== before.role) {
      // Access tokens carry the role: end the sessions so the new role applies now, not at token expiry.
      const revoked = await sessions.revokeSessions(this.db, { userId: id }, 'role_changed');
      await this.revocations.announce({ kind: 'session', ids: revoked });
      await audit.record(this.db, 'role_changed', ctx, id, { from: before.role, to: changes.role });
    }
    return toPublic(after);
  }
}
