// Identity for every request: reads a Bearer token (JWT or API key) or X-API-Key, checks it against the
// local revocation registry, and enforces the route's `config.auth` rule. Owns the identity services, the
// revocation sync and the periodic pruning of dead sessions.
import fp from 'fastify-plugin';
import { sql } from 'kysely';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { forbidden, unauthorized, type AppError } from '../lib/errors.js';
import { ApiKeyService } from '../modules/api-keys/service.js';
import { LoginLimiter } from '../modules/auth/login-limiter.js';
import { PasswordHasher } from '../modules/auth/passwords.js';
import {
  ROLE_SCOPES,
  type AuthRule,
  type Principal,
  type RequestContext,
} from '../modules/auth/principal.js';
import * as sessions from '../modules/auth/repository.js';
import { RevocationRegistry } from '../modules/auth/revocations.js';
import { AuthService } from '../modules/auth/service.js';
import { InvalidTokenError, TokenService } from '../modules/auth/tokens.js';
import { UserService } from '../modules/users/service.js';
import { authEventCounter } from '../observability/auth-metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    identity: {
      auth: AuthService;
      users: UserService;
      apiKeys: ApiKeyService;
      tokens: TokenService;
      revocations: RevocationRegistry;
    };
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    auth?: AuthRule;
  }
}

export type IdentityConfig = Pick<
  Config,
  | 'SECRET_KEY'
  | 'JWT_ISSUER'
  | 'JWT_AUDIENCE'
  | 'JWT_PRIVATE_KEY'
  | 'JWT_KEY_ID'
  | 'JWT_PREVIOUS_PUBLIC_KEYS'
  | 'ACCESS_TOKEN_EXPIRE_MINUTES'
  | 'REFRESH_TOKEN_EXPIRE_DAYS'
  | 'PASSWORD_MIN_LENGTH'
  | 'PASSWORD_MAX_LENGTH'
  | 'LOGIN_MAX_FAILURES'
  | 'LOGIN_FAILURE_WINDOW_SECONDS'
  | 'RATE_LIMIT_REDIS_TIMEOUT_MS'
  | 'ALLOW_SIGNUP'
  | 'REDIS_KEY_PREFIX'
  | 'PASSWORD_HASH_CONCURRENCY'
  | 'PASSWORD_HASH_QUEUE'
>;

// Hourly is plenty: pruning only reclaims space; nothing depends on dead rows being gone sooner.
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
// Any constant shared by every replica; names the "one pruner at a time" advisory lock.
const PRUNE_LOCK_ID = 7_264_001;

export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  return {
    principal: request.principal,
    actorId: request.principal?.userId ?? null,
    ip: request.ip,
    userAgent: typeof agent === 'string' ? agent : null,
    requestId: request.id,
  };
}

function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) throw unauthorized('Authorization must be "Bearer <token>"');
    return match[1];
  }
  const key = request.headers['x-api-key'];
  return typeof key === 'string' && key.length > 0 ? key : undefined;
}

