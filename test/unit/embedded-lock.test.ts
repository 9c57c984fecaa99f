// The embedded database's lock on its own: who holds it, when a lock is stale, and races between openers.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EmbeddedDatabaseInUseError,
  acquireEmbeddedLock,
  holderAlive,
  processStartTicks,
  type LockHolder,
} from '../../src/adapters/postgres/embedded-lock.js';

const lockPath = () => path.join(mkdtempSync(path.join(tmpdir(), 'lock-')), 'pglite.lock');

function recordingLog() {
  const warnings: { fields: unknown; msg: string }[] = [];
  const log = {
    debug() {},
    info() {},
    error() {},
    warn(fields: unknown, msg: string) {
      warnings.push({ fields, msg });
    },
  };
  return { log: log as never, warnings };
}

const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid;

function writeLock(file: string, holder: Partial<LockHolder>) {
  const full: LockHolder = {
    pid: process.pid,
    command: 'reliability-api serve',
    started_at: new Date().toISOString(),
    host: hostname(),
    proc_start: processStartTicks(process.pid),
    ...holder,
  };
  writeFileSync(file, JSON.stringify(full));
  return full;
}

describe('embedded database lock', () => {
  it('when a second opener asks while the first holds it, then it is refused naming the holder, and after release it is granted', async () => {
    const file = lockPath();
    const { log } = recordingLog();
    const first = await acquireEmbeddedLock(file, './data', 'reliability-api serve', log);
    const held = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    expect(held).toMatchObject({ pid: process.pid, command: 'reliability-api serve', host: hostname() });
    expect(Date.parse(held.started_at)).not.toBeNaN();

    const second = acquireEmbeddedLock(file, './data', 'reliability-api create-user', log);
    await expect(second).rejects.toBeInstanceOf(EmbeddedDatabaseInUseError);
    await expect(second).rejects.toThrow(
      `the embedded database ./data is in use by reliability-api serve (pid ${process.pid})`,
    );

    await first.release();
    expect(existsSync(file)).toBe(false);
    const third = await acquireEmbeddedLock(file, './data', 'reliability-api create-user', log);
    await third.release();
    // No scratch or stale files are left beside it.
    expect(readdirSync(path.dirname(file))).toEqual([]);
  });

  it('when the holder is dead, then the lock is taken over with a warning naming it', async () => {
    const file = lockPath();
    const pid = deadPid();
    writeLock(file, { pid, command: 'reliability-api serve', proc_start: null });
    const { log, warnings } = recordingLog();
    const lock = await acquireEmbeddedLock(file, './data', 'reliability-api serve', log);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain(`took over the lock of reliability-api serve (pid ${pid})`);
    expect((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid).toBe(process.pid);
    await lock.release();
  });

  it('when the pid is alive but started at another time (a reused pid), then the lock is stale', async () => {
    const file = lockPath();
    const ticks = processStartTicks(process.pid);
    expect(ticks, 'this test needs Linux /proc').not.toBeNull();
    const holder = writeLock(file, { proc_start: ticks! - 1 });
    expect(holderAlive(holder)).toBe(false);
    const { log, warnings } = recordingLog();
    const lock = await acquireEmbeddedLock(file, './data', 'reliability-api serve', log);
    expect(warnings).toHaveLength(1);
    await lock.release();
  });

  it('when the holder is a live process of this host or any process of another host, then it counts as alive', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      const file = lockPath();
      const holder = writeLock(file, { pid: child.pid!, proc_start: processStartTicks(child.pid!) });
      expect(holderAlive(holder)).toBe(true);
      const { log } = recordingLog();
      await expect(acquireEmbeddedLock(file, './data', 'x', log)).rejects.toThrow(`(pid ${child.pid})`);
      expect(holderAlive({ ...holder, pid: deadPid(), host: 'elsewhere.example' })).toBe(true);
      writeLock(file, { host: 'elsewhere.example', pid: 1 });
      await expect(acquireEmbeddedLock(file, './data', 'x', log)).rejects.toThrow(
        /pid 1 on elsewhere\.example/,
      );
    } finally {
      child.kill();
    }
  });

  it('when the lock file is damaged, then it is replaced with a warning', async () => {
    const file = lockPath();
    writeFileSync(file, '{"pid": 12');
    const { log, warnings } = recordingLog();
    const lock = await acquireEmbeddedLock(file, './data', 'x', log);
    expect(warnings[0]!.msg).toContain('unreadable lock file');
    await lock.release();
  });

  it('when a lock was taken over from its holder, then the holder releasing it leaves the new lock alone', async () => {
    const file = lockPath();
    const { log } = recordingLog();
    const lock = await acquireEmbeddedLock(file, './data', 'x', log);
    const other = writeLock(file, { pid: 4242, command: 'other' });
    await lock.release();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(other);
  });

  it('when many openers race for a free lock, or for a stale one, then exactly one wins', async () => {
    for (const stale of [false, true]) {
      const file = lockPath();
      if (stale) writeLock(file, { pid: deadPid(), proc_start: null });
      const { log } = recordingLog();
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => acquireEmbeddedLock(file, './data', `opener ${i}`, log)),
      );
      const winners = results.filter((r) => r.status === 'fulfilled');
      expect(winners, `stale=${stale}`).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(EmbeddedDatabaseInUseError);
      }
      await winners[0]!.value.release();
      expect(readdirSync(path.dirname(file))).toEqual([]);
    }
  });
});
