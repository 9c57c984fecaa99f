// `create-user --username NAME --role admin|user`: the password is read from standard input (piped) or
// typed at a prompt that does not echo it; never from argv, where `ps` and shell history would show it.
// While a server owns the embedded database, the user is created through that server.
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { migrateUp, pendingMigrations } from '../adapters/postgres/migrator.js';
import type { Role } from '../adapters/postgres/schema.js';
import type { Config } from '../config/schema.js';
import { AppError, type FieldProblem } from '../lib/errors.js';
import { hashPassword } from '../modules/auth/passwords.js';
import { accountProblems, createAccount } from '../modules/users/accounts.js';
import type { CreateUserRequest, CreatedUser } from '../modules/local-admin/protocol.js';
import { LOCAL_ADMIN_PATHS } from '../modules/local-admin/protocol.js';
import type { Log } from '../lib/log.js';
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
  const rules = {
    passwordPolicy: { minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH },
    hash: hashPassword,
  };
  // Checked before the password is asked for and before the database is opened; createAccount checks again.
  const refuse = (problems: FieldProblem[]) => {
    if (problems.length > 0)
      throw new CreateUserError(problems.map((p) => `${p.name} ${p.reason}`).join('; '));
  };
  refuse(accountProblems({ username: args.username, password: '', role: args.role }));
  const password = await readPassword();
  refuse(accountProblems({ username: args.username, password, role: args.role }, rules.passwordPolicy));

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
    let user;
    try {
      user = await createAccount(
        database.db,
        rules,
        { username: args.username, password, role: args.role },
        { actorId: null, ip: null, userAgent: 'cli', requestId: null },
        { via: 'cli' },
      );
    } catch (error) {
      if (error instanceof AppError) throw new CreateUserError(error.message); // the name is taken
      throw error;
    }
    print(`created ${args.role} ${user.username} (${user.id})`);
  } finally {
    await database.close();
  }
}
