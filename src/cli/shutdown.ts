// The shutdown plan, in order: readiness fails at once; for SHUTDOWN_DRAIN_SECONDS the listener keeps
// accepting (load balancers still route here until they see the failed probe); then the listener stops,
// in-flight requests finish (bounded by SHUTDOWN_TIMEOUT_SECONDS), onClose closes Redis and PostgreSQL;
// exit 0. A second signal exits at once with 1. A crash runs the same plan with a non-zero exit. In
// development a Ctrl-C (SIGINT) skips the drain: it exists for load balancers, not for a laptop.
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from '../app.js';
import type { Config } from '../config/schema.js';

export interface ShutdownOptions {
  app: App;
  config: Pick<Config, 'SHUTDOWN_DRAIN_SECONDS' | 'SHUTDOWN_TIMEOUT_SECONDS'> &
    Partial<Pick<Config, 'ENVIRONMENT'>>;
  exit: (code: number) => void;
  /**
   * Whether SIGTERM and SIGINT start the plan. A worker process ignores them: a terminal's Ctrl-C or
   * systemd's stop reaches every process of the group, and its primary tells it when to stop.
   */
  signals?: boolean;
}

export function installShutdown({
  app,
  config,
  exit,
  signals = true,
}: ShutdownOptions): (reason: string, code: number) => Promise<void> {
  let started = false;

  const shutdown = async (reason: string, code: number): Promise<void> => {
    if (started) {
      app.log.warn({ reason }, 'second shutdown request: exiting now');
      exit(1);
      return;
    }
    started = true;
    app.lifecycle.beginDrain();
    const drainSeconds =
      reason === 'SIGINT' && config.ENVIRONMENT === 'development' ? 0 : config.SHUTDOWN_DRAIN_SECONDS;
    app.log.info({ reason, drain_seconds: drainSeconds }, 'shutdown: draining');
    // Drain here, not in a preClose hook: once Fastify's close() begins, the listener stops accepting.
    await sleep(drainSeconds * 1000);

    const timer = setTimeout(() => {
      app.log.error({ timeout_seconds: config.SHUTDOWN_TIMEOUT_SECONDS }, 'shutdown: timed out, exiting');
      exit(1);
    }, config.SHUTDOWN_TIMEOUT_SECONDS * 1000);
    timer.unref();
    app.lifecycle.beginClose();
    app.log.info('shutdown: closing listener, waiting for in-flight requests');
    try {
      await app.close();
      app.log.info({ exit_code: code }, 'shutdown: complete');
    } catch (error) {
      app.log.error({ err: error }, 'shutdown: close failed');
      code = code || 1;
    } finally {
      clearTimeout(timer);
    }
    exit(code);
  };

  const onSignal = signals ? (signal: NodeJS.Signals) => void shutdown(signal, 0) : () => undefined;
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (error) => {
    app.log.fatal({ err: error }, 'uncaught exception');
    void shutdown('uncaughtException', 1);
  });
  process.on('unhandledRejection', (error) => {
    app.log.fatal({ err: error }, 'unhandled rejection');
    void shutdown('unhandledRejection', 1);
  });
  return shutdown;
}
