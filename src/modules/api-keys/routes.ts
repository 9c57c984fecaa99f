// /v1/api-keys: the caller's machine credentials. The key is shown once, at creation.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { withProblems } from '../../lib/problem.js';
import { requestContext } from '../auth/principal.js';
import { IdParams } from '../users/schemas.js';
import * as S from './schemas.js';
import type { ApiKey } from './repository.js';

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());
const toPublic = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes,
  created_at: new Date(k.created_at).toISOString(),
  expires_at: iso(k.expires_at),
  revoked_at: iso(k.revoked_at),
});

export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { apiKeys } = app.identity;
  const tags = ['api-keys'];
  // Keys are managed from a user session: a key cannot mint or revoke keys.
  const session = { auth: { session: true } };

  app.post(
    '/api-keys',
    {
      config: { ...session, idempotency: true },
      schema: {
        tags,
        summary: 'Create an API key (shown once)',
        description:
          "The key holds a subset of the caller's scopes and may expire. Its secret is in this answer only; only a hash is stored. Accepts an Idempotency-Key.",
        body: S.CreateKeyBody,
        response: withProblems({ 201: S.CreatedKey }),
      },
    },
    async (request, reply) => {
      const created = await apiKeys.create(requestContext(request), request.body);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ ...toPublic(created), key: created.key });
    },
  );

  app.get(
    '/api-keys',
    {
      config: session,
      schema: {
        tags,
        summary: "The caller's API keys (never the secret)",
        description: "Each key's id, name, prefix (to recognise it), scopes and dates.",
        response: withProblems({ 200: S.ApiKeyList }),
      },
    },
    async (request) => ({ data: (await apiKeys.list(request.principal!)).map(toPublic) }),
  );

  app.delete(
    '/api-keys/:id',
    {
      config: session,
      schema: {
        tags,
        summary: 'Revoke an API key, at once on every replica',
        description:
          "The caller's own keys, or any key for an admin. Every replica refuses the key within a second.",
        params: IdParams,
        response: withProblems({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await apiKeys.revoke(requestContext(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
};
