// Schemas of the identity endpoints (auth, users, API keys, audit).
import { Type } from '@sinclair/typebox';
import { SCOPES } from './principal.js';

export const Username = Type.String({
  minLength: 3,
  maxLength: 64,
  pattern: '^[A-Za-z0-9._@-]+$',
  description: '3 to 64 letters, digits, dots, underscores, @ or dashes; unique regardless of case.',
});
// The policy's bounds (PASSWORD_MIN_LENGTH..MAX) are checked by the service; this only caps the input size.
export const Password = Type.String({ minLength: 1, maxLength: 4096 });
export const Role = Type.Union([Type.Literal('admin'), Type.Literal('user')]);
export const Uuid = Type.String({ format: 'uuid' });

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 256 }),
    password: Password,
    // OAuth2 password-grant clients send these fields form-encoded.
    grant_type: Type.Optional(Type.Literal('password')),
    scope: Type.Optional(Type.String({ maxLength: 256 })),
    client_id: Type.Optional(Type.String({ maxLength: 256 })),
    client_secret: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

export const TokenPair = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refresh_token: Type.String(),
  refresh_expires_in: Type.Integer({
    description: 'Seconds until the session (and its refresh token) expires.',
  }),
});

export const RefreshBody = Type.Object(
  { refresh_token: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false },
);
export const LogoutBody = Type.Union([
  Type.Object(
    { refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })) },
    { additionalProperties: false },
  ),
  Type.Null(),
]);

export const Me = Type.Object({
  id: Uuid,
  username: Type.String(),
  role: Role,
  created_at: Type.String({ format: 'date-time' }),
});

export const PasswordBody = Type.Object(
  { current_password: Password, new_password: Password },
  { additionalProperties: false },
);

export const RegisterBody = Type.Object(
  { username: Username, password: Password },
  { additionalProperties: false },
);

export const PublicUser = Type.Object({
  id: Uuid,
  username: Type.String(),
  role: Role,
  disabled: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});

export const CreateUserBody = Type.Object(
  { username: Username, password: Password, role: Type.Optional(Role) },
  { additionalProperties: false },
);

export const UserPatch = Type.Object(
  { role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);

export const UserPage = Type.Object({
  data: Type.Array(PublicUser),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const IdParams = Type.Object({ id: Uuid });

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

export const Jwks = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) });
