// Per-route flags read by cross-cutting plugins.
declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Probes, metrics and API docs: they must answer while the service is overloaded, rate limited or in
     * a drill, so protections and fault injection skip them.
     */
    operational?: boolean;
  }
}

export {};
