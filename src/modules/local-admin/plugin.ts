// The local admin channel of a server that owns an embedded database: PGlite is single-process, so while
// `serve` holds the data directory, the CLI's create-user, migrate status and backup reach the database
// through this server instead of opening the files themselves. HTTP on a Unix socket beside the data
// directory (mode 0600, in a 0700 directory): the file permissions are the authentication, as for
// PostgreSQL's own socket, so only the machine user who runs the server can use it.
import { chmod, unlink } from 'node:fs/promises';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { migrationStatus } from '../../adapters/postgres/migrator.js';
import { AppError, InvalidParametersError } from '../../lib/errors.js';
import {
  LOCAL_ADMIN_PATHS,
  type CreateUserRequest,
  type CreatedUser,
  type LocalAdminError,
  type MigrationStatusAnswer,
} from './protocol.js';

// Linux's sun_path holds 108 bytes including the terminator; a longer path cannot be bound at all.
const MAX_SOCKET_PATH_BYTES = 107;

const CreateUserBody = {
  type: 'object',
  required: ['username', 'password', 'role'],
  additionalProperties: false,
  properties: {
    username: { type: 'string', pattern: '^[A-Za-z0-9._@-]{3,64}$' },
    password: { type: 'string', minLength: 1, maxLength: 4096 },
    role: { type: 'string', enum: ['admin', 'user'] },
  },
} as const;

function refuse(reply: FastifyReply, status: number, detail: string): FastifyReply {
  return reply.code(status).send({ status, detail } satisfies LocalAdminError);
}

function channelRoutes(app: FastifyInstance, channel: FastifyInstance): void {
  channel.setErrorHandler((error, request, reply) => {
    if (error instanceof AppError) return refuse(reply, error.statusCode, error.message);
    if (error instanceof InvalidParametersError) return refuse(reply, 400, error.message);
    const validation = (error as { validation?: unknown }).validation;
    if (validation !== undefined) return refuse(reply, 400, (error as Error).message);
    request.log.error({ err: error }, 'local admin request failed');
    return refuse(reply, 500, 'the server failed; its log has the details');
  });
  // Until migrations have run the tables may not exist; the CLI says so and the operator retries.
  channel.addHook('onRequest', async (_request, reply) => {
    if (app.lifecycle.phase === 'starting') return refuse(reply, 503, 'the server is still starting; retry');
  });

  channel.post<{ Body: CreateUserRequest }>(
    LOCAL_ADMIN_PATHS.users,
    { schema: { body: CreateUserBody } },
    async (request, reply) => {
      const { username, password, role } = request.body;
      const context = {
        principal: null,
        actorId: null,
        ip: null,
        userAgent: 'cli (local admin channel)',
        requestId: request.id,
      };
      const user = await app.identity.auth.createUser(context, username, password, role);
      app.log.info({ user_id: user.id, role }, 'user created through the local admin channel');
      return reply.code(201).send({ id: user.id, username: user.username, role } satisfies CreatedUser);
    },
  );

  channel.get(LOCAL_ADMIN_PATHS.migrations, async (): Promise<MigrationStatusAnswer> => {
    const states = await migrationStatus(app.database.db);
    app.log.info('migration status read through the local admin channel');
    return states.map((m) => ({ ...m, applied_at: m.applied_at?.toISOString() ?? null }));
  });

  channel.get(LOCAL_ADMIN_PATHS.backup, async (_request, reply) => {
    const dump = await app.database.dumpEmbedded!();
    app.log.info({ bytes: dump.size }, 'backup taken through the local admin channel');
    reply.type('application/gzip');
    return Buffer.from(await dump.arrayBuffer());
  });
}

export default fp(
  async (app) => {
    const paths = app.database.embedded;
    if (paths === undefined || app.database.dumpEmbedded === undefined) return;
    if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH_BYTES) {
      app.log.warn(
        { socket: paths.socket },
        'local admin channel off: its socket path is too long; CLI commands refuse while this server runs',
      );
      return;
    }
    // Each command logs one line of its own; Fastify's per-request lines would only repeat them.
    const channel = Fastify({
      loggerInstance: app.log.child({ channel: 'local-admin' }),
      logController: new LogController({ disableRequestLogging: true }),
    });
    channelRoutes(app, channel);

    app.addHook('onListen', async () => {
      // We hold the data directory's lock, so a socket file left here is a dead server's.
      await unlink(paths.socket).catch(() => undefined);
      await channel.listen({ path: paths.socket });
      // The directory is 0700 already; this keeps the socket private even where it is not.
      await chmod(paths.socket, 0o600);
    });
    // preClose: stop taking commands before the app's own resources begin to close.
    app.addHook('preClose', async () => {
      await channel.close();
      await unlink(paths.socket).catch(() => undefined);
    });
  },
  { name: 'local-admin', dependencies: ['database', 'lifecycle', 'identity'] },
);
