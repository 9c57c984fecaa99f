// The identity module wired into the app: its services (accounts, sessions and tokens, API keys), the
// revocation registry every replica keeps in sync, and the hourly pruning of dead sessions. Decorates
// `app.identity`; the authentication plugin reads credentials against it on every request.
import fp from 'fastify-plugin';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import { every, type PeriodicJob } from '../../lib/periodic.js';
import { authEventCounter } from '../../observability/auth-metrics.js';
import { SecurityEvents } from '../audit/events.js';
import { ApiKeyService } from '../api-keys/service.js';
import { UserService } from '../users/service.js';
import { LoginLimiter } from './login-limiter.js';
import { PasswordHasher } from './passwords.js';
import { pruneExclusive } from './repository.js';
import { RevocationRegistry } from './revocations.js';
import { AuthService } from './service.js';
import { TokenService } from './tokens.js';

declare module 'fastify' {
  interface FastifyInstance {
    identity: {
      auth: AuthService;
      users: UserService;
      apiKeys: ApiKeyService;
      tokens: TokenService;
      revocations: RevocationRegistry;
      /** Audits and counts security events (audit_events, auth_events_total). */
      events: SecurityEvents;
    };
    /** Loads revocation state and starts its sync; needs the identity tables (after migrations). */
    startIdentity: () => Promise<void>;
    pruneIdentity: () => Promise<void>;
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
  | 'REDIS_KEY_PREFIX'
  | 'PASSWORD_HASH_CONCURRENCY'
  | 'PASSWORD_HASH_QUEUE'
>;

// Hourly is plenty: pruning only reclaims space; nothing depends on dead rows being gone sooner.
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export default fp(
  async (app, opts: { config: IdentityConfig; clock: Clock }) => {
    const { config } = opts;
    const now = () => new Date(opts.clock.now());
    const db = app.database.db;
    const events = new SecurityEvents(db, authEventCounter(app.metrics.registry));
    const accessTtlSeconds = config.ACCESS_TOKEN_EXPIRE_MINUTES * 60;
    const tokens = await TokenService.create({
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      accessTtlSeconds,
      secretKey: config.SECRET_KEY,
      privateKeyPem: config.JWT_PRIVATE_KEY,
      keyId: config.JWT_KEY_ID,
      previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS,
      now,
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
      events,
      now,
    });
    const apiKeys = new ApiKeyService(db, revocations, events);
    app.decorate('identity', {
      auth,
      users: new UserService(db, revocations),
      apiKeys,
      tokens,
      revocations,
      events,
    });

    async function prune(): Promise<void> {
      try {
        const removed = await pruneExclusive(db, accessTtlSeconds);
        if (removed !== undefined) app.log.info(removed, 'pruned expired sessions and refresh tokens');
      } catch (error) {
        app.log.warn({ err: error }, 'pruning failed');
      }
    }
    app.decorate('pruneIdentity', prune);

    let pruner: PeriodicJob | undefined;
    app.addHook('onReady', async () => {
      // Needs the schema, so it waits for migrations when they run at start; readiness covers the gap.
      await auth.warmUp();
    });
    app.decorate('startIdentity', async () => {
      await revocations.start();
      pruner = every(PRUNE_INTERVAL_MS, prune);
    });
    app.addHook('onClose', async () => {
      await pruner?.stop();
      await revocations.stop();
    });
  },
  { name: 'identity', dependencies: ['metrics', 'database', 'redis'] },
);
