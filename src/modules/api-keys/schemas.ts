// Schemas of the API-key endpoints.
import { Type } from '@sinclair/typebox';
import { SCOPES } from '../auth/principal.js';
import { Uuid } from '../users/schemas.js';

const Scope = Type.Unsafe<(typeof SCOPES)[number]>({ type: 'string', enum: [...SCOPES] });

export const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    expires_at: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const ApiKey = Type.Object({
  id: Uuid,
  name: Type.String(),
  prefix: Type.String({
    description: 'The start of the key, to recognise it; the key itself is never shown again.',
  }),
  scopes: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const CreatedKey = Type.Composite([
  ApiKey,
  Type.Object({ key: Type.String({ description: 'Shown once.' }) }),
]);

export const ApiKeyList = Type.Object({ data: Type.Array(ApiKey) });
