import { Type } from '@sinclair/typebox';

const Ratio = Type.Union([Type.Number(), Type.Null()]);
const Window = Type.Union([Type.Number(), Type.Null()]);

export const SloReport = Type.Object(
  {
    source: Type.Union([Type.Literal('prometheus'), Type.Literal('process')]),
    generated_at: Type.String({ format: 'date-time' }),
    window: Type.String({ description: '`30d` from Prometheus, `process lifetime` from this process' }),
    objectives: Type.Object({
      success_ratio: Type.Number(),
      p99_latency_seconds: Type.Number(),
    }),
    indicators: Type.Object({
      requests: Type.Union([Type.Integer(), Type.Null()]),
      errors: Type.Union([Type.Integer(), Type.Null()]),
      success_ratio: Ratio,
      p99_latency_seconds: Ratio,
    }),
    error_budget: Type.Object({
      allowed_error_ratio: Type.Number(),
      consumed_ratio: Type.Number(),
      remaining_ratio: Type.Number(),
    }),
    burn_rates: Type.Optional(Type.Object({ '5m': Window, '30m': Window, '1h': Window, '6h': Window })),
    meeting: Type.Object({ success_ratio: Type.Boolean(), p99_latency: Type.Boolean() }),
    prometheus_error: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
