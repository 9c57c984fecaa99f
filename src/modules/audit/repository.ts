// The security audit log: append-only rows, read newest first with keyset pagination on id.
import type { Kysely, Selectable } from 'kysely';
import type { AuditEventsTable, DatabaseSchema } from '../../adapters/postgres/schema.js';

export const AUDIT_EVENTS = [
  'login_succeeded',
  'login_failed',
  'refresh_reuse_detected',
  'logout',
  'password_changed',
  'user_created',
  'role_changed',
  'user_disabled',
  'user_enabled',
  'api_key_created',
  'api_key_revoked',
] as const;
export type AuditEventName = (typeof AUDIT_EVENTS)[number];

export interface AuditContext {
  actorId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

/** A stored event; the bigserial id travels as a string (it may exceed 2^53). */
export type AuditEvent = Omit<Selectable<AuditEventsTable>, 'id'> & { id: string };

type Db = Kysely<DatabaseSchema>;

export async function record(
  db: Db,
  event: AuditEventName,
  context: AuditContext,
  subjectId: string | null,
  details: Record<string, unknown> = {},
): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      event,
      actor_id: context.actorId,
      subject_id: subjectId,
      ip: context.ip,
      user_agent: context.userAgent?.slice(0, 512) ?? null,
      request_id: context.requestId,
      details: JSON.stringify(details),
    })
    .execute();
}

export async function list(db: Db, limit: number, beforeId?: string): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(limit);
  if (beforeId !== undefined) query = query.where('id', '<', beforeId);
  const rows = await query.execute();
  return rows.map((r) => ({ ...r, id: String(r.id) }));
}
