// Schemas of the users endpoints, and the identity primitives (username, password, role, ids) the other
// identity modules share.
import { Type } from '@sinclair/typebox';

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
