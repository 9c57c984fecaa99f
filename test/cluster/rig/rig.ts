// The scale-out rig: a private PostgreSQL and Redis, three replicas of the built service configured as
// production is (each in its own network namespace), and nginx in front with the shipped site file.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closedPort } from '../../helpers/services.js';
import { runToEnd } from '../../helpers/process.js';
import type { Credentials } from './load.js';
import { ReplicaNetwork } from './network.js';
import { Nginx } from './nginx.js';
import { PrivatePostgres } from './postgres.js';
import { PrivateRedis } from './redis.js';
import { Replica } from './replica.js';

const UNLIMITED = { limit: 1_000_000, window_seconds: 1, burst: 1_000_000 };
export const ADMIN = { username: 'rig-admin', password: 'rig-admin-password-1' };

export interface LimitedKey {
  id: string;
  key: string;
}

export class Rig {
  private constructor(
    readonly postgres: PrivatePostgres,
    readonly redis: PrivateRedis,
    readonly replicas: Replica[],
    readonly nginx: Nginx,
    readonly credentials: Credentials,
    /** Keys with a limit of `limit` per hour (burst `limit`), each used by one measurement only. */
    readonly limited: { check: LimitedKey[]; afterRedis: LimitedKey[] },
    readonly limit: number,
  ) {}

  static async start(options: { limit: number; log?: (line: string) => void }): Promise<Rig> {
    const log = options.log ?? (() => {});
    const tag = process.pid % 10_000;
    const networks = [1, 2, 3].map((i) => ReplicaNetwork.create(tag, i));
    const listen = ['127.0.0.1', ...networks.map((n) => n.hostAddress)];
    const postgres = await PrivatePostgres.create(await closedPort(), listen);
    await postgres.createDatabase('rig');
    const redis = await PrivateRedis.create(await closedPort(), listen);
    log(
      `postgres :${postgres.port}, redis :${redis.port}, replicas ${networks.map((n) => n.replicaAddress).join(', ')}`,
    );

    const secrets = {
      SECRET_KEY: randomBytes(48).toString('base64url'),
      JWT_PRIVATE_KEY: generateKeyPairSync('ed25519')
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString(),
    };
    const envFor = (host: string, limits: Record<string, unknown>): Record<string, string> => ({
      ENVIRONMENT: 'production',
      ...secrets,
      DATABASE_URL: postgres.url('rig', host),
      REDIS_URL: redis.url(host),
      RATE_LIMIT_STORAGE_URI: redis.url(host),
      LOG_LEVEL: 'info',
      TRUST_PROXY: 'true',
      // The mix has anonymous draws, which a public deployment allows (the default refuses them).
      ANONYMOUS_ACCESS: 'true',
      APP_COMMIT: 'rig',
      RATE_LIMITS: JSON.stringify({
        api: { anonymous: UNLIMITED, user: UNLIMITED, api_key: UNLIMITED, admin: UNLIMITED },
        auth: { anonymous: UNLIMITED },
        ...limits,
      }),
    });

    // As the Kubernetes Job does: migrations once, before any replica starts; then the first admin.
    const local = envFor('127.0.0.1', {});
    const migrated = await runToEnd(['migrate', 'up'], local, 60_000);
    if (migrated.code !== 0) throw new Error(`migrate up failed: ${migrated.stderr}`);
    const created = await runToEnd(
      ['create-user', '--username', ADMIN.username, '--role', 'admin'],
      local,
      30_000,
      {
        input: `${ADMIN.password}\n`,
      },
    );
    if (created.code !== 0) throw new Error(`create-user failed: ${created.stderr}`);

    // The limited keys must exist before the replicas that know their policy start: one replica makes them.
    const first = new Replica(1, networks[0]!, envFor(networks[0]!.hostAddress, {}));
    await first.start();
    const setup = await session(first.url);
    // Three per check: a measurement during which a replica decided locally (a Redis call over its deadline)
    // proves nothing about sharing, and is made again on a fresh key (see sharedLimit in scenarios.ts).
    const limited = { check: [] as LimitedKey[], afterRedis: [] as LimitedKey[] };
    for (const attempt of [1, 2, 3]) {
      limited.check.push(await createKey(first.url, setup.accessToken, `limit-check-${attempt}`));
      limited.afterRedis.push(await createKey(first.url, setup.accessToken, `limit-after-redis-${attempt}`));
    }
    const steady = await createKey(first.url, setup.accessToken, 'steady-load');
    await first.terminate();

    const policy = { limit: options.limit, window_seconds: 3_600, burst: options.limit };
    const apiKeys = Object.fromEntries([...limited.check, ...limited.afterRedis].map((k) => [k.id, policy]));
    const replicas = networks.map(
      (n, i) => new Replica(i + 1, n, envFor(n.hostAddress, { api_keys: apiKeys })),
    );
    await Promise.all(replicas.map((r) => r.start()));
    const nginx = await Nginx.create(
      replicas.map((r) => r.upstream),
      await closedPort(),
    );
    log(`nginx ${nginx.url}`);

    const sessions = await Promise.all(Array.from({ length: 6 }, () => session(nginx.url)));
    // The reading session is not one the load refreshes (a refresh rotates its session's tokens).
    const reader = await session(nginx.url);
    const credentials: Credentials = {
      accessToken: reader.accessToken,
      apiKey: steady.key,
      refreshTokens: sessions.map((s) => s.refreshToken),
      login: () => session(nginx.url),
    };
    return new Rig(postgres, redis, replicas, nginx, credentials, limited, options.limit);
  }
}

export async function session(baseUrl: string): Promise<{ accessToken: string; refreshToken: string }> {
  const response = await fetch(`${baseUrl}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 200) throw new Error(`login: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { access_token: string; refresh_token: string };
  return { accessToken: body.access_token, refreshToken: body.refresh_token };
}

export async function createKey(baseUrl: string, accessToken: string, name: string): Promise<LimitedKey> {
  const response = await fetch(`${baseUrl}/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ name, scopes: ['random:read'] }),
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 201) throw new Error(`create key: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { id: string; key: string };
  return { id: body.id, key: body.key };
}
