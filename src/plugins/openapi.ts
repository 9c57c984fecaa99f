// OpenAPI 3.1 generated from the route schemas, served at /openapi.json, with interactive docs at /docs.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { buildInfo } from '../lib/build-info.js';
import type { AuthRule } from '../modules/auth/principal.js';

/**
 * The settings docs/openapi.json is rendered with: the defaults, plus the optional operations a deployment
 * can turn on (sign-up), so the document lists every operation the API can serve.
 */
export const OPENAPI_DOCUMENT_ENV: Record<string, string> = {
  ENVIRONMENT: 'development',
  DATABASE_URL: 'pglite://memory',
  ALLOW_SIGNUP: 'true',
};

const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT or API key',
    description:
      '`Authorization: Bearer <token>`: an access token from /v1/auth/login, or an API key (`rak_...`).',
  },
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'An API key (`rak_...`) from /v1/api-keys.',
  },
} as const;

const TAGS = [
  {
    name: 'random',
    description:
      'Random values from node:crypto: integers, sequences, decimals, gaussians, strings, UUIDs, bytes.',
  },
  {
    name: 'beacon',
    description:
      'A relay of the drand public randomness beacon, cached, with stale answers while it is down.',
  },
  {
    name: 'auth',
    description: 'Sign-in: access and refresh tokens, logout, password change, sign-up, the JWKS.',
  },
  { name: 'users', description: 'Accounts, for admins.' },
  { name: 'api-keys', description: 'API keys of the signed-in user: create, list, revoke.' },
  {
    name: 'admin',
    description: 'Operations for admins: the audit log, circuit breakers, error triage, fault injection.',
  },
  { name: 'slo', description: 'Service level objectives: indicators and the error budget.' },
  { name: 'health', description: 'Probes and build information.' },
  { name: 'about', description: 'What this API is, and where to start.' },
];

/** What a route accepts, as OpenAPI `security`: any one entry will do; `{}` is "no credentials". */
export function securityOf(rule: AuthRule | undefined): Record<string, string[]>[] {
  if (rule === undefined) return [];
  const sessionOnly = rule.session === true;
  const credentials: Record<string, string[]>[] = sessionOnly
    ? [{ bearer: [] }]
    : [{ bearer: [] }, { apiKey: [] }];
  return rule.anonymous === true ? [{}, ...credentials] : credentials;
}

/** A stable camelCase name from the method and path: `GET /v1/users/{id}` -> `getUsersById`. */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .replace(/^\/v1(?=\/|$)/, '')
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') || part.startsWith('{') ? `by-${part.replace(/[:{}]/g, '')}` : part))
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return [method.toLowerCase(), ...words]
    .map((word, i) => (i === 0 ? word : word[0]!.toUpperCase() + word.slice(1)))
    .join('');
}

const problem = (description: string, headers: Record<string, unknown> = {}) => ({
  description,
  ...(Object.keys(headers).length === 0 ? {} : { headers }),
  content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
});
const RETRY_AFTER = { description: 'Seconds to wait before trying again.', type: 'integer', minimum: 1 };
const RATE_LIMIT_HEADERS = {
  'retry-after': RETRY_AFTER,
  ratelimit: {
    description: 'IETF RateLimit: the policy, what remains (r) and when it resets (t).',
    type: 'string',
  },
  'ratelimit-policy': {
    description: 'IETF RateLimit-Policy: quota (q) per window (w) in seconds.',
    type: 'string',
  },
};

interface RouteFacts {
  url: string;
  schema: Record<string, unknown> | undefined;
  config: { auth?: AuthRule; operational?: boolean; idempotency?: boolean } | undefined;
}

/** The error answers a route can give, from what it takes and which protections it passes through. */
export function errorResponses(route: RouteFacts): Record<string, unknown> {
  const { schema, config } = route;
  const rule = config?.auth;
  const body = schema?.body !== undefined;
  const input = body || ['querystring', 'params', 'headers'].some((k) => schema?.[k] !== undefined);
  const responses: Record<string, unknown> = {};
  if (input) responses['400'] = problem('Invalid input: every offending parameter is named in `errors`.');
  if (rule !== undefined)
    responses['401'] = problem('Missing or invalid credentials.', {
      'www-authenticate': { description: 'The Bearer challenge (RFC 6750).', type: 'string' },
    });
  if (rule?.scope !== undefined || rule?.session === true)
    responses['403'] = problem('The credentials do not grant this operation.');
  if (/[{:]/.test(route.url)) responses['404'] = problem('No such resource.');
  if (config?.idempotency === true) {
    responses['409'] = problem('A request with this Idempotency-Key is still running.', {
      'retry-after': RETRY_AFTER,
    });
    responses['422'] = problem('This Idempotency-Key was used for a different request.');
  }
  if (body) {
    responses['413'] = problem('The body is larger than the limit.');
    responses['415'] = problem('The body is not JSON (or form-encoded, where accepted).');
  }
  if (config?.operational !== true) {
    responses['429'] = problem('Over the rate limit.', RATE_LIMIT_HEADERS);
    responses['503'] = problem('Overloaded, or a dependency is unavailable; retry after the given delay.', {
      'retry-after': RETRY_AFTER,
    });
  }
  return responses;
}

/** Query parameters with a default are optional to a caller, whatever the validation schema says. */
function optionalDefaults(querystring: unknown): unknown {
  const q = querystring as
    { properties?: Record<string, { default?: unknown }>; required?: string[] } | undefined;
  if (q?.properties === undefined || q.required === undefined) return querystring;
  const required = q.required.filter((name) => q.properties![name]?.default === undefined);
  return { ...q, required };
}

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
          license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        },
        servers: [{ url: '/', description: 'This server' }],
        components: { securitySchemes: SECURITY_SCHEMES },
        tags: TAGS,
      },
      transform: ({ schema, url, route }) => {
        const method = [route.method].flat()[0] ?? 'GET';
        const documented = {
          ...schema,
          operationId:
            (schema as { operationId?: string } | undefined)?.operationId ?? operationIdOf(method, url),
          security: securityOf(route.config?.auth),
          ...(schema?.response === undefined
            ? {}
            : {
                response: {
                  ...errorResponses({ url, schema: schema as Record<string, unknown>, config: route.config }),
                  ...(schema.response as Record<string, unknown>),
                  // Every error is problem+json, whatever its status (the route schemas say only "a Problem").
                  '4xx': problem('Any other client error.'),
                  '5xx': problem('A server error; its detail is shown in development only.'),
                },
              }),
          ...(schema?.querystring === undefined ? {} : { querystring: optionalDefaults(schema.querystring) }),
        };
        return { schema: documented, url };
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
