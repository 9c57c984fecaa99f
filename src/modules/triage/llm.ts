// The LLM side of the triage summary: one request per summary to an OpenAI-compatible chat-completions API
// or to Gemini's generateContent, asking for {likely_cause, severity, next_steps} per group, and a
// defensive parse of whatever comes back. Only redacted, normalized group data is ever sent.
import type { OutboundClient } from '../../adapters/http/outbound.js';
import type { ErrorGroup } from './group.js';
import { redact } from './redact.js';
import { SEVERITIES, type Severity, type Triage } from './rules.js';

export type LlmProvider = 'openai' | 'gemini';

export const LLM_DEFAULTS: Record<LlmProvider, { baseUrl: string; model: string }> = {
  openai: { baseUrl: 'https://api.openai.com/v1', model: 'gpt-4o-mini' },
  gemini: { baseUrl: 'https://generativelanguage.googleapis.com/v1beta', model: 'gemini-2.0-flash' },
};

export interface LlmSettings {
  provider: LlmProvider;
  baseUrl: string;
  model: string;
  apiKey: string | undefined;
}

/** The shared outbound client of the `llm` dependency, whose base URL is the provider's base URL. */
export type LlmTransport = Pick<OutboundClient, 'request'>;

/** The provider answered, but not with something usable. */
export class LlmAnswerError extends Error {}

const RUNBOOKS = [
  'CircuitBreakerOpen',
  'ErrorBudgetBurnFast',
  'ErrorBudgetBurnSlow',
  'EventLoopLagHigh',
  'HighLatencyP99',
  'InstanceDown',
  'LoadShedding',
  'NotReady',
  'PodCrashLooping',
  'RateLimitStoreDegraded',
];

const SYSTEM_PROMPT = [
  'You triage production errors of "reliability-api", a Node.js HTTP API (Fastify, PostgreSQL, Redis,',
  'outbound HTTP calls behind circuit breakers, load shedding, rate limiting).',
  'You get error groups: an error code, a normalized message (<num>, <uuid>, <str>, [REDACTED] and similar',
  'placeholders stand for removed values), the route template, HTTP statuses, a count and a time range.',
  'For every group answer with its fingerprint, the likely cause, a severity (critical, high, medium or low)',
  'and two to four concrete next steps; point at one of these runbooks when one fits:',
  `${RUNBOOKS.map((r) => `docs/runbooks/${r}.md`).join(', ')}.`,
  'Reply with JSON only: {"groups":[{"fingerprint":"...","likely_cause":"...","severity":"...","next_steps":["..."]}]}',
].join(' ');

// Bounds on what is sent and on what is accepted back.
const MAX_SAMPLE_CHARS = 300;
const MAX_CAUSE_CHARS = 500;
const MAX_STEPS = 6;
const MAX_STEP_CHARS = 300;

/** The user message: only fields that describe the failure, never request or trace ids. */
export function promptFor(groups: readonly ErrorGroup[], hints: ReadonlyMap<string, Triage>): string {
  const payload = groups.map((g) => ({
    fingerprint: g.fingerprint,
    code: g.code,
    message: g.pattern,
    sample_message: g.sample_message.slice(0, MAX_SAMPLE_CHARS),
    route: g.route,
    methods: g.methods,
    statuses: g.statuses,
    count: g.count,
    first_seen: g.first_seen,
    last_seen: g.last_seen,
    rule_based_guess: hints.get(g.fingerprint)?.likely_cause,
  }));
  // Redacted again as a whole: the groups are already redacted, this guards against any field added later.
  return redact(JSON.stringify({ groups: payload }));
}

function requestFor(
  settings: LlmSettings,
  prompt: string,
): { path: string; headers: Record<string, string>; json: unknown } {
  const key = settings.apiKey ?? '';
  if (settings.provider === 'openai') {
    return {
      path: '/chat/completions',
      headers: { authorization: `Bearer ${key}` },
      json: {
        model: settings.model,
        temperature: 0,
        response_format: { type: 'json_object' },
        messages: [
          { role: 'system', content: SYSTEM_PROMPT },
          { role: 'user', content: prompt },
        ],
      },
    };
  }
  return {
    path: `/models/${encodeURIComponent(settings.model)}:generateContent`,
    // The header, not ?key=: URLs end up in access logs and traces.
    headers: { 'x-goog-api-key': key },
    json: {
      systemInstruction: { parts: [{ text: SYSTEM_PROMPT }] },
      contents: [{ role: 'user', parts: [{ text: prompt }] }],
      generationConfig: { temperature: 0, responseMimeType: 'application/json' },
    },
  };
}

