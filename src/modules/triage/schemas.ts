// Request and response schemas of the error triage routes.
import { Type } from '@sinclair/typebox';

const Since = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    'Only errors at or after this time: an ISO 8601 time, or a duration back from now (`15m`, `2h`, `7d`).',
});

export const ErrorsQuery = Type.Object(
  {
    since: Type.Optional(Since),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Most groups returned.' }),
  },
  { additionalProperties: false },
);

export const SummaryQuery = Type.Object(
  {
    since: Type.Optional(Since),
    limit: Type.Integer({ minimum: 1, maximum: 50, default: 20, description: 'Most groups summarized.' }),
  },
  { additionalProperties: false },
);

const ErrorGroup = Type.Object({
  fingerprint: Type.String({ description: 'Short stable hash of (code, pattern, route).' }),
  code: Type.String({ description: 'Error code, else error type, else HTTP_<status>.' }),
  pattern: Type.String({
    description: 'The message with ids, numbers, addresses and quoted values replaced.',
  }),
  route: Type.String({ description: 'Route template, `unmatched`, or `none` outside a request.' }),
  count: Type.Integer(),
  first_seen: Type.String({ format: 'date-time' }),
  last_seen: Type.String({ format: 'date-time' }),
  levels: Type.Array(Type.String()),
  statuses: Type.Array(Type.Integer()),
  methods: Type.Array(Type.String()),
  sample_message: Type.String({ description: 'The most recent message, redacted.' }),
  request_ids: Type.Array(Type.String(), { description: 'Up to 5, most recent first.' }),
  trace_ids: Type.Array(Type.String(), { description: 'Up to 5, most recent first (when tracing is on).' }),
});

const Sources = Type.Object({
  ring: Type.Optional(Type.Integer({ description: "Events taken from this process's in-memory ring." })),
  log_file: Type.Optional(
    Type.Object({
      path: Type.String(),
      lines: Type.Integer(),
      malformed: Type.Integer(),
      truncated: Type.Boolean({ description: 'Older content was left unread (size or line cap).' }),
      error: Type.Optional(Type.String({ description: 'Why the file could not be read (e.g. ENOENT).' })),
    }),
  ),
});

const reportProperties = {
  generated_at: Type.String({ format: 'date-time' }),
  sources: Sources,
  total: Type.Integer({ description: 'Error events in the window.' }),
  total_groups: Type.Integer({ description: 'Groups in the window, before `limit`.' }),
  groups: Type.Array(ErrorGroup),
};

export const ErrorReport = Type.Object(reportProperties);

const Triage = Type.Object({
  fingerprint: Type.String(),
  likely_cause: Type.String(),
  severity: Type.Union([
    Type.Literal('critical'),
    Type.Literal('high'),
    Type.Literal('medium'),
    Type.Literal('low'),
  ]),
  next_steps: Type.Array(Type.String()),
  runbook: Type.Optional(Type.String()),
  source: Type.Union([Type.Literal('rules'), Type.Literal('llm')]),
});

export const ErrorSummary = Type.Object({
  ...reportProperties,
  summary: Type.Object({
    source: Type.Union([Type.Literal('rules'), Type.Literal('llm')]),
    provider: Type.Optional(Type.String()),
    model: Type.Optional(Type.String()),
    llm_error: Type.Optional(
      Type.String({ description: 'Why the rules answered although an LLM is configured.' }),
    ),
    groups: Type.Array(Triage),
  }),
});
