// `backup --out FILE` and `restore --in FILE [--target-url URL] [--force]`: pg_dump's custom format with a
// sha256 checksum beside it, and a restore that verifies the checksum before it touches any database. The
// embedded database is backed up as a copy of its data directory (a gzipped tar), through the running
// server when one owns it, and restored into an empty data directory (or, with --force, beside the old one).
//
// pg_dump and pg_restore run as child processes with argument arrays (no shell). They get the connection
// URL through --dbname without its password; the password goes through PGPASSWORD in the child's
// environment, so it never shows in a process list, and every message they print is redacted.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  describeDatabase,
  embeddedPaths,
  loadEmbedded,
  type EmbeddedPaths,
} from '../adapters/postgres/database.js';
import { acquireEmbeddedLock } from '../adapters/postgres/embedded-lock.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LOCAL_ADMIN_PATHS } from '../modules/local-admin/protocol.js';
import type { Log } from '../lib/log.js';
import { expectSuccess, openDatabaseOrChannel } from './local-admin.js';

/** Bad command-line usage of backup or restore (exit code 2). */
export class BackupUsageError extends Error {}

export type BackupCommand =
  | { command: 'backup'; out: string }
  | { command: 'restore'; in: string; targetUrl: string | undefined; force: boolean };

const POSTGRES_PROTOCOLS = new Set(['postgres:', 'postgresql:']);

function isPostgresUrl(value: string): boolean {
  try {
    return POSTGRES_PROTOCOLS.has(new URL(value).protocol);
  } catch {
    return false;
  }
}

export function parseBackupArgs(command: 'backup' | 'restore', args: string[]): BackupCommand {
  if (command === 'backup') {
    const { values } = parseArgs({ args, strict: true, options: { out: { type: 'string' } } });
    if (!values.out) throw new BackupUsageError('backup needs --out FILE');
    return { command, out: values.out };
  }
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      in: { type: 'string' },
      'target-url': { type: 'string' },
      force: { type: 'boolean', default: false },
    },
  });
  if (!values.in) throw new BackupUsageError('restore needs --in FILE');
  const targetUrl = values['target-url'];
  if (targetUrl !== undefined && !isPostgresUrl(targetUrl)) {
    // The value is not echoed: it may carry a password.
    throw new BackupUsageError('--target-url must be a postgres:// or postgresql:// URL');
  }
  return { command, in: values.in, targetUrl, force: values.force };
}

/** The URL without its password (for --dbname) and the password itself (for PGPASSWORD). */
export function splitCredentials(url: string): { dbname: string; password: string | undefined } {
  const parsed = new URL(url);
  const password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  parsed.password = '';
  return { dbname: parsed.toString(), password };
}

function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret) out = out.split(secret).join('***');
  }
  return out;
}

/** One line out of a tool's stderr: its error and detail lines, else its last line. */
function reasonFrom(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const relevant = lines.filter((l) => /\b(error|detail|fatal|hint):/i.test(l));
  const reason = (relevant.length > 0 ? relevant : lines.slice(-1)).join(' ');
  return reason.length > 600 ? `${reason.slice(0, 600)}...` : reason || 'no output';
}

interface ToolTarget {
  url: string;
  /** Where the tool connects, for messages: no user, no password. */
  label: string;
}

/** Runs pg_dump or pg_restore against `target`; rejects with a one-line, password-free reason. */
function runTool(tool: 'pg_dump' | 'pg_restore', args: string[], target: ToolTarget): Promise<string> {
  const { dbname, password } = splitCredentials(target.url);
  // Handing the environment on to the tool (PATH, locale, PG* client settings), not reading a setting.
  // eslint-disable-next-line no-restricted-properties
  const env: NodeJS.ProcessEnv = { ...process.env, PGAPPNAME: `reliability-api-${tool.replace('pg_', '')}` };
  if (password !== undefined) env.PGPASSWORD = password;
  const secrets = [password, password && encodeURIComponent(password), target.url];
  return new Promise((resolve, reject) => {
    const child = spawn(tool, [...args, `--dbname=${dbname}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      // Keep the tail: the reason for a failure is at the end.
      stderr = (stderr + chunk).slice(-65_536);
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          error.code === 'ENOENT'
            ? `${tool} not found on PATH: install the PostgreSQL client tools (the server's major version or newer)`
            : `${tool} could not start: ${error.message}`,
        ),
      );
    });
    child.once('close', (code, signal) => {
      const output = redact(stderr, secrets);
      if (code === 0) resolve(output);
      else if (signal !== null) reject(new Error(`${tool} was stopped by ${signal} (${target.label})`));
      else
        reject(new Error(`${tool} failed with exit code ${code} (${target.label}): ${reasonFrom(output)}`));
    });
  });
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fsyncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

