// `backup` and `restore` as an operator runs them: the built CLI, pg_dump and pg_restore, the real PostgreSQL.
// A backup is only as good as its restore, so every backup here is restored and compared row by row.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runToEnd } from '../helpers/process.js';
import { closedPort, useTestDatabases, type TestDatabase } from '../helpers/services.js';

const work = mkdtempSync(path.join(tmpdir(), 'backup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Tables, views and sequences outside the system schemas: none means an empty database. */
const relations = async (url: string) =>
  (
    await query<{ name: string }>(
      url,
      `select table_schema || '.' || table_name as name from information_schema.tables
        where table_schema not in ('pg_catalog', 'information_schema')
       union all
       select sequence_schema || '.' || sequence_name from information_schema.sequences
        order by 1`,
    )
  ).map((r) => r.name);

/** Every column of every user, exactly: to_jsonb keeps timestamps to the microsecond. */
const users = async (url: string) =>
  (await query<{ row: unknown }>(url, 'select to_jsonb(u) as row from users u order by id')).map(
    (r) => r.row,
  );

const oneLine = (stderr: string) => expect(stderr.trim().split('\n'), stderr).toHaveLength(1);

describe('backup and restore usage', () => {
  it('when backup has no --out or restore no --in, then it exits 2 with usage', async () => {
    const cases = [['backup'], ['restore'], ['backup', '--out'], ['backup', '--out', 'x', '--bogus']];
    const results = await Promise.all(cases.map((args) => runToEnd(args, { ENVIRONMENT: 'test' })));
    results.forEach(({ code, stderr }, i) => {
      expect(code, `${cases[i]!.join(' ')}: ${stderr}`).toBe(2);
      expect(stderr).toContain('usage:');
    });
  });

  it('when the database is the in-memory embedded one, then backup and restore refuse with exit 2 naming DATABASE_URL', async () => {
    const file = path.join(work, 'memory.dump');
    const env = { ENVIRONMENT: 'test', DATABASE_URL: 'pglite://memory' };
    const runs = [runToEnd(['backup', '--out', file], env), runToEnd(['restore', '--in', file], env)];
    for (const { code, stderr } of await Promise.all(runs)) {
      expect(code, stderr).toBe(2);
      oneLine(stderr);
      expect(stderr).toMatch(/DATABASE_URL.*pglite:\/\/memory keeps nothing/);
    }
    expect(existsSync(file)).toBe(false);
  });

  it('when the embedded database is backed up with no server running, then its backup restores only into an embedded database, and a pg_dump archive only into PostgreSQL', async () => {
    const dataDir = path.join(work, 'embedded-data');
    const env = { ENVIRONMENT: 'test', DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const file = path.join(work, 'embedded.tar.gz');
    const made = await runToEnd(['backup', '--out', file], env, 60_000);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`from pglite:${dataDir}`);
    expect(readFileSync(file).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(existsSync(path.join(dataDir, '..', 'embedded-data.lock'))).toBe(false);

    const intoPostgres = await runToEnd(
      ['restore', '--in', file, '--target-url', 'postgres://postgres@127.0.0.1:1/none'],
      env,
    );
    expect(intoPostgres.code).toBe(1);
    oneLine(intoPostgres.stderr);
    expect(intoPostgres.stderr).toContain('is a backup of the embedded database');

    const archive = path.join(work, 'archive.dump');
    writeFileSync(archive, 'PGDMP\x01\x0e\x00');
    writeFileSync(`${archive}.sha256`, `${sha256(archive)}  archive.dump\n`);
    const intoEmbedded = await runToEnd(['restore', '--in', archive], {
      ...env,
      DATA_DIR: path.join(work, 'other-data'),
    });
    expect(intoEmbedded.code).toBe(1);
    oneLine(intoEmbedded.stderr);
    expect(intoEmbedded.stderr).toContain('but a pg_dump archive: restore it into PostgreSQL');
    expect(existsSync(path.join(work, 'other-data'))).toBe(false);
  });

  it('when --target-url is not a PostgreSQL URL, then restore exits 2 without echoing it', async () => {
    const { code, stderr } = await runToEnd(
      ['restore', '--in', 'x.dump', '--target-url', 'mysql://root:hunter2@db/app'],
      { ENVIRONMENT: 'test' },
    );
    expect(code, stderr).toBe(2);
    expect(stderr).toContain('--target-url');
    expect(stderr).not.toContain('hunter2');
  });

  describe('with a stand-in pg_dump that records how it is called', () => {
    const bin = path.join(work, 'bin');
    const record = path.join(work, 'pg_dump-call');
    beforeAll(() => {
      mkdirSync(bin, { recursive: true });
      writeFileSync(
        path.join(bin, 'pg_dump'),
        [
          '#!/bin/sh',
          'printf "%s\\n" "$@" > "$RECORD.args"',
          'printf "%s" "${PGPASSWORD-}" > "$RECORD.password"',
          'for a in "$@"; do case "$a" in --file=*) printf "PGDMP stand-in" > "${a#--file=}";; esac; done',
          'if [ -n "${FAIL-}" ]; then echo "pg_dump: error: refused for password $PGPASSWORD" >&2; exit 1; fi',
        ].join('\n'),
      );
      chmodSync(path.join(bin, 'pg_dump'), 0o755);
    });
    const env = (extra: Record<string, string> = {}) => ({
      ENVIRONMENT: 'test',
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      RECORD: record,
      DATABASE_URL: 'postgres://app:p%40ss%20word@db.internal:6543/app?sslmode=require',
      ...extra,
    });

    it('when it runs, then it gets an argument list with the URL minus its password, and the password in PGPASSWORD', async () => {
      const file = path.join(work, 'stand-in.dump');
      const { code, stderr } = await runToEnd(['backup', '--out', file], env());
      expect(code, stderr).toBe(0);
      const args = readFileSync(`${record}.args`, 'utf8').trim().split('\n');
      expect(args).toEqual([
        '--format=custom',
        '--no-owner',
        '--no-privileges',
        `--file=${file}.partial`,
        '--dbname=postgres://app@db.internal:6543/app?sslmode=require',
      ]);
      expect(readFileSync(`${record}.password`, 'utf8')).toBe('p@ss word');
      expect(readFileSync(`${file}.sha256`, 'utf8')).toBe(`${sha256(file)}  stand-in.dump\n`);
    });

    it('when it fails, then backup exits 1 with one redacted line and leaves no file behind', async () => {
      const file = path.join(work, 'failed.dump');
      const { code, stdout, stderr } = await runToEnd(['backup', '--out', file], env({ FAIL: '1' }));
      expect(code, stderr).toBe(1);
      oneLine(stderr);
      expect(stderr).toContain('pg_dump failed');
      expect(stderr).toContain('postgres://db.internal:6543/app');
      expect(`${stdout}${stderr}`).not.toContain('p@ss word');
      expect(`${stdout}${stderr}`).not.toContain('p%40ss');
      for (const leftover of [file, `${file}.partial`, `${file}.sha256`, `${file}.sha256.partial`]) {
        expect(existsSync(leftover), leftover).toBe(false);
      }
    });
  });
});

describe.skipIf(!inject('postgresAvailable'))('against PostgreSQL', () => {
  const { fresh } = useTestDatabases();

  const backupFile = path.join(work, 'reliability.dump');
  let source: TestDatabase;
  let sourceUsers: unknown[];
  let backedUp: { code: number | null; stdout: string; stderr: string };
  const cli = (args: string[], url: string) =>
    runToEnd(args, { ENVIRONMENT: 'test', DATABASE_URL: url, LOG_LEVEL: 'warn' });

  beforeAll(async () => {
    source = await fresh('backup_src');
    const up = await cli(['migrate', 'up'], source.url);
    expect(up.code, up.stderr).toBe(0);
    const tag = randomBytes(4).toString('hex');
    await query(
      source.url,
      `insert into users (username, password_hash, role, disabled, created_at, updated_at) values
         ($1, 'hash-1', 'admin', false, '2024-02-29 23:59:59.123456+00', '2024-03-01 00:00:00.000001+00'),
         ($2, 'hash-2', 'user', true, '1999-12-31 12:00:00.5+05:30', now()),
         ($3, 'hash-3', 'user', false, now(), now())`,
      [`alice-${tag}`, `Bob-${tag}`, `carol-${tag}`],
    );
    sourceUsers = await users(source.url);
    expect(sourceUsers).toHaveLength(3);
    backedUp = await cli(['backup', '--out', backupFile], source.url);
    expect(backedUp.code, backedUp.stderr).toBe(0);
  });

  it('when a database is backed up, then FILE and a sha256sum-format FILE.sha256 appear, nothing partial', async () => {
    const digest = sha256(backupFile);
    expect(backedUp.stdout).toContain(digest);
    expect(readFileSync(`${backupFile}.sha256`, 'utf8')).toBe(`${digest}  reliability.dump\n`);
    expect(readFileSync(backupFile).subarray(0, 5).toString()).toBe('PGDMP');
    expect(existsSync(`${backupFile}.partial`)).toBe(false);
    // The checksum file is the standard tool's format.
    const check = spawnSync('sha256sum', ['--check', '--strict', 'reliability.dump.sha256'], {
      cwd: work,
      encoding: 'utf8',
    });
    if (!check.error) expect(check.status, check.stderr).toBe(0);
  });

  it('when a backup is restored into a fresh database, then every row and the migration history are identical', async () => {
    const target = await fresh('backup_dst');
    const { code, stdout, stderr } = await cli(
      ['restore', '--in', backupFile, '--target-url', target.url],
      source.url,
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('restored');
    expect(await users(target.url)).toEqual(sourceUsers);
    const [restored, original] = await Promise.all([
      cli(['migrate', 'status'], target.url),
      cli(['migrate', 'status'], source.url),
    ]);
    expect(restored.stdout).toMatch(/^applied {2}0001_users/m);
    expect(restored.stdout).toBe(original.stdout);
    expect(await relations(target.url)).toEqual(await relations(source.url));
  });

  it('when a byte of the backup is changed, then restore exits 1 on the checksum and the target stays empty', async () => {
    const tampered = path.join(work, 'tampered.dump');
    const bytes = readFileSync(backupFile);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(tampered, bytes);
    copyFileSync(`${backupFile}.sha256`, `${tampered}.sha256`);
    const target = await fresh('backup_tampered');
    const { code, stderr } = await cli(['restore', '--in', tampered, '--target-url', target.url], source.url);
    expect(code, stderr).toBe(1);
    oneLine(stderr);
    expect(stderr).toContain('checksum mismatch');
    expect(await relations(target.url)).toEqual([]);
  });

  it('when the checksum file is missing, then restore refuses an unverified backup', async () => {
    const unverified = path.join(work, 'unverified.dump');
    copyFileSync(backupFile, unverified);
    const target = await fresh('backup_unverified');
    const { code, stderr } = await cli(
      ['restore', '--in', unverified, '--target-url', target.url],
      source.url,
    );
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('unverified');
    expect(await relations(target.url)).toEqual([]);
  });

  it('when pg_restore fails midway, then the single transaction leaves the target empty', async () => {
    // A statement of the post-data section (after tables and rows) broken, with a checksum to match.
    const broken = path.join(work, 'broken.dump');
    const bytes = readFileSync(backupFile);
    const at = bytes.indexOf('CREATE UNIQUE INDEX users_username_lower_key');
    expect(at).toBeGreaterThan(0);
    bytes.write('CREATE UNIQUE INDEY', at);
    writeFileSync(broken, bytes);
    writeFileSync(`${broken}.sha256`, `${sha256(broken)}  broken.dump\n`);
    const target = await fresh('backup_broken');
    const { code, stderr } = await cli(['restore', '--in', broken, '--target-url', target.url], source.url);
    expect(code, stderr).toBe(1);
    oneLine(stderr);
    expect(stderr).toMatch(/pg_restore failed.*INDEY/);
    expect(await relations(target.url)).toEqual([]);
  });

  it('when the target already has tables, then restore refuses without --force and replaces them with it', async () => {
    const target = await fresh('backup_nonempty');
    expect((await cli(['restore', '--in', backupFile, '--target-url', target.url], source.url)).code).toBe(0);
    await query(target.url, 'delete from users where role = $1', ['admin']);
    await query(target.url, "insert into users (username, password_hash) values ('mallory', 'x')");
    const changed = await users(target.url);

    const refused = await cli(['restore', '--in', backupFile, '--target-url', target.url], source.url);
    expect(refused.code, refused.stderr).toBe(1);
    oneLine(refused.stderr);
    expect(refused.stderr).toMatch(/is not empty \(\d+ relations: public\.\w+.*--force/);
    expect(await users(target.url)).toEqual(changed);

    const forced = await cli(
      ['restore', '--in', backupFile, '--target-url', target.url, '--force'],
      source.url,
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect(await users(target.url)).toEqual(sourceUsers);
  });

  it('when the backup file already exists, then backup refuses to overwrite it', async () => {
    const before = sha256(backupFile);
    const { code, stderr } = await cli(['backup', '--out', backupFile], source.url);
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('already exists');
    expect(sha256(backupFile)).toBe(before);
  });

  it('when the database is unreachable, then backup exits 1 with one line and no password', async () => {
    const port = await closedPort();
    const file = path.join(work, 'unreachable.dump');
    const { code, stderr } = await cli(
      ['backup', '--out', file],
      `postgres://postgres:Secret-${port}@127.0.0.1:${port}/none`,
    );
    expect(code, stderr).toBe(1);
    oneLine(stderr);
    expect(stderr).toContain('pg_dump failed');
    expect(stderr).not.toContain(`Secret-${port}`);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.partial`)).toBe(false);
  });
});
