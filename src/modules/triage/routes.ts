// GET /v1/admin/errors (grouped errors of the ring and the log file) and GET /v1/admin/errors/summary (the
// same groups triaged by the configured LLM, or by rules).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/schema.js';
import { withProblems } from '../../lib/problem.js';
import type { LlmTransport } from './llm.js';
import * as S from './schemas.js';
import { errorReport, llmSettingsFrom, parseSince, summarize } from './service.js';

export const triageRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const sources = { ring: app.errorTracking.ring, logFilePath: config.LOG_FILE_PATH };
  const settings = llmSettingsFrom(config);
  // Asked for on use: the registry creates the `llm` client (and its breaker) once, on the first summary.
  const transport = (): LlmTransport => app.outbound.client('llm', settings!.baseUrl);

  app.get(
    '/admin/errors',
    {
      config: { auth: { scope: 'admin' } },
      schema: {
        tags: ['admin'],
        summary: 'Recent errors grouped by fingerprint (admin)',
        description:
          '5xx answers of this instance, grouped by a fingerprint of the error code, its message with ids, numbers and quoted values taken out, and the route; with counts, first and last seen, and redacted samples.',
        querystring: S.ErrorsQuery,
        response: withProblems({ 200: S.ErrorReport }),
      },
    },
    async (request) => {
      const { since, limit } = request.query;
      return errorReport(sources, { since: parseSince(since, Date.now()), limit });
    },
  );

  app.get(
    '/admin/errors/summary',
    {
      config: { auth: { scope: 'admin' } },
      schema: {
        tags: ['admin'],
        summary: 'Recent error groups with a likely cause, severity and next steps (admin)',
        description:
          'A summary of the error groups: from an LLM when one is configured (TRIAGE_LLM_*), else from rules; falls back to the rules when the LLM fails.',
        querystring: S.SummaryQuery,
        response: withProblems({ 200: S.ErrorSummary }),
      },
    },
    async (request) => {
      const { since, limit } = request.query;
      const report = await errorReport(sources, { since: parseSince(since, Date.now()), limit });
      const summary = await summarize(report.groups, settings && { settings, transport });
      return { ...report, summary };
    },
  );
};
