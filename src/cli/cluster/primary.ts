// The primary of WEB_CONCURRENCY worker processes (node:cluster; connections are handed out round-robin).
// It serves nothing itself. It keeps N workers running: a crashed one is replaced after an exponential
// backoff, and more than WORKER_MAX_RESTARTS replacements in a minute is a crash loop that stops the
// service with exit 1. A worker that has served its MAX_REQUESTS is replaced by a fresh one, which is
// listening and initialized before the old one stops taking connections. SIGTERM or SIGINT runs every
// worker's own shutdown plan (drain, finish, close), then the primary exits 0; a second signal kills them.
import cluster, { type Worker } from 'node:cluster';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../../config/schema.js';
import type { Log } from '../../lib/log.js';
import { RetiredCounts, countsOf, labelGauges, render } from './metrics.js';
import { isMessage, type MetricsJson, type ToPrimary, type ToWorker } from './protocol.js';

const CRASH_WINDOW_MS = 60_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
// A worker has this long to answer a metrics collection; a stuck one is left out of that scrape.
const COLLECT_TIMEOUT_MS = 2_000;
// After the workers' own bound (drain + timeout), how long the primary waits before it kills them.
const SHUTDOWN_GRACE_MS = 5_000;

type PrimaryConfig = Pick<
  Config,
  'SHUTDOWN_DRAIN_SECONDS' | 'SHUTDOWN_TIMEOUT_SECONDS' | 'WORKER_MAX_RESTARTS' | 'APP_COMMIT'
>;

interface Member {
  worker: Worker;
  slot: number;
  ready: boolean;
  /** Told to retire (replaced) or to shut down: its exit is expected. */
  leaving: boolean;
  /** Its replacement is starting. */
  replacing: boolean;
  /** Counts from its latest collection, or its final ones: what the totals keep once it is gone. */
  counts: MetricsJson;
  /** The member a starting replacement takes over from, retired once this one is ready. */
  predecessor?: Member;
}

export interface PrimaryOptions {
  config: PrimaryConfig;
  workers: number;
  log: Log;
  exit: (code: number) => void;
}

