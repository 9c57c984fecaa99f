// API keys: created with a subset of the owner's scopes, shown once, stored as a hash, revoked at once on
// every replica. Authentication by key is cached (keyed by the key's hash) and the cache is evicted by the
// revocation registry, so a revoked key stops working everywhere within the registry's second.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { DatabaseSchema } from '../../adapters/postgres/schema.js';
import {
  InvalidParametersError,
  forbidden,
  notFound,
  unauthorized,
  type AppError,
} from '../../lib/errors.js';
import type { SecurityEvents } from '../audit/events.js';
import { ROLE_SCOPES, SCOPES, type Principal, type RequestContext, type Scope } from '../auth/principal.js';
import type { RevocationRegistry } from '../auth/revocations.js';
import { sha256 } from '../auth/tokens.js';
import * as keys from './repository.js';

export const KEY_PREFIX = 'rak_';
// How long a verified key is trusted without reading it again: revocations evict sooner, this bounds
// what a missed eviction could cost and lets expiry and owner changes be seen.
const KEY_CACHE_TTL_MS = 60_000;
const KEY_CACHE_SIZE = 10_000;

export interface CreatedKey extends keys.ApiKey {
  key: string;
}

export class ApiKeyService {
  readonly #cache = new LRUCache<string, keys.ApiKeyWithOwner>({
    max: KEY_CACHE_SIZE,
    ttl: KEY_CACHE_TTL_MS,
  });

  constructor(
    private readonly db: Kysely<DatabaseSchema>,
    private readonly revocations: RevocationRegistry,
    private readonly events: SecurityEvents,
  ) {
    revocations.onRevocation((message) => {
      if (message.kind !== 'api_key' && message.kind !== 'user_disabled') return;
      const ids = new Set(message.ids);
      for (const [hash, key] of this.#cache.entries()) {
        if (ids.has(message.kind === 'api_key' ? key.id : key.user_id)) this.#cache.delete(hash);
      }
    });
  }

  static looksLikeKey(credential: string): boolean {
    return credential.startsWith(KEY_PREFIX);
  }

  async create(
    ctx: RequestContext,
    input: { name: string; scopes: string[]; expires_at?: string | undefined },
  ): Promise<CreatedKey> {
    const principal = ctx.principal!;
    const allowed = ROLE_SCOPES[principal.role];
    const wanted = [...new Set(input.scopes)];
    const unknown = wanted.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length > 0) {
      throw new InvalidParametersError([
        { name: 'scopes', in: 'body', reason: `unknown scope(s): ${unknown.join(', ')}` },
      ]);
    }
    const beyond = wanted.filter((s) => !allowed.includes(s as Scope));
    if (beyond.length > 0) throw forbidden(`your role cannot grant: ${beyond.join(', ')}`, beyond[0]);
    const expiresAt = input.expires_at === undefined ? null : new Date(input.expires_at);
    if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
      throw new InvalidParametersError([{ name: 'expires_at', in: 'body', reason: 'must be in the future' }]);
    }
    const prefix = randomBytes(4).toString('hex');
    const key = `${KEY_PREFIX}${prefix}_${randomBytes(32).toString('base64url')}`;
    const created = await keys.create(this.db, {
      user_id: principal.userId,
      name: input.name,
      prefix: `${KEY_PREFIX}${prefix}`,
      key_hash: sha256(key),
      scopes: wanted,
      expires_at: expiresAt,
    });
    await this.events.record('api_key_created', ctx, principal.userId, {
      api_key_id: created.id,
      scopes: wanted,
    });
    return { ...created, key };
  }

  list(principal: Principal): Promise<keys.ApiKey[]> {
    return keys.listForUser(this.db, principal.userId);
  }

  async revoke(ctx: RequestContext, id: string): Promise<void> {
    const principal = ctx.principal!;
    const key = await keys.findById(this.db, id);
    // Someone else's key is "not found" to a non-admin: its existence is not theirs to learn.
    if (key === undefined || (key.user_id !== principal.userId && principal.role !== 'admin')) {
      throw notFound(`no API key ${id}`);
    }
    const revoked = await keys.revoke(this.db, { id });
    await this.revocations.announce({ kind: 'api_key', ids: [id] });
    if (revoked.length > 0) {
      await this.events.record('api_key_revoked', ctx, key.user_id, { api_key_id: id });
    }
  }

  #refused(reason: string): AppError {
    this.events.count('api_key_auth_failed');
    return unauthorized(reason);
  }

  /** The principal behind a presented key, or a 401. */
  async authenticate(presented: string): Promise<Principal> {
    const hash = sha256(presented);
    let key = this.#cache.get(hash);
    if (key === undefined) {
      key = await keys.findByHash(this.db, hash);
      if (key === undefined) throw this.#refused('unknown API key');
      this.#cache.set(hash, key);
    }
    if (key.revoked_at !== null) throw this.#refused('API key revoked');
    if (key.expires_at !== null && key.expires_at.getTime() <= Date.now())
      throw this.#refused('API key expired');
    if (key.owner_disabled || this.revocations.isUserDisabled(key.user_id))
      throw this.#refused('API key owner disabled');
    const ownerScopes = ROLE_SCOPES[key.owner_role];
    return {
      kind: 'api_key',
      userId: key.user_id,
      role: key.owner_role,
      apiKeyId: key.id,
      scopes: new Set(key.scopes.filter((s): s is Scope => ownerScopes.includes(s as Scope))),
    };
  }
}
