// The worker side of the cluster: tells the primary when it is ready and when it has served its
// MAX_REQUESTS, answers the primary's metrics collections, asks it for the whole service's metrics when
// scraped, and retires or shuts down when told. A worker never acts on signals itself (see shutdown.ts).
import { randomInt } from 'node:crypto';
import { Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from '../../app.js';
import type { Config } from '../../config/schema.js';
import { isMessage, type MetricsJson, type ToPrimary, type ToWorker } from './protocol.js';

// A retiring worker has stopped accepting; this long lets its keep-alive clients get one more answer,
// with Connection: close, before the connections still idle are closed. A client of a busy connection
// is back within a round trip; only one that has been silent this long can race the close.
const RETIRE_GRACE_MS = 1_000;
// A scrape waits this long for the primary's merged answer.
const METRICS_TIMEOUT_MS = 5_000;

function send(message: ToPrimary): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

export class PrimaryLink {
  #next = 0;
  readonly #pending = new Map<number, (answer: { text: string; contentType: string }) => void>();
  #app: App | undefined;
  #shutdown: ((reason: string, code: number) => Promise<void>) | undefined;
  #exit: ((code: number) => void) | undefined;
  #timeoutSeconds = 25;
  #retiring = false;

  constructor() {
    process.on('message', (message: unknown) => {
      if (isMessage(message)) void this.#receive(message as ToWorker);
    });
  }

  /** /metrics in a worker: the primary merges every process's registry. */
  readonly metrics = (): Promise<{ text: string; contentType: string }> => {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error('the primary did not answer the metrics request'));
      }, METRICS_TIMEOUT_MS);
      this.#pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      void send({ type: 'metrics-request', id });
    });
  };

  /**
   * Once the app listens and has started: report ready, count requests towards a recycle, and obey the
   * primary. `shutdown` is the process's shutdown plan; `exit` ends the process.
   */
  attach(
    app: App,
    config: Pick<Config, 'MAX_REQUESTS' | 'MAX_REQUESTS_JITTER' | 'SHUTDOWN_TIMEOUT_SECONDS'>,
    shutdown: (reason: string, code: number) => Promise<void>,
    exit: (code: number) => void,
  ): void {
    this.#app = app;
    this.#shutdown = shutdown;
    this.#exit = exit;
    this.#timeoutSeconds = config.SHUTDOWN_TIMEOUT_SECONDS;
    if (config.MAX_REQUESTS > 0) {
      const limit = config.MAX_REQUESTS + randomInt(0, config.MAX_REQUESTS_JITTER + 1);
      let served = 0;
      const count = () => {
        if (++served < limit) return;
        app.server.off('request', count);
        app.log.info({ requests: served, limit }, 'served MAX_REQUESTS: asking to be replaced');
        void send({ type: 'recycle' });
      };
      // The raw server's event: one call per request, no Fastify hook on the request path.
      app.server.on('request', count);
    }
    // The primary is gone (killed): nobody will route here again or tell this worker to stop.
    process.once('disconnect', () => void shutdown('primary disconnected', 0));
    void send({ type: 'ready' });
  }

  async #receive(message: ToWorker): Promise<void> {
    const app = this.#app;
    switch (message.type) {
      case 'metrics-response':
        this.#pending.get(message.id)?.({ text: message.text, contentType: message.contentType });
        this.#pending.delete(message.id);
        return;
      case 'metrics-collect':
        if (app === undefined) return;
        await send({ type: 'metrics-snapshot', id: message.id, metrics: await snapshot(app) });
        return;
      case 'shutdown':
        // Already retiring: finishing that is the shutdown.
        if (!this.#retiring) await this.#shutdown?.('primary asked', 0);
        return;
      case 'retire':
        if (app !== undefined) await this.#retire(app);
        return;
    }
  }

  async #retire(app: App): Promise<void> {
    if (this.#retiring) return;
    this.#retiring = true;
    app.lifecycle.beginRetire();
    app.log.info("retiring: a successor is serving; finishing this worker's requests");
    // Stop taking connections without closing the idle ones yet (http.Server.close would close them at
    // once, racing any keep-alive client about to send). Its callback fires when the last one has ended.
    const drained = new Promise<void>((resolve) => Server.prototype.close.call(app.server, () => resolve()));
    await sleep(RETIRE_GRACE_MS);
    app.server.closeIdleConnections();
    const finished = await Promise.race([
      drained.then(() => true),
      sleep(this.#timeoutSeconds * 1000).then(() => false),
    ]);
    // Every request of this worker is counted now: hand the counts over before they are gone.
    await send({ type: 'metrics-final', metrics: await snapshot(app) });
    await app.close();
    app.log.info({ finished }, 'retired');
    this.#exit?.(finished ? 0 : 1);
  }
}

async function snapshot(app: App): Promise<MetricsJson> {
  return (await app.metrics.registry.getMetricsAsJSON()) as unknown as MetricsJson;
}
