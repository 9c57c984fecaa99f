// Security headers (helmet) on every answer and CORS limited to CORS_ALLOW_ORIGINS (none by default).
// JSON answers get the short set the OWASP REST Security Cheat Sheet asks of an API; the HTML of /docs
// gets helmet's full set for documents.
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

const HELMET_OPTIONS: HelmetOptions = {
  // A JSON API serves no cross-origin embeddable content; the default CSP protects the /docs page.
  crossOriginResourcePolicy: { policy: 'same-origin' },
  // HSTS is the TLS terminator's job (ingress or load balancer), which knows whether TLS is in use.
  hsts: false,
};

// A JSON answer is never rendered as a page: it must not load anything, be framed, sniffed into another
// type or read cross-origin (OWASP REST Security Cheat Sheet, "Security headers"). The headers that only
// steer how a browser runs a document (DNS prefetch, download options, XSS auditor, origin clustering,
// opener policy) are left out: every header costs time on every answer, and these protect nothing here.
const API_HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  hsts: false,
};

/** Where the HTML pages are: Swagger UI and its assets. */
const DOCUMENT_PREFIX = '/docs';

/**
 * The headers helmet would set, computed once. Our policy is static (no CSP nonces), so running helmet's
 * middleware per request (as @fastify/helmet does, in two hooks) only repeats the same work: about 5% of
 * the CPU of a small request in our profile. helmet stays the source of the policy.
 */
export function helmetHeaders(options: HelmetOptions = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error('helmet could not compute its headers');
  });
  return headers;
}

export default fp(
  async (app, opts: { corsAllowOrigins: readonly string[] }) => {
    const apiHeaders = helmetHeaders(API_HELMET_OPTIONS);
    const documentHeaders = helmetHeaders();
    app.addHook('onRequest', (request, reply, done) => {
      const url = request.routeOptions.url;
      reply.headers(url !== undefined && url.startsWith(DOCUMENT_PREFIX) ? documentHeaders : apiHeaders);
      done();
    });
    if (opts.corsAllowOrigins.length > 0) {
      const any = opts.corsAllowOrigins.includes('*');
      await app.register(cors, {
        origin: any ? '*' : [...opts.corsAllowOrigins],
        methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        exposedHeaders: [
          'x-request-id',
          'retry-after',
          'ratelimit',
          'ratelimit-policy',
          'idempotent-replayed',
        ],
        maxAge: 600,
      });
    }
  },
  { name: 'security' },
);
