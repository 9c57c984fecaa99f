// Identity helpers for tests: users with unique names, logins, and authorization headers.
import { randomBytes } from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Role } from '../../src/adapters/postgres/schema.js';

export const PASSWORD = 'correct horse battery staple';
const system = { principal: null, actorId: null, ip: '127.0.0.1', userAgent: 'test', requestId: 'test' };

export const uniqueName = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

export async function createUser(app: App, role: Role = 'user', password = PASSWORD) {
  const username = uniqueName(role);
  const user = await app.identity.auth.createUser(system, username, password, role);
  return { id: user.id, username, password };
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  refresh_expires_in: number;
  token_type: string;
}

export async function login(
  app: App,
  username: string,
  password = PASSWORD,
  ip = '127.0.0.1',
): Promise<Tokens> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username, password },
    remoteAddress: ip,
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return response.json<Tokens>();
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
