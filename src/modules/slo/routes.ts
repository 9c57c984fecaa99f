// GET /v1/slo (alias /slo/report): the service's objectives, where it stands, and the error budget left.
// Readable by any caller the random API admits (any identity, or anyone while ANONYMOUS_ACCESS is on).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/schema.js';
import { withProblems } from '../../lib/problem.js';
import * as S from './schemas.js';
import { sloReport } from './service.js';

type SloConfig = Pick<
  Config,
  'SLO_TARGET_SUCCESS_RATIO' | 'SLO_TARGET_P99_LATENCY_SECONDS' | 'PROMETHEUS_BASE_URL' | 'ANONYMOUS_ACCESS'
>;

export const sloRoutes: FastifyPluginAsyncTypebox<{ config: SloConfig }> = async (app, { config }) => {
  const objectives = {
    success_ratio: config.SLO_TARGET_SUCCESS_RATIO,
    p99_latency_seconds: config.SLO_TARGET_P99_LATENCY_SECONDS,
  };
  const prometheus =
    config.PROMETHEUS_BASE_URL === undefined
      ? undefined
      : app.outbound.client('prometheus', config.PROMETHEUS_BASE_URL);
  const handler = () => sloReport(objectives, { registry: app.metrics.registry, prometheus });

  for (const url of ['/v1/slo', '/slo/report']) {
    app.get(
      url,
      {
        config: { auth: { anonymous: config.ANONYMOUS_ACCESS } },
        schema: {
          tags: ['slo'],
          summary:
            url === '/v1/slo'
              ? 'Service level objectives, current indicators and error budget'
              : 'Alias of /v1/slo',
          description:
            "The success-ratio and latency objectives, the indicators over the window (from Prometheus when PROMETHEUS_BASE_URL is set, else from this process's own metrics) and the error budget left.",
          response: withProblems({ 200: S.SloReport }),
        },
      },
      handler,
    );
  }
};
