// The triage use case, shared by the admin routes and the CLI: collect error events from the sources,
// group them, and summarize the groups with the LLM when one is configured, else (or when it fails) by rules.
import type { Config } from '../../config/schema.js';
import { InvalidParametersError } from '../../lib/errors.js';
import type { ErrorEvent, ErrorRing } from './events.js';
import { groupEvents, type ErrorGroup } from './group.js';
import {
  LLM_DEFAULTS,
  LlmAnswerError,
  askLlm,
  type LlmProvider,
  type LlmSettings,
  type LlmTransport,
} from './llm.js';
import { readLogFile, type LogFileStats } from './log-file.js';
import { redact } from './redact.js';
import { triageByRules, type Triage } from './rules.js';

export interface ErrorReport {
  generated_at: string;
  sources: { ring?: number; log_file?: LogFileStats & { error?: string } };
  /** Events in the window, all groups included. */
  total: number;
  total_groups: number;
  groups: ErrorGroup[];
}

export interface Summary {
  source: 'rules' | 'llm';
  provider?: LlmProvider;
  model?: string;
  /** Why the LLM was not used although one is configured. */
  llm_error?: string;
  groups: Triage[];
}

export interface ReportOptions {
  /** Epoch milliseconds: older events are left out. */
  since?: number | undefined;
  limit: number;
  now?: Date;
}

// The groups the LLM is asked about: the most frequent ones, so the prompt stays small; the rest get rules.
export const MAX_LLM_GROUPS = 20;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** `since` as epoch milliseconds: a duration back from `now`, or an ISO 8601 time. */
export function parseSince(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const duration = /^(\d{1,6})([smhdw])$/.exec(value.trim());
  if (duration !== null) return now - Number(duration[1]) * UNIT_MS[duration[2]!]!;
  const time = ISO_TIME.test(value.trim()) ? Date.parse(value.trim()) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new InvalidParametersError([
      { name: 'since', in: 'query', reason: 'must be an ISO 8601 time or a duration like 15m, 2h, 7d' },
    ]);
  }
  return time;
}

export async function errorReport(
  sources: { ring?: ErrorRing | undefined; logFilePath?: string | undefined },
  options: ReportOptions,
): Promise<ErrorReport> {
  const since = options.since ?? Number.NEGATIVE_INFINITY;
  const report: ErrorReport['sources'] = {};
  const ringEvents = sources.ring?.snapshot().filter((e) => e.time >= since) ?? [];
  if (sources.ring !== undefined) report.ring = ringEvents.length;
  let fileEvents: ErrorEvent[] = [];
  if (sources.logFilePath !== undefined) {
    try {
      const read = await readLogFile(sources.logFilePath);
      report.log_file = read.stats;
      // When the file is this process's own output, a request is in both sources: the ring's event wins.
      const inRing = new Set(ringEvents.map((e) => e.request_id).filter((id) => id !== undefined));
      fileEvents = read.events.filter(
        (e) => e.time >= since && (e.request_id === undefined || !inRing.has(e.request_id)),
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      report.log_file = { path: sources.logFilePath, lines: 0, malformed: 0, truncated: false, error: code };
    }
  }
  const events = [...ringEvents, ...fileEvents];
  const groups = groupEvents(events);
  return {
    generated_at: (options.now ?? new Date()).toISOString(),
    sources: report,
    total: events.length,
    total_groups: groups.length,
    groups: groups.slice(0, options.limit),
  };
}

/** The configured LLM, or undefined when TRIAGE_LLM_PROVIDER is none. */
export function llmSettingsFrom(
  config: Pick<
    Config,
    'TRIAGE_LLM_PROVIDER' | 'TRIAGE_LLM_BASE_URL' | 'TRIAGE_LLM_MODEL' | 'TRIAGE_LLM_API_KEY'
  >,
): LlmSettings | undefined {
  const provider = config.TRIAGE_LLM_PROVIDER;
  if (provider === 'none') return undefined;
  return {
    provider,
    baseUrl: config.TRIAGE_LLM_BASE_URL ?? LLM_DEFAULTS[provider].baseUrl,
    model: config.TRIAGE_LLM_MODEL ?? LLM_DEFAULTS[provider].model,
    apiKey: config.TRIAGE_LLM_API_KEY,
  };
}

/** A short reason for the answer; never the provider's body, which could echo anything. */
function describeLlmError(error: unknown): string {
  if (error instanceof LlmAnswerError) return error.message;
  const outcome = (error as { outcome?: unknown }).outcome;
  if (typeof outcome === 'string') {
    const status = (error as { status?: unknown }).status;
    return `outbound call failed: ${outcome}${typeof status === 'number' ? ` (${status})` : ''}`;
  }
  return redact(`request failed: ${error instanceof Error ? error.message : String(error)}`).slice(0, 300);
}

export async function summarize(
  groups: readonly ErrorGroup[],
  llm: { settings: LlmSettings; transport: () => LlmTransport } | undefined,
): Promise<Summary> {
  const rules = groups.map(triageByRules);
  if (llm === undefined) return { source: 'rules', groups: rules };
  const { provider, model } = llm.settings;
  const fallback = (reason: string): Summary => ({
    source: 'rules',
    provider,
    model,
    llm_error: reason,
    groups: rules,
  });
  if (llm.settings.apiKey === undefined) return fallback('TRIAGE_LLM_API_KEY is not set');
  // Nothing to ask about: no call, no cost.
  if (groups.length === 0) return { source: 'rules', provider, model, groups: [] };
  const hints = new Map(rules.map((t) => [t.fingerprint, t]));
  let answered: Map<string, Triage>;
  try {
    answered = await askLlm(llm.transport(), llm.settings, groups.slice(0, MAX_LLM_GROUPS), hints);
  } catch (error) {
    return fallback(describeLlmError(error));
  }
  // A group the model skipped keeps its rule-based triage (marked so).
  return {
    source: 'llm',
    provider,
    model,
    groups: rules.map((rule) => answered.get(rule.fingerprint) ?? rule),
  };
}
