// Access-token verification against the attacks that matter: alg none, algorithm confusion (HS256 signed
// with the public key), tampering, wrong audience or issuer, expiry on a fake clock; EdDSA signing with a
// JWKS and key rotation; password rehash at login.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { hash } from '@node-rs/argon2';
import { buildApp, startApp } from '../../src/app.js';
import pino from 'pino';
import { ARGON2_PARAMS } from '../../src/modules/auth/passwords.js';
import { buildTestApp, testConfig } from '../helpers/app.js';
import { PASSWORD, bearer, createUser, login } from '../helpers/identity.js';

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const decode = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

function ed25519() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk: publicKey.export({ format: 'jwk' }),
  };
}

describe('HS256 (the default)', () => {
  let app: App;
  const clock = { now: new Date() };
  let token: string;

  beforeAll(async () => {
    const config = testConfig({ SECRET_KEY: 'k'.repeat(40) });
    app = await buildApp(config, {
      logger: pino({ level: 'silent' }),
      clock: { now: () => clock.now.getTime() },
    });
    await app.ready();
    await startApp(app, config);
    const user = await createUser(app);
    token = (await login(app, user.username)).access_token;
  });
  afterAll(async () => {
    await app.close();
  });

  const me = (t: string) => app.inject({ url: '/v1/auth/me', headers: bearer(t) });

  it('carries iss, aud, sub, role, jti, sid, iat and exp', () => {
    const claims = decode(token);
    expect(claims).toMatchObject({ iss: 'reliability-api', aud: 'reliability-api', role: 'user' });
    for (const claim of ['sub', 'jti', 'sid', 'iat', 'exp']) expect(claims[claim], claim).toBeDefined();
    expect((claims.exp as number) - (claims.iat as number)).toBe(15 * 60);
  });

  it('accepts the token as issued', async () => {
    expect((await me(token)).statusCode).toBe(200);
  });

  it('refuses alg none', async () => {
    const [, payload] = token.split('.');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
    expect((await me(none)).statusCode).toBe(401);
  });

  it('refuses a tampered payload and a tampered signature', async () => {
    const [header, , signature] = token.split('.');
    const admin = `${header}.${b64({ ...decode(token), role: 'admin' })}.${signature}`;
    expect((await me(admin)).statusCode).toBe(401);
    const flipped = token.slice(0, -2) + (token.endsWith('A') ? 'BB' : 'AA');
    expect((await me(flipped)).statusCode).toBe(401);
  });

  it('refuses a token signed with the right key but the wrong audience or issuer', async () => {
    const sign = (claims: Record<string, unknown>) => {
      const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
      return `${head}.${createHmac('sha256', 'k'.repeat(40)).update(head).digest('base64url')}`;
    };
    const claims = decode(token);
    expect((await me(sign({ ...claims, jti: 'same-key-ok' }))).statusCode).toBe(200); // the forging works...
    expect((await me(sign({ ...claims, aud: 'someone-else' }))).statusCode).toBe(401); // ...but aud is pinned
    expect((await me(sign({ ...claims, iss: 'someone-else' }))).statusCode).toBe(401);
  });

  it('when the clock passes exp (plus the allowed skew), then the token is refused', async () => {
    const user = await createUser(app);
    const fresh = (await login(app, user.username)).access_token;
    expect((await me(fresh)).statusCode).toBe(200); // cached as verified
    clock.now = new Date(clock.now.getTime() + (15 * 60 + 10) * 1000);
    expect((await me(fresh)).statusCode).toBe(200); // within the 30 s skew
    clock.now = new Date(clock.now.getTime() + 60 * 1000);
    const expired = await me(fresh);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().detail).toMatch(/expired/);
  });
});

describe('EdDSA with a JWKS', () => {
  const current = ed25519();
  const previous = ed25519();
  let app: App;

  beforeAll(async () => {
    ({ app } = await buildTestApp({
      JWT_PRIVATE_KEY: current.privatePem,
      JWT_KEY_ID: 'current',
      JWT_PREVIOUS_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...previous.publicJwk, kid: 'previous' }] }),
    }));
  });
  afterAll(async () => {
    await app.close();
  });

  it('signs with EdDSA and the kid, and serves both public keys at /.well-known/jwks.json', async () => {
    const user = await createUser(app);
    const token = (await login(app, user.username)).access_token;
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({
      alg: 'EdDSA',
      kid: 'current',
    });
    const jwks = (await app.inject({ url: '/.well-known/jwks.json' })).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual(['current', 'previous']);
    expect(JSON.stringify(jwks)).not.toContain('"d"'); // never the private part
  });

  it('accepts a token signed by the previous key during a rotation', async () => {
    const user = await createUser(app);
    const { app: old } = await buildTestApp({ JWT_PRIVATE_KEY: previous.privatePem, JWT_KEY_ID: 'previous' });
    try {
      // Same claims, issued by the old key: the new instance verifies it via the previous public key.
      const session = await old.identity.tokens.signAccess({
        userId: user.id,
        role: 'user',
        sessionId: '00000000-0000-4000-8000-000000000000',
      });
      expect((await app.inject({ url: '/v1/auth/me', headers: bearer(session.token) })).statusCode).toBe(200);
    } finally {
      await old.close();
    }
  });

  it('refuses an HS256 token signed with the public key (algorithm confusion)', async () => {
    const user = await createUser(app);
    const claims = decode((await login(app, user.username)).access_token);
    const head = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'current' })}.${b64(claims)}`;
    const forged = `${head}.${createHmac('sha256', current.publicPem).update(head).digest('base64url')}`;
    expect((await app.inject({ url: '/v1/auth/me', headers: bearer(forged) })).statusCode).toBe(401);
  });

  it('when tokens are HS256, then there is no JWKS (404)', async () => {
    const { app: hs } = await buildTestApp();
    try {
      expect((await hs.inject({ url: '/.well-known/jwks.json' })).statusCode).toBe(404);
    } finally {
      await hs.close();
    }
  });
});

describe('password hashing', () => {
  it('when a stored hash uses weaker parameters, then a successful login upgrades it', async () => {
    const { app } = await buildTestApp();
    try {
      const user = await createUser(app);
      const weak = await hash(PASSWORD, { ...ARGON2_PARAMS, memoryCost: 8192, timeCost: 1 });
      await sql`update users set password_hash = ${weak} where id = ${user.id}`.execute(app.database.db);
      await login(app, user.username);
      const { rows } = await sql<{
        password_hash: string;
      }>`select password_hash from users where id = ${user.id}`.execute(app.database.db);
      expect(rows[0]?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    } finally {
      await app.close();
    }
  });
});
