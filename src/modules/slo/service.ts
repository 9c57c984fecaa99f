// The SLO report: the objectives (SLO_TARGET_*), where the service stands against them, and the error
// budget left. Prometheus's recording rules are the source when PROMETHEUS_BASE_URL is set; this process's
// own counters otherwise, and also when Prometheus cannot answer (the report says so and why).
import type { Registry } from 'prom-client';
import { OutboundError, type OutboundClient } from '../../adapters/http/outbound.js';
import { processIndicators } from './process-source.js';
import { PrometheusAnswerError, prometheusIndicators } from './prometheus-source.js';

export interface Objectives {
  success_ratio: number;
  p99_latency_seconds: number;
}

type Window = '5m' | '30m' | '1h' | '6h';

export interface SloReport {
  source: 'prometheus' | 'process';
  generated_at: string;
  /** What the indicators cover. */
  window: string;
  objectives: Objectives;
  indicators: {
    requests: number | null;
    errors: number | null;
    /** null without traffic: no answer has been given yet, so none has failed. */
    success_ratio: number | null;
    p99_latency_seconds: number | null;
  };
  error_budget: {
    /** The share of requests allowed to fail: 1 - the success objective. */
    allowed_error_ratio: number;
    /** Share of the budget spent; above 1 the objective is missed. */
    consumed_ratio: number;
    remaining_ratio: number;
  };
  /** Burn rates over the alert windows (prometheus only): 1 spends the budget exactly over the window. */
  burn_rates?: Record<Window, number | null>;
  meeting: { success_ratio: boolean; p99_latency: boolean };
  /** Why the prometheus source was not used although configured. */
  prometheus_error?: string;
}

const round = (value: number) => Math.round(value * 1e6) / 1e6;

function budget(objectives: Objectives, errorRatio: number | null): SloReport['error_budget'] {
  const allowed = 1 - objectives.success_ratio;
  const consumed = errorRatio === null ? 0 : errorRatio / allowed;
  return {
    allowed_error_ratio: round(allowed),
    consumed_ratio: round(consumed),
    remaining_ratio: round(1 - consumed),
  };
}

function meeting(objectives: Objectives, successRatio: number | null, p99: number | null) {
  return {
    success_ratio: successRatio === null || successRatio >= objectives.success_ratio,
    p99_latency: p99 === null || p99 <= objectives.p99_latency_seconds,
  };
}

export interface SloSources {
  registry: Registry;
  /** The Prometheus dependency, when PROMETHEUS_BASE_URL is set. */
  prometheus?: OutboundClient;
  now?: () => Date;
}

export async function sloReport(objectives: Objectives, sources: SloSources): Promise<SloReport> {
  const generatedAt = (sources.now?.() ?? new Date()).toISOString();
  let prometheusError: string | undefined;
  if (sources.prometheus !== undefined) {
    try {
      const p = await prometheusIndicators(sources.prometheus);
      const successRatio = p.error_ratio_30d === null ? null : round(1 - p.error_ratio_30d);
      const allowed = 1 - objectives.success_ratio;
      const burn = (ratio: number | null) => (ratio === null ? null : round(ratio / allowed));
      return {
        source: 'prometheus',
        generated_at: generatedAt,
        window: '30d',
        objectives,
        indicators: {
          requests: p.requests_30d === null ? null : Math.round(p.requests_30d),
          errors:
            p.requests_30d === null || p.error_ratio_30d === null
              ? null
              : Math.round(p.requests_30d * p.error_ratio_30d),
          success_ratio: successRatio,
          p99_latency_seconds: p.p99_latency_seconds === null ? null : round(p.p99_latency_seconds),
        },
        error_budget: budget(objectives, p.error_ratio_30d),
        burn_rates: {
          '5m': burn(p.error_ratios['5m']),
          '30m': burn(p.error_ratios['30m']),
          '1h': burn(p.error_ratios['1h']),
          '6h': burn(p.error_ratios['6h']),
        },
        meeting: meeting(objectives, successRatio, p.p99_latency_seconds),
      };
    } catch (error) {
      // Only a dependency failure falls back; a bug in this code must surface as one.
      if (!(error instanceof OutboundError || error instanceof PrometheusAnswerError)) throw error;
      prometheusError = error.message;
    }
  }
  const p = await processIndicators(sources.registry);
  const errorRatio = p.requests === 0 ? null : p.errors / p.requests;
  const successRatio = errorRatio === null ? null : round(1 - errorRatio);
  return {
    source: 'process',
    generated_at: generatedAt,
    window: 'process lifetime',
    objectives,
    indicators: {
      requests: p.requests,
      errors: p.errors,
      success_ratio: successRatio,
      p99_latency_seconds: p.p99_latency_seconds === null ? null : round(p.p99_latency_seconds),
    },
    error_budget: budget(objectives, errorRatio),
    meeting: meeting(objectives, successRatio, p.p99_latency_seconds),
    ...(prometheusError === undefined ? {} : { prometheus_error: prometheusError }),
  };
}