function requirePostgres(url: string | undefined, what: string): string {
  if (url === undefined || !isPostgresUrl(url)) {
    throw new ConfigError([
      {
        key: 'DATABASE_URL',
        message: `${what} needs a database with files: PostgreSQL (postgres:// URL) or the embedded one under DATA_DIR; pglite://memory keeps nothing to back up`,
      },
    ]);
  }
  return url;
}

/**
 * Writes a backup as FILE and FILE.sha256, each appearing only when complete: `produce` fills FILE.partial,
 * which is synced, summed and renamed into place. An existing FILE is never overwritten.
 */
async function writeBackup(
  outFile: string,
  label: string,
  produce: (partial: string) => Promise<void>,
  print: (line: string) => void,
): Promise<void> {
  const out = path.resolve(outFile);
  const partial = `${out}.partial`;
  const checksumFile = `${out}.sha256`;
  if (await exists(out)) throw new Error(`${out} already exists; backups are never overwritten`);
  try {
    await produce(partial);
    await fsyncPath(partial);
    const digest = await sha256File(partial);
    await writeFile(`${checksumFile}.partial`, `${digest}  ${path.basename(out)}\n`, { flush: true });
    // The dump first: a dump without its checksum is refused by restore, never trusted.
    await rename(partial, out);
    await rename(`${checksumFile}.partial`, checksumFile);
    await fsyncPath(path.dirname(out));
    const { size } = await stat(out);
    print(`backup: ${out} (${size} bytes, sha256 ${digest}) from ${label}`);
  } catch (error) {
    await rm(partial, { force: true });
    await rm(`${checksumFile}.partial`, { force: true });
    throw error;
  }
}

/** `backup --out FILE`: FILE (pg_dump custom format) and FILE.sha256, each appearing only when complete. */
export async function backup(databaseUrl: string, outFile: string, print: (line: string) => void) {
  const target = { url: databaseUrl, label: describeDatabase(databaseUrl, '.') };
  await writeBackup(
    outFile,
    target.label,
    async (partial) => {
      const warnings = await runTool(
        'pg_dump',
        ['--format=custom', '--no-owner', '--no-privileges', `--file=${partial}`],
        target,
      );
      if (warnings.trim()) process.stderr.write(warnings.endsWith('\n') ? warnings : `${warnings}\n`);
    },
    print,
  );
}

/** The embedded database's data directory, from the running server that owns it or opened here. */
async function backupEmbedded(config: Config, outFile: string, log: Log, print: (line: string) => void) {
  const label = `pglite:${embeddedPaths(config.DATABASE_URL, config.DATA_DIR)!.label}`;
  await writeBackup(
    outFile,
    label,
    async (partial) => {
      const access = await openDatabaseOrChannel({
        url: config.DATABASE_URL,
        dataDir: config.DATA_DIR,
        poolSize: 1,
        statementTimeoutMs: 0,
        applicationName: 'reliability-api-backup',
        owner: 'reliability-api backup',
        logger: log,
      });
      if ('channel' in access) {
        const answer = await access.channel.request('GET', LOCAL_ADMIN_PATHS.backup);
        if (answer.status !== 200) expectSuccess(answer);
        await writeFile(partial, answer.body, { mode: 0o600 });
        return;
      }
      try {
        const dump = await access.database.dumpEmbedded!();
        await writeFile(partial, Buffer.from(await dump.arrayBuffer()), { mode: 0o600 });
      } finally {
        await access.database.close();
      }
    },
    print,
  );
}

/** Reads a sha256sum-format line (`<hex>  <name>` or `<hex> *<name>`) and returns the hex digest. */
async function expectedDigest(checksumFile: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(checksumFile, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the checksum ${checksumFile} (${(error as NodeJS.ErrnoException).code}); refusing to restore an unverified backup`,
    );
  }
  const match = /^([0-9a-f]{64}) [ *]\S/i.exec(text.trim());
  if (!match) throw new Error(`${checksumFile} is not in sha256sum format; refusing to restore`);
  return match[1]!.toLowerCase();
}

/** Relations outside the system schemas (public, app_migrations, ...): a restore target must have none. */
async function existingRelations(url: string, label: string): Promise<string[]> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5_000,
    application_name: 'reliability-api-restore',
  });
  try {
    await client.connect();
    const { rows } = await client.query<{ name: string }>(
      `select n.nspname || '.' || c.relname as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname not like 'pg\\_%'
        order by n.nspname <> 'public', c.relkind not in ('r', 'p'), 1`,
    );
    return rows.map((r) => r.name);
  } catch (error) {
    throw new Error(`cannot inspect the target ${label}: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

type BackupFormat = 'pg_dump' | 'embedded' | 'unknown';

/** pg_dump's custom format starts with "PGDMP"; an embedded backup is gzip (1f 8b). */
async function formatOf(file: string): Promise<BackupFormat> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(5), 0, 5, 0);
    const head = buffer.subarray(0, bytesRead);
    if (head.toString('latin1') === 'PGDMP') return 'pg_dump';
    if (head[0] === 0x1f && head[1] === 0x8b) return 'embedded';
    return 'unknown';
  } finally {
    await handle.close();
  }
}

