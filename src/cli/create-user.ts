// `create-user --username NAME --role admin|user`: the password is read from standard input (piped) or
// typed at a prompt that does not echo it; never from argv, where `ps` and shell history would show it.
// While a server owns the embedded database, the user is created through that server.
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { migrateUp, pendingMigrations } from '../adapters/postgres/migrator.js';
import type { Role } from '../adapters/postgres/schema.js';
import type { Config } from '../config/schema.js';
import * as audit from '../modules/audit/repository.js';
import { hashPassword, passwordProblems } from '../modules/auth/passwords.js';
import * as users from '../modules/users/repository.js';
import type { CreateUserRequest, CreatedUser } from '../modules/local-admin/protocol.js';
import { LOCAL_ADMIN_PATHS } from '../modules/local-admin/protocol.js';
import type { Log } from '../observability/logger.js';
import { LocalAdminRefusedError, expectSuccess, openDatabaseOrChannel } from './local-admin.js';

export class CreateUserError extends Error {}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = '';
    for await (const chunk of process.stdin) data += String(chunk);
    return data.replace(/\r?\n$/, '');
  }
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  process.stderr.write('password: ');
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

export async function createUserCommand(
  config: Config,
  args: { username: string; role: Role },
  log: Log,
  print: (line: string) => void,
): Promise<void> {
  if (!/^[A-Za-z0-9._@-]{3,64}$/.test(args.username)) {
    throw new CreateUserError('username must be 3 to 64 letters, digits, dots, underscores, @ or dashes');
  }
  const password = await readPassword();
  const problems = passwordProblems(password, args.username, {
    minLength: config.PASSWORD_MIN_LENGTH,
    maxLength: config.PASSWORD_MAX_LENGTH,
  });
  if (problems.length > 0) throw new CreateUserError(`password ${problems.join('; ')}`);

  const access = await openDatabaseOrChannel({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: 1,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    applicationName: 'reliability-api-create-user',
    owner: 'reliability-api create-user',
    logger: log,
  });
  if ('channel' in access) {
    const body: CreateUserRequest = { username: args.username, password, role: args.role };
    try {
      const user = expectSuccess<CreatedUser>(
        await access.channel.request('POST', LOCAL_ADMIN_PATHS.users, body),
      );
      print(`created ${user.role} ${user.username} (${user.id}) through the running server`);
    } catch (error) {
      throw error instanceof LocalAdminRefusedError ? new CreateUserError(error.message) : error;
    }
    return;
  }
  const { database } = access;
  try {
    // Before the first `serve`: the schema the server would have created on start (same setting).
    if (config.MIGRATE_ON_START) await migrateUp(database.db);
    else {
      const pending = await pendingMigrations(database.db);
      if (pending.length > 0)
        throw new CreateUserError(
          `the database schema is behind (pending: ${pending.join(', ')}); run "reliability-api migrate up" first`,
        );
    }
    const user = await users.create(database.db, {
      username: args.username,
      password_hash: await hashPassword(password),
      role: args.role,
    });
    if (user === undefined) throw new CreateUserError(`username "${args.username}" is taken`);
    await audit.record(
      database.db,
      'user_created',
      { actorId: null, ip: null, userAgent: 'cli', requestId: null },
      user.id,
      {
        role: args.role,
        via: 'cli',
      },
    );
    print(`created ${args.role} ${user.username} (${user.id})`);
  } finally {
    await database.close();
  }
}
