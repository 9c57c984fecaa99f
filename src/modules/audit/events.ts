// One call for a security event that is both audited (a row in audit_events, who did what) and counted
// (auth_events_total, how often): the two never drift apart, and a service cannot write one and forget the other.
import type { Kysely } from 'kysely';
import type { DatabaseSchema } from '../../adapters/postgres/schema.js';
import type { AuthEvent, CountAuthEvent } from '../../observability/auth-metrics.js';
import { record, type AuditContext, type AuditEventName } from './repository.js';

export class SecurityEvents {
  constructor(
    private readonly db: Kysely<DatabaseSchema>,
    /** Counts an event without auditing it (a refused token: no subject worth a row). */
    readonly count: CountAuthEvent,
  ) {}

  /** Audits the event, then counts it. */
  async record(
    event: AuthEvent & AuditEventName,
    context: AuditContext,
    subjectId: string | null,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    await record(this.db, event, context, subjectId, details);
    this.count(event);
  }
}