/** The input's absolute path and digest, once FILE.sha256 confirms it; before anything is touched. */
async function verifiedInput(
  inFile: string,
): Promise<{ input: string; digest: string; format: BackupFormat }> {
  const input = path.resolve(inFile);
  if (!(await exists(input))) throw new Error(`${input} does not exist`);
  const expected = await expectedDigest(`${input}.sha256`);
  const actual = await sha256File(input);
  if (actual !== expected) {
    throw new Error(
      `checksum mismatch for ${input} (expected ${expected}, got ${actual}): the backup is corrupt or was modified; nothing was restored`,
    );
  }
  return { input, digest: actual, format: await formatOf(input) };
}

/** `restore --in FILE`: verify FILE.sha256, refuse a non-empty target unless forced, restore in one transaction. */
export async function restore(
  targetUrl: string,
  inFile: string,
  force: boolean,
  print: (line: string) => void,
): Promise<void> {
  const { input, digest: actual, format } = await verifiedInput(inFile);
  const target = { url: targetUrl, label: describeDatabase(targetUrl, '.') };
  if (format === 'embedded') {
    throw new Error(
      `${input} is a backup of the embedded database (a PGlite data directory); restore it with DATABASE_URL unset, or load its data into PostgreSQL another way`,
    );
  }
  const relations = await existingRelations(targetUrl, target.label);
  if (relations.length > 0 && !force) {
    const shown = relations.slice(0, 8).join(', ') + (relations.length > 8 ? ', ...' : '');
    throw new Error(
      `the target ${target.label} is not empty (${relations.length} relations: ${shown}); restore into an empty database, or pass --force to replace the objects in the backup`,
    );
  }
  const warnings = await runTool(
    'pg_restore',
    [
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--single-transaction',
      ...(force ? ['--clean', '--if-exists'] : []),
      input,
    ],
    target,
  );
  if (warnings.trim()) process.stderr.write(warnings.endsWith('\n') ? warnings : `${warnings}\n`);
  print(`restored: ${input} (sha256 ${actual}) into ${target.label}${force ? ' (--force)' : ''}`);
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * `restore --in FILE` into the embedded database: under its lock (so never under a running server), into
 * a data directory that holds no database yet; with --force the existing one is moved aside, never deleted.
 */
async function restoreEmbedded(
  paths: EmbeddedPaths,
  inFile: string,
  force: boolean,
  log: Log,
  print: (line: string) => void,
): Promise<void> {
  const { input, digest, format } = await verifiedInput(inFile);
  if (format !== 'embedded') {
    throw new Error(
      `${input} is not a backup of the embedded database${format === 'pg_dump' ? ' but a pg_dump archive: restore it into PostgreSQL (DATABASE_URL or --target-url)' : ''}`,
    );
  }
  const lock = await acquireEmbeddedLock(paths.lock, paths.label, 'reliability-api restore', log);
  let movedTo: string | undefined;
  try {
    if (await exists(path.join(paths.directory, 'PG_VERSION'))) {
      if (!force) {
        throw new Error(
          `the embedded database ${paths.label} is not empty; restore into an empty DATA_DIR, or pass --force to move the current database aside first`,
        );
      }
      movedTo = `${paths.directory}.before-restore-${stamp()}`;
      await rename(paths.directory, movedTo);
    }
    await loadEmbedded(paths, await openAsBlob(input));
  } finally {
    await lock.release();
  }
  print(
    `restored: ${input} (sha256 ${digest}) into pglite:${paths.label}${movedTo === undefined ? '' : `; the previous database is at ${movedTo}`}`,
  );
}

export async function runBackupCommand(
  config: Config,
  args: BackupCommand,
  log: Log,
  print: (line: string) => void,
): Promise<void> {
  const embedded =
    args.command === 'restore' && args.targetUrl !== undefined
      ? undefined
      : embeddedPaths(config.DATABASE_URL, config.DATA_DIR);
  if (embedded !== undefined) {
    if (args.command === 'backup') await backupEmbedded(config, args.out, log, print);
    else await restoreEmbedded(embedded, args.in, args.force, log, print);
  } else if (args.command === 'backup') {
    await backup(requirePostgres(config.DATABASE_URL, 'backup'), args.out, print);
  } else {
    await restore(
      requirePostgres(args.targetUrl ?? config.DATABASE_URL, 'restore'),
      args.in,
      args.force,
      print,
    );
  }
}
