// /v1/auth/*: login (JSON or OAuth2 form), refresh, logout, me, password, register; and the JWKS document.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { LRUCache } from 'lru-cache';
import { notFound } from '../../lib/errors.js';
import { withProblems } from '../../lib/problem.js';
import { requestContext } from './principal.js';
import * as users from '../users/repository.js';
import { toPublic } from '../users/service.js';
import { PublicUser } from '../users/schemas.js';
import * as S from './schemas.js';

const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };

export const authRoutes: FastifyPluginAsyncTypebox<{ allowSignup: boolean }> = async (app, opts) => {
  const { auth } = app.identity;
  // Username and creation time never change, so /auth/me (called on every page load by many clients)
  // reads them once per user instead of once per call. Bounded, per app instance.
  const profiles = new LRUCache<string, { username: string; created_at: string }>({ max: 10_000 });
  const tags = ['auth'];

  app.post(
    '/auth/login',
    {
      config: { rateLimitGroup: 'auth' },
      schema: {
        tags,
        summary: 'Exchange a username and password for an access and a refresh token',
        description: 'JSON, or form-encoded as OAuth2 password-grant clients send it.',
        body: S.LoginBody,
        response: withProblems({ 200: S.TokenPair }),
      },
    },
    async (request, reply) => {
      reply.headers(noStore);
      return auth.login(request.body.username, request.body.password, requestContext(request));
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: { rateLimitGroup: 'auth' },
      schema: {
        tags,
        summary: 'Rotate a refresh token: a new pair; the old refresh token stops working',
        description:
          'Each refresh token works once. Presenting a token that was already rotated is treated as theft: the whole session is revoked.',
        body: S.RefreshBody,
        response: withProblems({ 200: S.TokenPair }),
      },
    },
    async (request, reply) => {
      reply.headers(noStore);
      return auth.refresh(request.body.refresh_token, requestContext(request));
    },
  );

  app.post(
    '/auth/logout',
    {
      config: { auth: { session: true } },
      schema: {
        tags,
        summary: 'End the session: its access and refresh tokens stop working on every replica',
        description:
          'Revokes the session of the access token (and of the refresh token given, when it belongs to the same user); every replica refuses them within a second.',
        body: Type.Optional(S.LogoutBody),
        response: withProblems({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await auth.logout(requestContext(request), request.body?.refresh_token);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      config: { auth: {} },
      schema: {
        tags,
        summary: 'The caller',
        description: 'The user behind the access token or API key: id, username, role and creation time.',
        response: withProblems({ 200: S.Me }),
      },
    },
    async (request) => {
      const principal = request.principal!;
      let profile = profiles.get(principal.userId);
      if (profile === undefined) {
        const user = await users.findById(app.database.db, principal.userId);
        if (user === undefined) throw notFound('user not found');
        const { username, created_at } = toPublic(user);
        profile = { username, created_at };
        profiles.set(principal.userId, profile);
      }
      // The role comes from the credential: a role change ends the user's sessions, so it is current.
      return {
        id: principal.userId,
        username: profile.username,
        role: principal.role,
        created_at: profile.created_at,
      };
    },
  );

  app.put(
    '/auth/password',
    {
      config: { auth: { session: true } },
      schema: {
        tags,
        summary: "Change the caller's password; their other sessions are revoked",
        description:
          'Needs the current password. The new one must meet the password policy; every other session of the user ends at once.',
        body: S.PasswordBody,
        response: withProblems({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await auth.changePassword(
        requestContext(request),
        request.body.current_password,
        request.body.new_password,
      );
      return reply.code(204).send(null);
    },
  );

  // Only with ALLOW_SIGNUP: otherwise the route does not exist, and the answer is the ordinary 404.
  if (opts.allowSignup)
    app.post(
      '/auth/register',
      {
        config: { rateLimitGroup: 'auth' },
        schema: {
          tags,
          summary: 'Sign up (served only when ALLOW_SIGNUP=true)',
          description:
            'Creates a user with the `user` role. The route exists only when ALLOW_SIGNUP is on; otherwise it is a 404.',
          body: S.RegisterBody,
          response: withProblems({ 201: PublicUser }),
        },
      },
      async (request, reply) => {
        const user = await auth.register(
          requestContext(request),
          request.body.username,
          request.body.password,
        );
        return reply.code(201).send(toPublic(user));
      },
    );
};

export const jwksRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/.well-known/jwks.json',
    {
      config: { operational: true },
      schema: {
        tags: ['auth'],
        summary: 'Public keys that verify access tokens (when tokens are signed with EdDSA)',
        description:
          'A JWKS (RFC 7517) of the current signing key and the previous keys still accepted during a rotation. 404 when tokens are signed with a shared secret (HS256), which has no public part.',
        response: withProblems({ 200: S.Jwks }),
      },
    },
    async (_request, reply) => {
      const jwks = app.identity.tokens.jwks();
      if (jwks === undefined)
        throw notFound('tokens are signed with a shared secret (HS256); there are no public keys');
      reply.header('cache-control', 'public, max-age=300');
      return jwks;
    },
  );
};