export default fp(
  async (app, opts: { config: IdentityConfig; now?: () => Date }) => {
    const { config } = opts;
    const db = app.database.db;
    const countEvent = authEventCounter(app.metrics.registry);
    const accessTtlSeconds = config.ACCESS_TOKEN_EXPIRE_MINUTES * 60;
    const tokens = await TokenService.create({
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      accessTtlSeconds,
      secretKey: config.SECRET_KEY,
      privateKeyPem: config.JWT_PRIVATE_KEY,
      keyId: config.JWT_KEY_ID,
      previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS,
      now: opts.now,
    });
    const revocations = new RevocationRegistry({
      db,
      redis: app.redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      log: app.log,
      accessTtlSeconds,
      // An embedded PGlite belongs to one process: there is no other replica to catch up with.
      catchUp: app.database.kind === 'postgres',
    });
    const limiter = new LoginLimiter({
      redis: app.redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      maxFailures: config.LOGIN_MAX_FAILURES,
      windowSeconds: config.LOGIN_FAILURE_WINDOW_SECONDS,
      redisTimeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
    });
    const auth = new AuthService({
      db,
      tokens,
      revocations,
      limiter,
      hasher: new PasswordHasher(config.PASSWORD_HASH_CONCURRENCY, config.PASSWORD_HASH_QUEUE),
      passwordPolicy: { minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH },
      refreshTtlSeconds: config.REFRESH_TOKEN_EXPIRE_DAYS * 86_400,
      allowSignup: config.ALLOW_SIGNUP,
      countEvent,
      now: opts.now,
    });
    const apiKeys = new ApiKeyService(db, revocations, countEvent);
    app.decorate('identity', { auth, users: new UserService(db, revocations), apiKeys, tokens, revocations });
    app.decorateRequest('principal', null);

    function rejected(reason: string): AppError {
      countEvent('token_rejected');
      return unauthorized(reason);
    }

    async function authenticate(credential: string): Promise<Principal> {
      if (ApiKeyService.looksLikeKey(credential)) return apiKeys.authenticate(credential);
      let claims;
      try {
        claims = await tokens.verifyAccess(credential);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw rejected(error.message);
        throw error;
      }
      if (revocations.isSessionRevoked(claims.sid)) throw rejected('session revoked');
      if (revocations.isUserDisabled(claims.sub)) throw rejected('user disabled');
      return {
        kind: 'user',
        userId: claims.sub,
        role: claims.role,
        sessionId: claims.sid,
        scopes: new Set(ROLE_SCOPES[claims.role]),
      };
    }

    function authorize(request: FastifyRequest, rule: AuthRule, principal: Principal): void {
      request.principal = principal;
      if (rule.session === true && principal.kind !== 'user')
        throw forbidden('this needs a user session, not an API key');
      if (rule.scope !== undefined && !principal.scopes.has(rule.scope)) {
        throw forbidden(`this needs the "${rule.scope}" scope`, rule.scope);
      }
    }

    // Callback style on purpose: an anonymous call to an open route (the common case of the random API)
    // returns synchronously, without the promise an async hook costs on every request.
    app.addHook('onRequest', (request, _reply, done) => {
      const rule = request.routeOptions.config.auth;
      if (rule === undefined) return done();
      let credential: string | undefined;
      try {
        credential = credentialOf(request);
      } catch (error) {
        countEvent('token_rejected'); // an Authorization header that is not "Bearer <token>"
        return done(error as Error);
      }
      if (credential === undefined) {
        return rule.anonymous === true ? done() : done(unauthorized('credentials required', false));
      }
      authenticate(credential).then((principal) => {
        try {
          authorize(request, rule, principal);
          done();
        } catch (error) {
          done(error as Error);
        }
      }, done);
    });

    let pruner: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      // Needs the schema, so it waits for migrations when they run at start; readiness covers the gap.
      await auth.warmUp();
    });
    app.decorate('startIdentity', async () => {
      await revocations.start();
      pruner = setInterval(() => void prune(), PRUNE_INTERVAL_MS);
      pruner.unref();
    });
    async function prune(): Promise<void> {
      try {
        await db.transaction().execute(async (trx) => {
          const { rows } = await sql<{
            locked: boolean;
          }>`select pg_try_advisory_xact_lock(${PRUNE_LOCK_ID}) as locked`.execute(trx);
          if (rows[0]?.locked !== true) return; // another replica is pruning
          const removed = await sessions.prune(trx, accessTtlSeconds);
          app.log.info(removed, 'pruned expired sessions and refresh tokens');
        });
      } catch (error) {
        app.log.warn({ err: error }, 'pruning failed');
      }
    }
    app.decorate('pruneIdentity', prune);
    app.addHook('onClose', async () => {
      clearInterval(pruner);
      await revocations.stop();
    });
  },
  { name: 'authentication', dependencies: ['metrics', 'database', 'redis'] },
);

declare module 'fastify' {
  interface FastifyInstance {
    /** Loads revocation state and starts its sync; needs the identity tables (after migrations). */
    startIdentity: () => Promise<void>;
    pruneIdentity: () => Promise<void>;
  }
}
