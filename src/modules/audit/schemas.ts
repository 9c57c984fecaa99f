// Schemas of the audit-log endpoint.
import { Type } from '@sinclair/typebox';
import { Uuid } from '../users/schemas.js';

export const AuditEvent = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  event: Type.String(),
  actor_id: Type.Union([Uuid, Type.Null()]),
  subject_id: Type.Union([Uuid, Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  request_id: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
});

export const AuditQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,19}$', description: 'The next_cursor of the previous page.' }),
    ),
  },
  { additionalProperties: false },
);

export const AuditPage = Type.Object({
  data: Type.Array(AuditEvent),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});
