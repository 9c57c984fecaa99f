// Prometheus metrics: request count and latency by method, route template and status code, requests in
// flight, and the default process and Node.js metrics. Served at /metrics on the API port, or on
// METRICS_PORT when set. Each app owns its registry, so two instances in one process never share series.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fp from 'fastify-plugin';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from '../lib/build-info.js';
import { BoundCounter, BoundHistogram } from '../observability/bound-metrics.js';
import { cachedChildren } from '../observability/label-cache.js';
import type { ClientErrorReason } from './error-handler.js';
import { routeOf } from '../lib/route.js';

// prom-client default gauges whose names end in _total, removed from every registry (see below).
const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

// From 5 ms (a cache hit) to 10 s (past any sane client timeout); dense around the 250 ms SLO.
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Metrics {
  readonly registry: Registry;
  /** A connection refused at the socket (see clientErrorHandler): timeouts, oversized or malformed requests. */
  countClientError(reason: ClientErrorReason): void;
  /** Address of the separate metrics listener, when METRICS_PORT is set and the app is listening. */
  address(): AddressInfo | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(
  async (
    app,
    opts: {
      metricsPort: number | undefined;
      host: string;
      commit: string;
      /** What a scrape answers instead of this registry: the whole service's metrics, in a worker process. */
      source?: () => Promise<{ text: string; contentType: string }>;
    },
  ) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which `promtool check metrics` rightly refuses; their per-type siblings
    // (nodejs_active_handles{type}, ...) stay, and sum() over them gives the same totals.
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
    new Gauge({
      name: 'app_info',
      help: 'Build information; always 1.',
      labelNames: ['version', 'commit', 'node'],
      registers: [registry],
    }).set({ version: buildInfo.version, commit: opts.commit, node: process.version }, 1);
    const requests = new BoundCounter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'],
      registers: [registry],
    });
    const duration = new BoundHistogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response sent, by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    });

    // No labels: one add per request. Counted on the raw response's 'close', which Node emits exactly once
    // whether the response finished or the client went away first; onResponse alone would leak on aborts
    // (it needs 'finish'), and onRequestAbort misses clients that leave after their body was read.
    let inFlight = 0;
    new Gauge({
      name: 'http_requests_in_flight',
      help: 'Requests received and not yet answered or abandoned; a scrape on the API port counts itself.',
      registers: [registry],
      collect() {
        this.set(inFlight);
      },
    });
    const requestClosed = () => {
      inFlight -= 1;
    };
    app.addHook('onRequest', (_request, reply, done) => {
      inFlight += 1;
      reply.raw.on('close', requestClosed);
      done();
    });

    const childrenOf = cachedChildren((method, route, status) => {
      const labels = { method, route, status_code: status };
      return { count: requests.series(labels), duration: duration.series(labels) };
    });
    app.addHook('onResponse', (request, reply, done) => {
      const child = childrenOf(request.method, routeOf(request), String(reply.statusCode));
      child.count.inc();
      child.duration.observe(reply.elapsedTime / 1000);
      done();
    });

    const exposition =
      opts.source ?? (async () => ({ text: await registry.metrics(), contentType: registry.contentType }));
    // A bare node:http listener when METRICS_PORT is set: scrapes stay off the API port and its protections.
    const server =
      opts.metricsPort === undefined
        ? undefined
        : createServer((req, res) => {
            if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
              res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
              return;
            }
            exposition().then(
              ({ text, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(text),
              (error: unknown) => {
                app.log.error({ err: error }, 'metrics collection failed');
                res.writeHead(500).end();
              },
            );
          });
    const clientErrors = new Counter({
      name: 'http_client_errors_total',
      help: 'Connections answered at the socket, before any request existed, by reason: timeout (408), header_overflow (431), malformed (400, including smuggling-shaped framing).',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const reason of ['timeout', 'header_overflow', 'malformed'] as const)
      clientErrors.labels({ reason });
    app.decorate('metrics', {
      registry,
      countClientError: (reason) => clientErrors.labels({ reason }).inc(),
      address: () => (server?.address() as AddressInfo | null) ?? undefined,
    });

    if (server === undefined) {
      app.get(
        '/metrics',
        { config: { operational: true }, schema: { hide: true } },
        async (_request, reply) => {
          const { text, contentType } = await exposition();
          reply.type(contentType);
          return text;
        },
      );
      return;
    }

    app.addHook('onListen', async () => {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.metricsPort, opts.host, () => resolve());
      });
      app.log.info({ address: server.address() }, 'metrics listening');
    });
    app.addHook('onClose', async () => {
      if (!server.listening) return;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  },
  { name: 'metrics', dependencies: ['request-context'] },
);
