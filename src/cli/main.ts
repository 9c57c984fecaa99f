#!/usr/bin/env node
// The command line: argv -> loadConfig -> run -> exit code. 0 success, 1 failure, 2 bad usage or config.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { buildInfo } from '../lib/build-info.js';
import { errorChain } from '../lib/errors.js';
import { usableCpus } from '../lib/usable-cpus.js';
import { createLogger } from '../observability/logger.js';
import { runPrimary } from './cluster/primary.js';
import type { BackupCommand } from './backup.js';

const USAGE = `usage: reliability-api <command>

commands:
  serve                              start the HTTP API
  migrate up                         apply every pending migration
  migrate down [--steps N | --all]   revert the last N migrations (default 1), or all of them
  migrate status                     list migrations and whether each is applied
  backup --out FILE                  pg_dump DATABASE_URL to FILE (custom format) and FILE.sha256
  restore --in FILE [--target-url URL] [--force]
                                     verify FILE.sha256, then pg_restore into an empty database
                                     (default DATABASE_URL; --force replaces the objects in the backup)
  create-user --username NAME --role admin|user
                                     create a user; the password is read from stdin or a prompt
  triage LOGFILE [--text] [--summary] [--since 15m] [--limit N]
                                     group the errors of a JSON log file (JSON, or a table with
                                     --text); --summary adds a triage by TRIAGE_LLM_PROVIDER or rules
  version                            print the version

Settings come from the environment; see docs/configuration.md.`;

class UsageError extends Error {}

function fail(code: number, message: string): never {
  process.stderr.write(`reliability-api: ${message}\n`);
  process.exit(code);
}

// Each command's module is imported when that command runs: a command loads only what it uses (a cluster
// primary, for one, never loads the app, the database drivers or argon2).
async function main(argv: string[]): Promise<void> {
  // backup and restore take their own options (see backup.ts and docs/backups.md).
  if (argv[0] === 'backup' || argv[0] === 'restore') {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    const { BackupUsageError, parseBackupArgs, runBackupCommand } = await import('./backup.js');
    let args: BackupCommand;
    try {
      args = parseBackupArgs(argv[0], argv.slice(1));
    } catch (error) {
      throw error instanceof BackupUsageError ? new UsageError(error.message) : error;
    }
    const config = loadConfig(process.env);
    const log = createLogger(config, `${buildInfo.name}-cli`, buildInfo.version);
    await runBackupCommand(config, args, log, (line) => process.stdout.write(`${line}\n`));
    return;
  }
  if (argv[0] === 'triage') {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    const { TriageFileError, TriageUsageError, triageCommand } = await import('./triage.js');
    await triageCommand(argv.slice(1), process.env, (line) => process.stdout.write(`${line}\n`)).catch(
      (error: unknown) => {
        if (error instanceof TriageFileError) fail(2, error.message);
        throw error instanceof TriageUsageError ? new UsageError(error.message) : error;
      },
    );
    return;
  }
  if (argv[0] === 'create-user') {
    const { values } = parseArgs({
      args: argv.slice(1),
      options: { username: { type: 'string' }, role: { type: 'string', default: 'user' } },
    });
    if (values.username === undefined) throw new UsageError('create-user needs --username NAME');
    if (values.role !== 'admin' && values.role !== 'user')
      throw new UsageError('--role must be admin or user');
    const config = loadConfig(process.env);
    const log = createLogger(config, `${buildInfo.name}-cli`, buildInfo.version);
    const { createUserCommand } = await import('./create-user.js');
    await createUserCommand(config, { username: values.username, role: values.role }, log, (line) =>
      process.stdout.write(`${line}\n`),
    );
    return;
  }
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      steps: { type: 'string' },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, action] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === 'version') {
    process.stdout.write(`${buildInfo.version}\n`);
    return;
  }
  if (command !== 'serve' && command !== 'migrate') throw new UsageError(`unknown command "${command}"`);
  if (command === 'migrate' && action !== 'up' && action !== 'down' && action !== 'status') {
    throw new UsageError('migrate needs one of: up, down, status');
  }
  let steps: number | 'all' = 1;
  if (values.all) steps = 'all';
  else if (values.steps !== undefined) {
    if (!/^[1-9]\d*$/.test(values.steps)) throw new UsageError('--steps takes a positive whole number');
    steps = Number(values.steps);
  }

  const config = loadConfig(process.env);
  if (command === 'serve') {
    if (cluster.isWorker) {
      const { serve } = await import('./serve.js');
      await serve(config, { slot: process.env.WORKER_SLOT ?? String(cluster.worker?.id) });
      return;
    }
    const workers = config.WEB_CONCURRENCY === 'auto' ? usableCpus() : config.WEB_CONCURRENCY;
    if (workers === 1) {
      const { serve } = await import('./serve.js');
      await serve(config);
      return;
    }
    const root = createLogger(config, buildInfo.name, buildInfo.version);
    const exit = (code: number) => {
      setTimeout(() => process.exit(code), 1_000).unref();
      root.flush(() => process.exit(code));
    };
    runPrimary({ config, workers, log: root.child({ worker: 'primary' }), exit });
    return;
  }
  const log = createLogger(config, `${buildInfo.name}-migrate`, buildInfo.version);
  const { migrate } = await import('./migrate.js');
  await migrate(config, { action: action as 'up' | 'down' | 'status', steps }, log, (line) =>
    process.stdout.write(`${line}\n`),
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) fail(2, error.message);
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    fail(2, `${(error as Error).message}\n\n${USAGE}`);
  }
  // An error that wraps another (the database unavailable, and why) names both on its one line.
  fail(1, errorChain(error));
});
