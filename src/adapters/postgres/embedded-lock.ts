// One owner per embedded data directory. PGlite is a single-process database: two processes with the same
// directory open corrupt it or lose writes, so whatever opens it takes this lock first.
//
// Hand-written rather than proper-lockfile: that library judges a lock stale by its mtime, which its holder
// refreshes on a timer, so a live holder whose event loop is stalled would lose its lock to a second opener:
// the very corruption this prevents. Here a lock is stale only when its holder is provably gone (PostgreSQL's
// postmaster.pid works the same way): its pid is dead, or the pid now belongs to a process started at
// another time (pid reuse, as after a container restart where the holder and its successor are both pid 1).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Log } from '../../lib/log.js';

export interface LockHolder {
  pid: number;
  /** What holds it, e.g. `reliability-api serve`. */
  command: string;
  started_at: string;
  host: string;
  /** The holder's start time in clock ticks since boot (Linux /proc), to tell a reused pid apart. */
  proc_start: number | null;
}

/** The embedded database is open in another process (or already in this one). */
export class EmbeddedDatabaseInUseError extends Error {
  constructor(
    readonly label: string,
    readonly holder: LockHolder,
  ) {
    const where = holder.host === hostname() ? '' : ` on ${holder.host}`;
    super(
      `the embedded database ${label} is in use by ${holder.command} (pid ${holder.pid}${where}); stop it first, or set DATABASE_URL to a PostgreSQL server that several processes can share`,
    );
    this.name = 'EmbeddedDatabaseInUseError';
  }
}

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesized command name, which may hold spaces). */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the recorded holder still runs. A holder on another host cannot be checked: it counts as alive. */
export function holderAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  if (!pidAlive(holder.pid)) return false;
  if (holder.proc_start === null) return true;
  const now = processStartTicks(holder.pid);
  return now === null || now === holder.proc_start;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.command === 'string' && typeof value.host === 'string')
      return {
        pid: value.pid,
        command: value.command,
        started_at: String(value.started_at),
        host: value.host,
        proc_start: typeof value.proc_start === 'number' ? value.proc_start : null,
      };
  } catch {
    // not ours, or damaged
  }
  return undefined;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const isCode = (error: unknown, code: string) => (error as NodeJS.ErrnoException).code === code;

// A takeover guard older than this belongs to an opener that died within the few microseconds it holds it.
const ABANDONED_GUARD_MS = 5_000;
const ATTEMPTS = 50;

/**
 * Takes the lock at `lockPath` for `command`, or throws EmbeddedDatabaseInUseError naming the holder.
 * The lock appears atomically with its content (written aside, then hard-linked into place), so a reader
 * never sees a half-written lock. A stale lock is taken over with a warning, by one opener at a time: the
 * one that creates the takeover guard `<lock>.takeover`; a live lock is never removed, even for a moment.
 */
export async function acquireEmbeddedLock(
  lockPath: string,
  label: string,
  command: string,
  log: Log,
): Promise<HeldLock> {
  // Private: the admin socket lives here too.
  await mkdir(path.dirname(lockPath), { recursive: true, mode: 0o700 });
  const holder: LockHolder = {
    pid: process.pid,
    command,
    started_at: new Date().toISOString(),
    host: hostname(),
    proc_start: processStartTicks(process.pid),
  };
  const content = `${JSON.stringify(holder)}\n`;
  const suffix = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const scratch = `${lockPath}.${suffix}`;
  const guard = `${lockPath}.takeover`;
  await writeFile(scratch, content, { mode: 0o600, flush: true });
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (await linked(scratch, lockPath)) return held(lockPath, content);
      const existing = await readIfExists(lockPath);
      if (existing === undefined) continue; // released between our link and our read
      const current = parseHolder(existing);
      if (current !== undefined && holderAlive(current)) throw new EmbeddedDatabaseInUseError(label, current);
      if (!(await linked(scratch, guard))) {
        await removeAbandonedGuard(guard);
        await sleep(5 + attempt);
        continue; // another opener is taking over; see what it left
      }
      try {
        // Under the guard nobody else removes the lock: if it is still the stale one, it goes.
        if ((await readIfExists(lockPath)) === existing) {
          await unlink(lockPath);
          log.warn(
            { lock: lockPath, stale_holder: current ?? existing.slice(0, 200) },
            current === undefined
              ? 'embedded database: replaced an unreadable lock file'
              : `embedded database: took over the lock of ${current.command} (pid ${current.pid}), which ended without closing it`,
          );
        }
      } finally {
        await unlink(guard);
      }
    }
    const last = parseHolder((await readIfExists(lockPath)) ?? '');
    throw last === undefined
      ? new Error(`could not take the lock ${lockPath}`)
      : new EmbeddedDatabaseInUseError(label, last);
  } finally {
    await unlink(scratch).catch(() => undefined);
  }
}

/** Hard-links `from` to `to`: true when `to` is now ours, false when it already existed. */
async function linked(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (isCode(error, 'EEXIST')) return false;
    throw error;
  }
}

async function removeAbandonedGuard(guard: string): Promise<void> {
  try {
    if (Date.now() - (await stat(guard)).mtimeMs > ABANDONED_GUARD_MS) await unlink(guard);
  } catch {
    // gone already
  }
}

function held(lockPath: string, content: string): HeldLock {
  let released = false;
  return {
    path: lockPath,
    async release() {
      if (released) return;
      released = true;
      // Only our own lock: had it been taken over (it never should be while we live), leave the new one.
      if ((await readIfExists(lockPath)) === content) await unlink(lockPath);
    },
  };
}
