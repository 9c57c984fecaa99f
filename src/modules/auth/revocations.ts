// What every replica must refuse at once, without a database or Redis round trip per request: revoked
// sessions, disabled users and revoked API keys, held in local memory. A revocation is written to
// PostgreSQL (the truth), applied locally, and announced on Redis pub/sub so other replicas apply it in
// milliseconds; a catch-up read every 500 ms applies anything a replica missed (Redis down, message lost,
// no Redis configured), so a revocation reaches every replica within a second either way.
import type { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import type { DatabaseSchema } from '../../adapters/postgres/schema.js';
import type { Log } from '../../lib/log.js';
import { every, type PeriodicJob } from '../../lib/periodic.js';

const CATCH_UP_INTERVAL_MS = 500;
// A revocation's transaction may commit a little after its now(): re-reading this far back is harmless
// (applying a revocation twice changes nothing) and closes that gap.
const CATCH_UP_LOOKBACK_SECONDS = 10;

export type RevocationKind = 'session' | 'user_disabled' | 'user_enabled' | 'api_key';
export interface RevocationMessage {
  kind: RevocationKind;
  ids: string[];
}

export interface RevocationOptions {
  db: Kysely<DatabaseSchema>;
  /** Publisher connection (the app's Redis); undefined when Redis is not configured. */
  redis: Redis | undefined;
  /** REDIS_KEY_PREFIX: the channel is `<prefix>revocations`. */
  keyPrefix: string;
  log: Log;
  /** How long a revoked session must be remembered: as long as an access token can live. */
  accessTtlSeconds: number;
  /** Poll the database for revocations made elsewhere (false when no other process can make any). */
  catchUp?: boolean;
}

interface Row {
  kind: RevocationKind;
  id: string;
}

export class RevocationRegistry {
  readonly #sessions = new Map<string, number>(); // session id -> when it can be forgotten (ms)
  readonly #disabledUsers = new Set<string>();
  readonly #listeners = new Set<(message: RevocationMessage) => void>();
  #subscriber: Redis | undefined;
  #catchUpJob: PeriodicJob | undefined;
  #watermark: Date | undefined;
  #syncing: Promise<void> | undefined;

  constructor(private readonly options: RevocationOptions) {}

  private get channel(): string {
    return `${this.options.keyPrefix}revocations`;
  }

  isSessionRevoked(sessionId: string): boolean {
    return this.#sessions.has(sessionId);
  }

  isUserDisabled(userId: string): boolean {
    return this.#disabledUsers.has(userId);
  }

  /** Called for every revocation applied here, whatever its source (API keys use it to evict their cache). */
  onRevocation(listener: (message: RevocationMessage) => void): void {
    this.#listeners.add(listener);
  }

  /** Applies a revocation already written to the database, here and (through Redis) on every replica. */
  async announce(message: RevocationMessage): Promise<void> {
    if (message.ids.length === 0) return;
    this.apply(message);
    if (this.options.redis?.status !== 'ready') return; // the catch-up read carries it instead
    try {
      await this.options.redis.publish(this.channel, JSON.stringify(message));
    } catch (error) {
      this.options.log.warn({ err: error }, 'revocation publish failed; replicas catch up from the database');
    }
  }

  private apply(message: RevocationMessage): void {
    const forgetAt = Date.now() + (this.options.accessTtlSeconds + 60) * 1000;
    for (const id of message.ids) {
      if (message.kind === 'session') this.#sessions.set(id, forgetAt);
      else if (message.kind === 'user_disabled') this.#disabledUsers.add(id);
      else if (message.kind === 'user_enabled') this.#disabledUsers.delete(id);
    }
    for (const listener of this.#listeners) listener(message);
  }

  /** Loads the current state, subscribes to announcements and starts the catch-up loop. */
  async start(): Promise<void> {
    const { db } = this.options;
    const disabled = await db.selectFrom('users').select('id').where('disabled', '=', true).execute();
    for (const { id } of disabled) this.#disabledUsers.add(id);
    const recent = await sql<{ id: string; now: Date }>`
      select id::text as id, now() as now from sessions
      where revoked_at > now() - make_interval(secs => ${this.options.accessTtlSeconds + 60})`.execute(db);
    this.apply({ kind: 'session', ids: recent.rows.map((r) => r.id) });
    this.#watermark = (await sql<{ now: Date }>`select now() as now`.execute(db)).rows[0]?.now ?? new Date();

    if (this.options.redis !== undefined) {
      const subscriber = this.options.redis.duplicate({ enableOfflineQueue: true });
      this.#subscriber = subscriber;
      subscriber.on('message', (_channel: string, payload: string) => this.onMessage(payload));
      subscriber.on('error', () => {
        // reported by the main client; the catch-up loop covers the gap
      });
      subscriber.subscribe(this.channel).catch(() => undefined);
    }
    if (this.options.catchUp !== false) {
      // catchUp() logs its own failures and never rejects.
      this.#catchUpJob = every(CATCH_UP_INTERVAL_MS, () => this.catchUp());
    }
  }

  private onMessage(payload: string): void {
    try {
      const message = JSON.parse(payload) as RevocationMessage;
      if (Array.isArray(message.ids)) this.apply(message);
    } catch {
      this.options.log.warn('ignored a malformed revocation message');
    }
  }

  /** One round trip for everything revoked, disabled or re-enabled since the last read. */
  catchUp(): Promise<void> {
    this.#syncing ??= this.readChanges().finally(() => (this.#syncing = undefined));
    return this.#syncing;
  }

  private async readChanges(): Promise<void> {
    const since = new Date((this.#watermark ?? new Date(0)).getTime() - CATCH_UP_LOOKBACK_SECONDS * 1000);
    try {
      const { rows } = await sql<Row & { now: Date }>`
        with changes as (
          select 'session' as kind, id::text as id from sessions where revoked_at > ${since}
          union all
          select case when disabled then 'user_disabled' else 'user_enabled' end, id::text from users
            where updated_at > ${since}
          union all
          select 'api_key', id::text from api_keys where revoked_at > ${since}
        )
        select kind, id, now() as now from changes
        union all select 'watermark', '', now()`.execute(this.options.db);
      const grouped = new Map<RevocationKind, string[]>();
      for (const row of rows) {
        if ((row.kind as string) === 'watermark') this.#watermark = new Date(row.now);
        else {
          const ids = grouped.get(row.kind);
          if (ids === undefined) grouped.set(row.kind, [row.id]);
          else ids.push(row.id);
        }
      }
      for (const [kind, ids] of grouped) this.apply({ kind, ids });
      this.forgetExpired();
    } catch (error) {
      this.options.log.warn({ err: error }, 'revocation catch-up failed; retrying');
    }
  }

  private forgetExpired(): void {
    const now = Date.now();
    for (const [id, forgetAt] of this.#sessions) if (forgetAt < now) this.#sessions.delete(id);
  }

  async stop(): Promise<void> {
    await this.#catchUpJob?.stop();
    await this.#syncing;
    this.#subscriber?.disconnect(false);
  }
}
