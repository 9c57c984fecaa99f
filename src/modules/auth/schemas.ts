// Schemas of the sign-in endpoints (login, refresh, logout, me, password, register) and the JWKS document.
import { Type } from '@sinclair/typebox';
import { Password, Role, Username, Uuid } from '../users/schemas.js';

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

export const Jwks = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) });
