// Security headers (helmet) on every answer and CORS limited to CORS_ALLOW_ORIGINS (none by default).
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import fp from 'fastify-plugin';

export default fp(
  async (app, opts: { corsAllowOrigins: readonly string[] }) => {
    await app.register(helmet, {
      // A JSON API serves no cross-origin embeddable content; the default CSP still protects /docs.
      crossOriginResourcePolicy: { policy: 'same-origin' },
      // HSTS is the TLS terminator's job (ingress or load balancer), which knows whether TLS is in use.
      hsts: false,
    });
    if (opts.corsAllowOrigins.length > 0) {
      const any = opts.corsAllowOrigins.includes('*');
      await app.register(cors, {
        origin: any ? '*' : [...opts.corsAllowOrigins],
        methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit', 'ratelimit-policy'],
        maxAge: 600,
      });
    }
  },
  { name: 'security' },
);
