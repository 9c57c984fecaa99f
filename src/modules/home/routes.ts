// GET /: where a newcomer starts. A browser gets a small HTML page (what this is, its version, where the docs
// and the document are, a request to copy); anything else gets the same as a JSON index of links.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { buildInfo } from '../../lib/build-info.js';

const LINKS = {
  docs: { href: '/docs', title: 'Interactive API documentation' },
  openapi: { href: '/openapi.json', title: 'The OpenAPI 3.1 document' },
  random: { href: '/v1/random?min=1&max=6', title: 'A random integer from 1 to 6' },
  ready: { href: '/health/ready', title: 'Readiness, with each dependency' },
  version: { href: '/version', title: 'Build information' },
} as const;

const DESCRIPTION =
  'Cryptographically secure, unbiased random values over HTTP: integers, sequences, decimals, gaussians, strings, UUIDs and bytes, with errors as application/problem+json.';

const Link = Type.Object({ href: Type.String(), title: Type.String() });
const Index = Type.Object({
  name: Type.String(),
  version: Type.String(),
  description: Type.String(),
  links: Type.Record(Type.String(), Link),
});

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

function page(origin: string): string {
  const items = Object.values(LINKS)
    .map(
      (l) =>
        `      <li><a href="${escapeHtml(l.href)}">${escapeHtml(l.href)}</a>: ${escapeHtml(l.title)}</li>`,
    )
    .join('\n');
  const curl = `curl '${origin}/v1/random/integers?min=1&max=49&count=6&unique=true'`;
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Reliability API ${escapeHtml(buildInfo.version)}</title>
  </head>
  <body>
    <main>
      <h1>Reliability API <small>${escapeHtml(buildInfo.version)}</small></h1>
      <p>${escapeHtml(DESCRIPTION)}</p>
      <h2>Try it</h2>
      <pre><code>${escapeHtml(curl)}</code></pre>
      <h2>Where to go next</h2>
      <ul>
${items}
      </ul>
    </main>
  </body>
</html>
`;
}

/** A browser asks for HTML first; curl, scripts and clients asking for JSON (or anything) get JSON. */
function wantsHtml(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const html = accept.indexOf('text/html');
  const json = accept.indexOf('application/json');
  return html !== -1 && (json === -1 || html < json);
}

export const homeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      config: { operational: true },
      schema: {
        tags: ['about'],
        summary: 'What this API is, and where to start',
        description:
          'An HTML page for a browser (`Accept: text/html`); otherwise a JSON index of the same links.',
        response: {
          200: {
            description: 'The index, as JSON or as an HTML page.',
            content: {
              'application/json': { schema: Index },
              'text/html': { schema: Type.String({ description: 'A small HTML page.' }) },
            },
          },
        },
      },
    },
    async (request, reply) => {
      reply.header('vary', 'accept');
      if (wantsHtml(request.headers.accept)) {
        const origin = `${request.protocol}://${request.host}`;
        return reply
          .type('text/html; charset=utf-8')
          .serializer((body: string) => body)
          .send(page(origin));
      }
      return { name: buildInfo.name, version: buildInfo.version, description: DESCRIPTION, links: LINKS };
    },
  );
};
