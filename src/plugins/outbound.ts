// Decorates app.outbound, the registry of resilient outbound clients (one breaker per dependency), with
// its metrics in the app's registry. Its connection pools close once in-flight requests are done.
import fp from 'fastify-plugin';
import {
  createOutboundRegistry,
  outboundPolicyFrom,
  type OutboundConfig,
  type OutboundRegistry,
} from '../adapters/http/outbound.js';

declare module 'fastify' {
  interface FastifyInstance {
    outbound: OutboundRegistry;
  }
}

export default fp(
  async (app, opts: { config: OutboundConfig }) => {
    const outbound = createOutboundRegistry({
      policy: outboundPolicyFrom(opts.config),
      registry: app.metrics.registry,
      logger: app.log,
    });
    app.decorate('outbound', outbound);
    // onClose runs after the server has stopped and in-flight requests have finished, so no handler is
    // still waiting on a pool when it closes.
    app.addHook('onClose', async () => {
      await outbound.close();
    });
  },
  { name: 'outbound', dependencies: ['metrics'] },
);
