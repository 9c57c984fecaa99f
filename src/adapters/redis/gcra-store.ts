// The shared rate-limit store: GCRA in Redis, one EVALSHA per decision (auto-pipelined, so concurrent
// requests share a round trip), with the same arithmetic as the in-process limiter (lib/gcra). A failure or
// a missed deadline rejects at once; what to do then is the caller's policy.
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { GCRA_LUA, type Decision } from '../../lib/gcra.js';
import type { Log } from '../../lib/log.js';
import { TRACER_NAME } from '../../observability/tracing.js';
import { createRedis } from './client.js';

type RedisWithGcra = Redis & {
  gcra(key: string, intervalUs: number, capacityUs: number): Promise<[number, number, number, number]>;
};

export class RedisGcraStore {
  readonly #client: RedisWithGcra;
  readonly #prefix: string;
  readonly #tracer = trace.getTracer(TRACER_NAME);

  constructor(options: {
    url: string;
    keyPrefix: string;
    timeoutMs: number;
    metrics: Registry;
    logger: Log;
  }) {
    const client = createRedis({
      url: options.url,
      logger: options.logger,
      commandTimeoutMs: options.timeoutMs,
      connectionName: 'reliability-api-ratelimit',
      metrics: options.metrics,
      autoPipelining: true,
      logState: false, // the rate limiter counts and logs each failed decision
    });
    client.defineCommand('gcra', { numberOfKeys: 1, lua: GCRA_LUA });
    client.connect().catch(() => undefined); // in the background; retryStrategy keeps reconnecting
    this.#client = client as RedisWithGcra;
    this.#prefix = options.keyPrefix;
  }

  /** Connected and able to take commands. */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  get status(): string {
    return this.#client.status;
  }

  /** One GCRA step for `key`; rejects on any Redis failure or a missed deadline. */
  async take(key: string, intervalUs: number, capacityUs: number, traced: boolean): Promise<Decision> {
    // A child of the request's span (this runs in its context); only for a traced request.
    const span = traced
      ? this.#tracer.startSpan('EVALSHA', {
          kind: SpanKind.CLIENT,
          attributes: {
            'db.system.name': 'redis',
            'db.operation.name': 'EVALSHA',
            'db.stored_procedure.name': 'gcra',
          },
        })
      : undefined;
    try {
      const [allowed, remaining, retryUs, resetUs] = await this.#client.gcra(
        this.#prefix + key,
        intervalUs,
        capacityUs,
      );
      span?.end();
      return {
        allowed: allowed === 1,
        remaining,
        retryAfterMs: Math.ceil(retryUs / 1000),
        resetMs: Math.ceil(resetUs / 1000),
      };
    } catch (error) {
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      span?.end();
      throw error;
    }
  }

  close(): void {
    this.#client.disconnect(false);
  }
}
