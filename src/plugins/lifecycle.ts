// The process's lifecycle as the probes see it: starting (startup probe 503), started, draining (readiness
// 503 while requests are still served), closing (listener shut, in-flight requests finishing). The CLI
// drives the transitions. A recycled worker process retires instead: the service as a whole stays ready
// (its successor already serves), so its readiness does not change; its connections end with their answers.
import fp from 'fastify-plugin';

export type Phase = 'starting' | 'started' | 'retiring' | 'draining' | 'closing';

export class Lifecycle {
  #phase: Phase = 'starting';
  readonly createdAt = new Date();

  get phase(): Phase {
    return this.#phase;
  }

  /** Initialization (migrations included) is done: startup and readiness may pass. */
  markStarted(): void {
    if (this.#phase === 'starting') this.#phase = 'started';
  }

  /** A worker process is being replaced: answers carry Connection: close, readiness stays as it is. */
  beginRetire(): void {
    if (this.#phase === 'started') this.#phase = 'retiring';
  }

  /** Shutdown began: readiness fails from now on so load balancers stop routing here. */
  beginDrain(): void {
    if (this.#phase !== 'closing') this.#phase = 'draining';
  }

  /** The listener is closing: requests still arriving on open keep-alive connections are served, then closed. */
  beginClose(): void {
    this.#phase = 'closing';
  }

  get acceptingTraffic(): boolean {
    return this.#phase === 'starting' || this.#phase === 'started' || this.#phase === 'retiring';
  }

  /** Connections end with their current answer (closing, or a retiring worker). */
  get endingConnections(): boolean {
    return this.#phase === 'closing' || this.#phase === 'retiring';
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export default fp(
  async (app) => {
    const lifecycle = new Lifecycle();
    app.decorate('lifecycle', lifecycle);
    // Once closing, answers (to requests in flight, or arriving on a still-open keep-alive connection) are
    // served in full but carry Connection: close: the socket then ends with the response instead of idling
    // until keep-alive expires, which would hold the server open past the shutdown timeout.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (lifecycle.endingConnections) reply.header('connection', 'close');
      done(null, payload);
    });
  },
  { name: 'lifecycle' },
);
