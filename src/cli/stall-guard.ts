// The stall guard: a process whose event loop is stuck (an endless loop, a runaway regex, a WASM spin)
// answers no probe and no signal, and outside Kubernetes nothing restarts it. A watchdog on a worker thread
// sees the main thread's heartbeat stop and, past EVENT_LOOP_STALL_EXIT_SECONDS, writes one JSON line to
// stderr and kills the process, so its supervisor (Docker's restart policy, systemd, the worker primary)
// starts a fresh one.
//
// Why it kills with SIGKILL: a worker thread cannot end the process with an exit code (process.exit() in
// a worker ends only that thread) and a signal Node handles in JavaScript would wait for the stuck loop.
// Why a signal sent during a stall waits for the guard: Node gives a worker thread no way to observe
// signals (Node 20's deprecated process.binding('signal_wrap') could; Node 24 removed it), so the guard
// is the bound. loadConfig keeps it within the shutdown plan's drain + timeout, so a stalled process never
// outlasts a healthy one's shutdown; a stall during shutdown is caught the same way.
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

const BEATS = 0;
// Never written: the watchdog sleeps on it (Atomics.wait) between checks.
const IDLE = 1;

export interface StallGuardOptions {
  exitAfterSeconds: number;
  /** The `service` and `version` of the line it writes, as the logger's. */
  service: string;
  version: string;
}

// Plain JavaScript evaluated in the worker: no module graph to load, so the thread starts in milliseconds
// and costs little memory. It sleeps on the shared array (Atomics.wait), never on its own event loop.
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { view, exitAfterMs, beatMs, line } = workerData;
let beats = Atomics.load(view, ${BEATS});
let lastBeat = performance.now();
for (;;) {
  Atomics.wait(view, ${IDLE}, 0, beatMs);
  const now = performance.now();
  const current = Atomics.load(view, ${BEATS});
  if (current !== beats) { beats = current; lastBeat = now; }
  // The loop stopped at most one beat period after the last beat seen: it has been stalled at least this.
  const stalled = now - lastBeat - beatMs;
  if (stalled >= exitAfterMs) {
    const fields = {
      level: 'fatal', time: new Date().toISOString(), ...line, pid: process.pid,
      stalled_seconds: Math.round(stalled / 100) / 10, limit_seconds: exitAfterMs / 1000,
      msg: 'event loop stalled: killing the process so that its supervisor restarts it',
    };
    writeSync(2, JSON.stringify(fields) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}
`;

/** Starts the watchdog for the rest of the process's life (the thread is unref'd: it keeps nothing alive). */
export function startStallGuard(options: StallGuardOptions): void {
  const exitAfterMs = options.exitAfterSeconds * 1000;
  // A beat four times per limit (at most once a second) and a check as often: the guard never fires before
  // the loop has been stalled for the limit, and at most two beat periods (2 s) after.
  const beatMs = Math.min(1_000, exitAfterMs / 4);
  const view = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(WATCHDOG, {
    eval: true,
    workerData: {
      view,
      exitAfterMs,
      beatMs,
      line: { service: options.service, version: options.version },
    },
  });
  worker.unref();
  worker.on('error', (error) => {
    // The guard itself failing must not take the process down; say so once.
    writeSync(2, `${JSON.stringify({ level: 'error', msg: 'stall guard failed', err: String(error) })}\n`);
  });
  setInterval(() => Atomics.add(view, BEATS, 1), beatMs).unref();
}
