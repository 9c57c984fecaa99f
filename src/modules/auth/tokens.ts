// Access tokens (JWT) and opaque secrets. Signing is EdDSA (Ed25519) when a private key is configured, with
// a kid and previous public keys still accepted during a rotation; HS256 with SECRET_KEY otherwise.
// Verification pins the algorithm, issuer and audience, and is cached: a verified token is kept, keyed by
// itself, until it expires, so the hot path of an authenticated request is a map lookup.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { LRUCache } from 'lru-cache';

export type Role = 'admin' | 'user';

export interface AccessClaims {
  sub: string;
  role: Role;
  sid: string;
  jti: string;
  exp: number;
  iat: number;
}

export interface TokenServiceOptions {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  secretKey: string;
  privateKeyPem?: string | undefined;
  keyId?: string | undefined;
  previousPublicKeys?: string | undefined;
  /** Injected clock (tests); defaults to the system clock. */
  now?: () => Date;
}

export class InvalidTokenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidTokenError';
  }
}

// Clock skew tolerated between replicas (and the clients' view of exp): NTP keeps hosts well within this.
const CLOCK_TOLERANCE_SECONDS = 30;
// Bounded: a flood of distinct valid tokens cannot grow memory without limit; misses just verify again.
const VERIFIED_CACHE_SIZE = 50_000;

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

/** A fresh opaque secret with 256 bits of entropy, URL-safe. */
export const opaqueSecret = (): string => randomBytes(32).toString('base64url');

interface SigningKey {
  key: KeyObject | Uint8Array;
  kid?: string;
}

export class TokenService {
  readonly algorithm: 'EdDSA' | 'HS256';
  readonly #sign: SigningKey;
  readonly #verifyKey: Uint8Array | JWTVerifyGetKey;
  readonly #jwks: JSONWebKeySet | undefined;
  readonly #cache = new LRUCache<string, AccessClaims>({ max: VERIFIED_CACHE_SIZE, ttlAutopurge: false });

  private constructor(
    private readonly options: TokenServiceOptions,
    keys: {
      algorithm: 'EdDSA' | 'HS256';
      sign: SigningKey;
      verify: Uint8Array | JWTVerifyGetKey;
      jwks?: JSONWebKeySet;
    },
  ) {
    this.algorithm = keys.algorithm;
    this.#sign = keys.sign;
    this.#verifyKey = keys.verify;
    this.#jwks = keys.jwks;
  }

  static async create(options: TokenServiceOptions): Promise<TokenService> {
    if (options.privateKeyPem === undefined) {
      const secret = new TextEncoder().encode(options.secretKey);
      return new TokenService(options, { algorithm: 'HS256', sign: { key: secret }, verify: secret });
    }
    const privateKey = createPrivateKey(options.privateKeyPem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('JWT_PRIVATE_KEY must be an Ed25519 key');
    const publicJwk: JWK = await exportJWK(createPublicKey(privateKey));
    const kid = options.keyId ?? (await calculateJwkThumbprint(publicJwk));
    const previous = options.previousPublicKeys
      ? (JSON.parse(options.previousPublicKeys) as JSONWebKeySet).keys.filter((k) => k.kid !== kid)
      : [];
    const jwks: JSONWebKeySet = {
      keys: [
        { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' },
        ...previous.map((k) => ({ ...k, alg: 'EdDSA', use: 'sig' })),
      ],
    };
    return new TokenService(options, {
      algorithm: 'EdDSA',
      sign: { key: privateKey, kid },
      verify: createLocalJWKSet(jwks),
      jwks,
    });
  }

  /** The public keys, when tokens are signed asymmetrically. */
  jwks(): JSONWebKeySet | undefined {
    return this.#jwks;
  }

  private nowSeconds(): number {
    return Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
  }

  async signAccess(subject: {
    userId: string;
    role: Role;
    sessionId: string;
  }): Promise<{ token: string; expiresIn: number }> {
    const iat = this.nowSeconds();
    const header =
      this.#sign.kid === undefined ? { alg: this.algorithm } : { alg: this.algorithm, kid: this.#sign.kid };
    const token = await new SignJWT({ role: subject.role, sid: subject.sessionId })
      .setProtectedHeader({ ...header, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject.userId)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.options.accessTtlSeconds)
      .sign(this.#sign.key);
    return { token, expiresIn: this.options.accessTtlSeconds };
  }

  /** Verified claims, or InvalidTokenError. Revocation is the caller's check (it changes after issue). */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const now = this.nowSeconds();
    const cached = this.#cache.get(token);
    if (cached !== undefined) {
      if (cached.exp + CLOCK_TOLERANCE_SECONDS > now) return cached;
      this.#cache.delete(token);
      throw new InvalidTokenError('token expired');
    }
    let payload: Record<string, unknown>;
    try {
      const options = {
        algorithms: [this.algorithm],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'jti', 'exp', 'iat'],
        currentDate: new Date(now * 1000),
      };
      const verified =
        this.#verifyKey instanceof Uint8Array
          ? await jwtVerify(token, this.#verifyKey, options)
          : await jwtVerify(token, this.#verifyKey, options);
      payload = verified.payload;
    } catch (error) {
      throw new InvalidTokenError(error instanceof Error ? error.message : 'invalid token');
    }
    const { sub, role, sid, jti, exp, iat } = payload;
    if (
      typeof sub !== 'string' ||
      (role !== 'admin' && role !== 'user') ||
      typeof sid !== 'string' ||
      typeof jti !== 'string' ||
      typeof exp !== 'number' ||
      typeof iat !== 'number'
    ) {
      throw new InvalidTokenError('token claims are incomplete');
    }
    const claims: AccessClaims = { sub, role, sid, jti, exp, iat };
    this.#cache.set(token, claims, { ttl: Math.max(1, exp + CLOCK_TOLERANCE_SECONDS - now) * 1000 });
    return claims;
  }
}
