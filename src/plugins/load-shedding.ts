// Load shedding (@fastify/under-pressure): while the event loop lags or the heap is nearly full, API
// requests get 503 with Retry-After at once, instead of queueing until they time out; probes, metrics and
// docs keep answering so the orchestrator sees a live, if saturated, instance.
import { getHeapStatistics } from 'node:v8';
import underPressure from '@fastify/under-pressure';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import type { Config } from '../config/schema.js';
import { overloaded } from '../lib/errors.js';

// Long enough for a burst to drain, short enough that clients come back before the load balancer gives up.
const RETRY_AFTER_SECONDS = 2;

export default fp(
  async (
    app,
    opts: { config: Pick<Config, 'LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS' | 'LOAD_SHED_MAX_HEAP_USED_RATIO'> },
  ) => {
    const { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: delay, LOAD_SHED_MAX_HEAP_USED_RATIO: heapRatio } =
      opts.config;
    if (delay === 0 && heapRatio === 0) return;
    const shed = new Counter({
      name: 'load_shed_total',
      help: 'Requests answered 503 because the process was overloaded, by reason.',
      labelNames: ['reason'],
      registers: [app.metrics.registry],
    });
    // Each watched reason starts at 0, so rate() and the LoadShedding alert see a series before the first
    // shed request rather than nothing (under-pressure's names for them).
    if (delay > 0) shed.labels({ reason: 'eventLoopDelay' }).inc(0);
    if (heapRatio > 0) shed.labels({ reason: 'heapUsedBytes' }).inc(0);
    await app.register(underPressure, {
      maxEventLoopDelay: delay,
      maxHeapUsedBytes: heapRatio === 0 ? 0 : Math.floor(getHeapStatistics().heap_size_limit * heapRatio),
      sampleInterval: 500,
      retryAfter: RETRY_AFTER_SECONDS,
      pressureHandler: (request, _reply, type) => {
        if (request.routeOptions.config.operational === true) return undefined; // never shed probes
        shed.inc({ reason: type });
        return Promise.reject(overloaded(type, RETRY_AFTER_SECONDS));
      },
    });
  },
  { name: 'load-shedding', dependencies: ['metrics'] },
);
