// OpenAPI 3.1 generated from the route schemas, served at /openapi.json, with interactive docs at /docs.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { buildInfo } from '../lib/build-info.js';

export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Reliability API',
          version: buildInfo.version,
          description:
            'Cryptographically secure, unbiased random values. Every error answer is application/problem+json (RFC 9457).',
        },
        tags: [
          { name: 'random', description: 'Random values from node:crypto' },
          { name: 'health', description: 'Probes and build information' },
        ],
      },
      // Name shared schemas after their $id in the document instead of def-0, def-1...
      refResolver: {
        buildLocalReference: (json, _base, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
    });
    app.get('/openapi.json', { config: { operational: true }, schema: { hide: true } }, async () =>
      app.swagger(),
    );
    await app.register(async (docs) => {
      // The UI's own routes are operational too: no rate limits or injected faults on documentation.
      docs.addHook('onRoute', (route) => {
        route.config = { ...route.config, operational: true };
      });
      await docs.register(swaggerUi, {
        routePrefix: '/docs',
        uiConfig: { deepLinking: true },
        staticCSP: true,
      });
    });
  },
  { name: 'openapi' },
);
