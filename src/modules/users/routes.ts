// /v1/users: administration of accounts (admins), and reading one's own.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { withProblems } from '../../lib/problem.js';
import { requestContext } from '../auth/principal.js';
import * as S from './schemas.js';
import { toPublic } from './service.js';

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users, auth } = app.identity;
  const tags = ['users'];
  const admin = { auth: { scope: 'admin' as const } };

  app.post(
    '/users',
    {
      config: { ...admin, idempotency: true },
      schema: {
        tags,
        summary: 'Create a user (admin)',
        description:
          'Username rules and the password policy apply; a taken username (in any case) is a 409. Accepts an Idempotency-Key, so a retried request creates the user once.',
        body: S.CreateUserBody,
        response: withProblems({ 201: S.PublicUser }),
      },
    },
    async (request, reply) => {
      const { username, password, role } = request.body;
      const user = await auth.createUser(requestContext(request), username, password, role ?? 'user');
      return reply.code(201).send(toPublic(user));
    },
  );

  app.get(
    '/users',
    {
      config: admin,
      schema: {
        tags,
        summary: 'List users (admin), oldest first',
        description: 'Paged: pass the `next_cursor` of a page as `cursor` for the next one.',
        querystring: S.PageQuery,
        response: withProblems({ 200: S.UserPage }),
      },
    },
    async (request) => users.list(request.query.limit, request.query.cursor),
  );

  app.get(
    '/users/:id',
    {
      config: { auth: {} },
      schema: {
        tags,
        summary: 'A user (admin, or the user themself)',
        description: 'A non-admin asking for another user gets 403.',
        params: S.IdParams,
        response: withProblems({ 200: S.PublicUser }),
      },
    },
    async (request) => users.get(requestContext(request), request.params.id),
  );

  app.patch(
    '/users/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Change role or disable (admin); takes effect on every replica at once',
        description: 'Disabling a user revokes their sessions and API keys on every replica within a second.',
        params: S.IdParams,
        body: S.UserPatch,
        response: withProblems({ 200: S.PublicUser }),
      },
    },
    async (request) => users.update(requestContext(request), request.params.id, request.body),
  );
};
