// Sign-in and sessions: login, refresh with rotation and reuse detection, logout, password change, signup.
import type { Kysely } from 'kysely';
import type { DatabaseSchema, Role } from '../../adapters/postgres/schema.js';
import { InvalidParametersError, tooManyRequests, unauthorized } from '../../lib/errors.js';
import type { SecurityEvents } from '../audit/events.js';
import { createAccount } from '../users/accounts.js';
import * as users from '../users/repository.js';
import type { LoginLimiter } from './login-limiter.js';
import { needsRehash, passwordProblems, type PasswordHasher, type PasswordPolicy } from './passwords.js';
import type { RequestContext } from './principal.js';
import * as sessions from './repository.js';
import type { RevocationRegistry } from './revocations.js';
import { opaqueSecret, sha256, type TokenService } from './tokens.js';

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

export interface AuthServiceOptions {
  db: Kysely<DatabaseSchema>;
  tokens: TokenService;
  revocations: RevocationRegistry;
  limiter: LoginLimiter;
  hasher: PasswordHasher;
  passwordPolicy: PasswordPolicy;
  refreshTtlSeconds: number;
  /** auth_events_total */
  events: SecurityEvents;
  now?: () => Date;
}

const BAD_CREDENTIALS = 'invalid username or password';

export class AuthService {
  #dummyHash: Promise<string> | undefined;

  constructor(private readonly o: AuthServiceOptions) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** A real hash to verify against when the user does not exist, so both cases cost the same time. */
  private dummyHash(): Promise<string> {
    this.#dummyHash ??= this.o.hasher.hash(opaqueSecret());
    return this.#dummyHash;
  }

  async warmUp(): Promise<void> {
    await this.dummyHash();
  }

  private async issue(userId: string, role: Role, sessionId?: string): Promise<TokenPair> {
    const { db, tokens, refreshTtlSeconds } = this.o;
    const expiresAt = new Date(this.now().getTime() + refreshTtlSeconds * 1000);
    const sid = sessionId ?? (await sessions.createSession(db, userId, expiresAt));
    const refresh = opaqueSecret();
    await sessions.insertRefreshToken(db, sid, sha256(refresh), expiresAt);
    const access = await tokens.signAccess({ userId, role, sessionId: sid });
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      refresh_token: refresh,
      refresh_expires_in: refreshTtlSeconds,
    };
  }

  async login(username: string, password: string, ctx: RequestContext): Promise<TokenPair> {
    const { db, limiter } = this.o;
    const ip = ctx.ip ?? 'unknown';
    const wait = await limiter.retryAfterSeconds(username, ip);
    if (wait > 0) {
      this.o.events.count('login_locked');
      throw tooManyRequests('too many failed logins; try again later', wait);
    }

    const user = await users.findByUsername(db, username);
    const valid = await this.o.hasher.verify(user?.password_hash ?? (await this.dummyHash()), password);
    if (user === undefined || !valid || user.disabled) {
      await limiter.recordFailure(username, ip);
      const reason = user === undefined ? 'unknown_user' : valid ? 'disabled' : 'wrong_password';
      await this.o.events.record('login_failed', ctx, user?.id ?? null, {
        username: username.slice(0, 64),
        reason,
      });
      throw unauthorized(BAD_CREDENTIALS, false);
    }
    await limiter.recordSuccess(username, ip);
    if (needsRehash(user.password_hash)) {
      await users.update(db, user.id, { password_hash: await this.o.hasher.hash(password) });
    }
    const pair = await this.issue(user.id, user.role);
    await this.o.events.record('login_succeeded', { ...ctx, actorId: user.id }, user.id);
    return pair;
  }

  async refresh(refreshToken: string, ctx: RequestContext): Promise<TokenPair> {
    const { db, revocations } = this.o;
    const rejected = (reason: string) => {
      this.o.events.count('refresh_rejected');
      return unauthorized(reason);
    };
    const state = await sessions.findRefreshToken(db, sha256(refreshToken));
    if (state === undefined) throw rejected('invalid refresh token');
    if (state.session_revoked_at !== null) throw rejected('session revoked');
    if (state.expires_at.getTime() <= this.now().getTime()) throw rejected('refresh token expired');

    const user = await users.findById(db, state.user_id);
    if (user === undefined || user.disabled) throw rejected('user disabled');

    const rotated =
      state.rotated_at === null &&
      (await db.transaction().execute(async (trx) => {
        if (!(await sessions.markRotated(trx, state.id))) return undefined;
        // Rotation and its successor commit together: a crash cannot leave a session without a live token.
        return new AuthService({ ...this.o, db: trx }).issue(user.id, user.role, state.session_id);
      }));
    if (!rotated) {
      // A rotated token came back: either a thief or the victim holds a copy. Kill the whole family.
      const revoked = await sessions.revokeSessions(db, { sessionId: state.session_id }, 'refresh_reuse');
      await revocations.announce({ kind: 'session', ids: [state.session_id, ...revoked] });
      await this.o.events.record('refresh_reuse_detected', { ...ctx, actorId: null }, user.id, {
        session_id: state.session_id,
      });
      throw unauthorized('refresh token reuse detected; the session is revoked');
    }
    this.o.events.count('token_refreshed');
    return rotated;
  }

  async logout(ctx: RequestContext, refreshToken: string | undefined): Promise<void> {
    const { db, revocations } = this.o;
    const principal = ctx.principal!;
    const sessionIds = [principal.sessionId!];
    if (refreshToken !== undefined) {
      const other = await sessions.findRefreshToken(db, sha256(refreshToken));
      if (other !== undefined && other.user_id === principal.userId) sessionIds.push(other.session_id);
    }
    for (const sessionId of new Set(sessionIds)) await sessions.revokeSessions(db, { sessionId }, 'logout');
    await revocations.announce({ kind: 'session', ids: [...new Set(sessionIds)] });
    await this.o.events.record('logout', ctx, principal.userId);
  }

  async changePassword(ctx: RequestContext, current: string, next: string): Promise<void> {
    const { db, revocations } = this.o;
    const principal = ctx.principal!;
    const user = await users.findById(db, principal.userId);
    if (user === undefined || !(await this.o.hasher.verify(user.password_hash, current))) {
      throw new InvalidParametersError([
        { name: 'current_password', in: 'body', reason: 'is not the current password' },
      ]);
    }
    this.requireAcceptable(next, user.username, 'new_password');
    await users.update(db, user.id, { password_hash: await this.o.hasher.hash(next) });
    const revoked = await sessions.revokeSessions(
      db,
      { userId: user.id, exceptSessionId: principal.sessionId },
      'password_changed',
    );
    await revocations.announce({ kind: 'session', ids: revoked });
    await this.o.events.record('password_changed', ctx, user.id, { sessions_revoked: revoked.length });
  }

  requireAcceptable(password: string, username: string, field: string): void {
    const problems = passwordProblems(password, username, this.o.passwordPolicy);
    if (problems.length > 0) {
      throw new InvalidParametersError([{ name: field, in: 'body', reason: problems.join('; ') }]);
    }
  }

  createUser(ctx: RequestContext, username: string, password: string, role: Role): Promise<users.User> {
    const rules = { passwordPolicy: this.o.passwordPolicy, hash: (p: string) => this.o.hasher.hash(p) };
    return createAccount(this.o.db, rules, { username, password, role }, ctx);
  }

  async register(ctx: RequestContext, username: string, password: string): Promise<users.User> {
    return this.createUser(ctx, username, password, 'user');
  }
}