export function runPrimary({ config, workers, log, exit }: PrimaryOptions): void {
  const members = new Map<number, Member>();
  const crashes: number[] = [];
  const retired = new RetiredCounts();
  let stopping: { code: number } | undefined;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const restarts = new Counter({
    name: 'worker_restarts_total',
    help: 'Worker processes started by the primary to replace another, by reason: crash or recycle (MAX_REQUESTS).',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['crash', 'recycle']) restarts.labels({ reason });
  new Gauge({
    name: 'worker_processes',
    help: 'Worker processes of the primary, by state: ready, or starting (not yet initialized).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const ready = [...members.values()].filter((m) => m.ready).length;
      this.set({ state: 'ready' }, ready);
      this.set({ state: 'starting' }, members.size - ready);
    },
  });

  const tell = (member: Member, message: ToWorker) => {
    if (member.worker.isConnected()) member.worker.send(message);
  };

  function fork(slot: number, predecessor?: Member): Member {
    const worker = cluster.fork({ WORKER_SLOT: String(slot) });
    const member: Member = {
      worker,
      slot,
      ready: false,
      leaving: false,
      replacing: false,
      counts: [],
      predecessor,
    };
    members.set(worker.id, member);
    worker.on('message', (message: unknown) => {
      if (isMessage(message)) void receive(member, message as ToPrimary);
    });
    worker.once('exit', (code, signal) => void exited(member, code, signal));
    return member;
  }

  async function receive(member: Member, message: ToPrimary): Promise<void> {
    switch (message.type) {
      case 'ready': {
        member.ready = true;
        const old = member.predecessor;
        member.predecessor = undefined;
        log.info({ worker_slot: member.slot, pid: member.worker.process.pid }, 'worker ready');
        if (old !== undefined && !old.leaving) {
          old.leaving = true;
          tell(old, { type: 'retire' });
        }
        if (stopping !== undefined) {
          member.leaving = true;
          tell(member, { type: 'shutdown' });
        }
        return;
      }
      case 'recycle':
        if (stopping !== undefined || member.replacing || member.leaving) return;
        member.replacing = true;
        restarts.labels({ reason: 'recycle' }).inc();
        log.info(
          { worker_slot: member.slot, pid: member.worker.process.pid },
          'recycling worker (MAX_REQUESTS)',
        );
        fork(member.slot, member);
        return;
      case 'metrics-request': {
        const { text, contentType } = await collect();
        tell(member, { type: 'metrics-response', id: message.id, text: await text, contentType });
        return;
      }
      case 'metrics-final':
        member.counts = countsOf(message.metrics);
        return;
      case 'metrics-snapshot':
        collections.get(message.id)?.(member, message.metrics);
        return;
    }
  }

  const collections = new Map<number, (member: Member, metrics: MetricsJson) => void>();
  let nextCollection = 0;

  /** Every live worker's registry (a retiring one's counts only), the primary's, and the retired counts. */
  async function collect() {
    const id = nextCollection++;
    const live = [...members.values()].filter((m) => m.ready && m.worker.isConnected());
    const answers = new Map<Member, MetricsJson>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      collections.set(id, (member, metrics) => {
        answers.set(member, metrics);
        if (answers.size === live.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      if (live.length === 0) resolve();
      for (const member of live) tell(member, { type: 'metrics-collect', id });
    });
    collections.delete(id);
    const parts: MetricsJson[] = [retired.counts, labelGauges(await primaryMetrics(), 'primary')];
    for (const [member, metrics] of answers) {
      member.counts = countsOf(metrics);
      // A retiring worker's gauges would double its slot's beside its successor's.
      parts.push(member.leaving ? member.counts : labelGauges(metrics, String(member.slot)));
    }
    return render(parts);
  }

  const primaryMetrics = async () => (await registry.getMetricsAsJSON()) as unknown as MetricsJson;

  async function exited(member: Member, code: number | null, signal: string | null): Promise<void> {
    members.delete(member.worker.id);
    await retired.add(member.counts);
    const fields = { worker_slot: member.slot, pid: member.worker.process.pid, code, signal };
    if (stopping !== undefined) {
      if (code !== 0) stopping.code = 1;
      log.info(fields, 'worker stopped');
      if (members.size === 0) {
        log.info({ exit_code: stopping.code }, 'primary: every worker has stopped');
        exit(stopping.code);
      }
      return;
    }
    if (member.leaving) {
      log.info(fields, 'worker retired');
      return;
    }
    // A replacement already starting (a recycle) takes the slot; otherwise this is a crash.
    const successor = [...members.values()].find((m) => m.predecessor === member);
    if (successor !== undefined) {
      successor.predecessor = undefined;
      return;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && now - crashes[0]! > CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > config.WORKER_MAX_RESTARTS) {
      log.error(
        { ...fields, crashes: crashes.length, window_seconds: CRASH_WINDOW_MS / 1000 },
        `crash loop: more than WORKER_MAX_RESTARTS (${config.WORKER_MAX_RESTARTS}) worker crashes in a minute; stopping the service`,
      );
      stop(1);
      return;
    }
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (crashes.length - 1));
    log.warn({ ...fields, restart_in_ms: delay }, 'worker crashed; replacing it');
    restarts.labels({ reason: 'crash' }).inc();
    // A replacement that crashed before it was ready: its predecessor is still serving, and still waits.
    const predecessor = member.predecessor;
    setTimeout(() => {
      if (stopping === undefined) fork(member.slot, predecessor);
    }, delay);
  }

  function stop(code: number): void {
    if (stopping !== undefined) {
      log.warn('second shutdown request: killing every worker');
      for (const { worker } of members.values()) worker.process.kill('SIGKILL');
      exit(1);
      return;
    }
    stopping = { code };
    log.info({ workers: members.size }, 'primary: shutting down every worker');
    for (const member of members.values()) {
      member.leaving = true;
      tell(member, { type: 'shutdown' });
    }
    if (members.size === 0) exit(code);
    const bound =
      (config.SHUTDOWN_DRAIN_SECONDS + config.SHUTDOWN_TIMEOUT_SECONDS) * 1000 + SHUTDOWN_GRACE_MS;
    setTimeout(() => {
      log.error({ remaining: members.size }, 'primary: workers outlasted the shutdown bound; killing them');
      for (const { worker } of members.values()) worker.process.kill('SIGKILL');
      exit(1);
    }, bound).unref();
  }

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  log.info({ workers }, 'primary: starting worker processes');
  for (let slot = 1; slot <= workers; slot++) fork(slot);
}
