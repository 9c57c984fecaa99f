// GET /v1/admin/audit: security events, newest first.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { withProblems } from '../../lib/problem.js';
import * as S from './schemas.js';
import * as audit from './repository.js';

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/admin/audit',
    {
      config: { auth: { scope: 'admin' } },
      schema: {
        tags: ['admin'],
        summary: 'Security audit events (admin), newest first',
        description:
          'Logins, failed logins, sessions, password changes, users and API keys: who, from where, with which request id. Paged by `cursor`.',
        querystring: S.AuditQuery,
        response: withProblems({ 200: S.AuditPage }),
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const rows = await audit.list(app.database.db, limit + 1, cursor);
      const page = rows.slice(0, limit);
      return {
        data: page.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
        next_cursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );
};