function bodyJson(body: unknown): unknown {
  if (typeof body === 'string') return JSON.parse(body) as unknown;
  if (body instanceof Uint8Array) return JSON.parse(Buffer.from(body).toString('utf8')) as unknown;
  return body;
}

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

/** The model's text out of either provider's answer shape. */
function completionText(provider: LlmProvider, answer: unknown): string {
  const root = asObject(answer);
  if (provider === 'openai') {
    const choices = root?.choices;
    const message = asObject(asObject(Array.isArray(choices) ? choices[0] : undefined)?.message);
    if (typeof message?.content === 'string') return message.content;
    throw new LlmAnswerError('no choices[0].message.content in the answer');
  }
  const candidates = root?.candidates;
  const content = asObject(asObject(Array.isArray(candidates) ? candidates[0] : undefined)?.content);
  const parts = Array.isArray(content?.parts) ? content.parts : [];
  const text = parts.map((p) => asObject(p)?.text).filter((t): t is string => typeof t === 'string');
  if (text.length > 0) return text.join('');
  const blocked = asObject(root?.promptFeedback)?.blockReason;
  throw new LlmAnswerError(
    typeof blocked === 'string'
      ? `prompt blocked: ${blocked}`
      : 'no candidates[0].content.parts text in the answer',
  );
}

/** Per-group triage parsed out of the model's text; entries that do not fit are dropped. */
export function parseTriage(text: string, fingerprints: ReadonlySet<string>): Map<string, Triage> {
  // Models sometimes wrap JSON in a Markdown fence despite being asked not to.
  const unfenced = text.replace(/^\s*```(?:json)?\s*/i, '').replace(/\s*```\s*$/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(unfenced);
  } catch {
    throw new LlmAnswerError('the model did not answer with JSON');
  }
  const root = asObject(parsed);
  const items: unknown[] = Array.isArray(parsed)
    ? parsed
    : Array.isArray(root?.groups)
      ? root.groups
      : Object.entries(root ?? {}).map(([fingerprint, v]) => ({ fingerprint, ...asObject(v) }));
  const out = new Map<string, Triage>();
  for (const item of items) {
    const entry = asObject(item);
    const fingerprint = entry?.fingerprint;
    if (typeof fingerprint !== 'string' || !fingerprints.has(fingerprint)) continue;
    const cause = entry?.likely_cause;
    const severity = typeof entry?.severity === 'string' ? entry.severity.toLowerCase() : undefined;
    if (typeof cause !== 'string' || cause.trim() === '') continue;
    if (!SEVERITIES.includes(severity as Severity)) continue;
    const steps = Array.isArray(entry?.next_steps) ? entry.next_steps : [];
    out.set(fingerprint, {
      fingerprint,
      likely_cause: cause.trim().slice(0, MAX_CAUSE_CHARS),
      severity: severity as Severity,
      next_steps: steps
        .filter((s): s is string => typeof s === 'string' && s.trim() !== '')
        .slice(0, MAX_STEPS)
        .map((s) => s.trim().slice(0, MAX_STEP_CHARS)),
      source: 'llm',
    });
  }
  if (out.size === 0) throw new LlmAnswerError('the answer held no usable group');
  return out;
}

/** Asks the model about `groups`; rejects on any transport failure or unusable answer. */
export async function askLlm(
  transport: LlmTransport,
  settings: LlmSettings,
  groups: readonly ErrorGroup[],
  hints: ReadonlyMap<string, Triage>,
): Promise<Map<string, Triage>> {
  const { path, headers, json } = requestFor(settings, promptFor(groups, hints));
  // A completion has no side effect, so repeating it after a timeout or a 429/5xx is safe: the shared
  // client retries only calls marked idempotent, and a POST is not by default.
  const response = await transport.request({ method: 'POST', path, headers, json, idempotent: true });
  if (response.status < 200 || response.status >= 300) {
    throw new LlmAnswerError(`the provider answered ${response.status}`);
  }
  let answer: unknown;
  try {
    answer = bodyJson(response.body);
  } catch {
    throw new LlmAnswerError('the provider answer is not JSON');
  }
  return parseTriage(completionText(settings.provider, answer), new Set(groups.map((g) => g.fingerprint)));
}
