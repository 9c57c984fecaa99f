// Rule-based triage of an error group: a likely cause from its code, status and message, a severity from
// its status, rate and count, and next steps pointing at the runbook in docs/runbooks/. Deterministic, so
// it is useful with no LLM configured and is the fallback whenever the LLM fails.
import type { ErrorGroup } from './group.js';

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Triage {
  fingerprint: string;
  likely_cause: string;
  severity: Severity;
  next_steps: string[];
  /** Path of the runbook to follow, when one applies. */
  runbook?: string;
  source: 'rules' | 'llm';
}

interface Rule {
  /** Matched against "<code> <pattern> <sample message>" of the group (the sample keeps ports and numbers). */
  match: RegExp;
  statuses?: readonly number[];
  cause: string;
  runbook?: string;
  steps: string[];
  /** Severity floor or cap for this kind of failure. */
  minSeverity?: Severity;
  maxSeverity?: Severity;
}

const RUNBOOKS = 'docs/runbooks';

// First match wins: the specific causes come before the generic ones.
const RULES: readonly Rule[] = [
  {
    match: /APP_FAULT_INJECTED|injected fault/i,
    cause: 'A drill asked for this failure with X-Fault-Status (fault injection is enabled).',
    steps: [
      'Confirm a drill is running; otherwise find who sends X-Fault-Status (see the request ids).',
      'Turn FAULT_INJECTION_ENABLED off outside drills.',
    ],
    maxSeverity: 'low',
  },
  {
    match: /breaker|circuit|BrokenCircuit|isolated/i,
    cause: 'A circuit breaker is open: an outbound dependency kept failing and calls now fail fast.',
    runbook: 'CircuitBreakerOpen.md',
    steps: [
      'Find which dependency (the breaker label of circuit_breaker_state) and check its health.',
      'Look at the errors before the breaker opened (timeouts, connection refused) in the logs.',
    ],
  },
  {
    match: /57014|statement timeout|canceling statement/i,
    cause: 'A database query ran past DB_STATEMENT_TIMEOUT_MS and was cancelled.',
    runbook: 'HighLatencyP99.md',
    steps: [
      'Find the slow statement (pg_stat_statements, or the query in the log line of a sample request id).',
      'Check for lock waits and missing indexes; compare with the database CPU and I/O.',
    ],
  },
  {
    match: /schema is behind|pending migrations|relation \S+ does not exist|42P01/i,
    cause: 'The database schema does not match the code: migrations were not applied before this release.',
    runbook: 'PodCrashLooping.md',
    steps: [
      'Run `migrate status` against the database, then `migrate up` (the deploy job normally does).',
      'Check that the migration job of this release ran and succeeded before the pods started.',
    ],
    minSeverity: 'high',
  },
  {
    match:
      /postgres|pglite|database|kysely|\bpg\b|ECONNREFUSED.*5432|too many clients|connection terminated|\b57P0\d\b|\b08\d{3}\b|\b53300\b/i,
    cause: 'The database is unavailable, refusing connections or out of connections.',
    runbook: 'NotReady.md',
    steps: [
      'Check /health/ready and the database itself (reachable, not in recovery, connection count).',
      'Compare DB_POOL_SIZE times the replicas with max_connections.',
    ],
    minSeverity: 'high',
  },
  {
    match: /APP_RATE_LIMIT_UNAVAILABLE|redis|ECONNREFUSED.*6379/i,
    cause: 'The Redis store is failing (rate limiting or shared state degrades or answers 503).',
    runbook: 'RateLimitStoreDegraded.md',
    steps: [
      'Ping Redis from the namespace and check its memory and connection count.',
      'With RATE_LIMIT_FAILURE_MODE=closed requests get 503: consider open while Redis recovers.',
    ],
  },
  {
    match: /APP_OVERLOADED|overloaded|event.?loop|heap/i,
    cause: 'The process is overloaded (event-loop delay or heap use past the load-shedding thresholds).',
    runbook: 'LoadShedding.md',
    steps: [
      'Check CPU throttling, event-loop delay and heap use of the instances shedding load.',
      'Scale out, or find the synchronous work or the leak (see EventLoopLagHigh.md).',
    ],
  },
  {
    match: /APP_HASHING_BUSY/i,
    cause: 'Too many password hashes at once: a login storm or a credential-stuffing attack.',
    runbook: 'LoadShedding.md',
    steps: [
      'Check the login rate and the failed-login audit events by client IP.',
      'Tighten the auth rate-limit policy or raise PASSWORD_HASH_CONCURRENCY on larger machines.',
    ],
  },
  {
    match: /timed? ?out|timeout|ETIMEDOUT|UND_ERR_\w*TIMEOUT|AbortError|TaskCancelled/i,
    statuses: [504],
    cause: 'An upstream dependency is too slow for its deadline (OUTBOUND_TIMEOUT_MS).',
    runbook: 'HighLatencyP99.md',
    steps: [
      'Find the dependency in the traces of the sample trace ids and check its latency.',
      'If it stays slow, the breaker opens: see CircuitBreakerOpen.md.',
    ],
  },
  {
    match: /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|socket hang up|bad gateway|upstream|OutboundError/i,
    statuses: [502, 503],
    cause: 'An upstream dependency is unreachable or failing.',
    runbook: 'CircuitBreakerOpen.md',
    steps: [
      'Check DNS and network reachability of the dependency from the pod.',
      'Check the dependency status page or its own metrics.',
    ],
  },
  {
    match: /out of memory|ERR_WORKER_OUT_OF_MEMORY|ENOMEM|OOM/i,
    cause: 'The process ran out of memory.',
    runbook: 'PodCrashLooping.md',
    steps: ['Check container restarts (OOMKilled) and the heap trend before the crash.'],
    minSeverity: 'high',
  },
  {
    match:
      /FST_ERR_RESPONSE_SERIALIZATION|FST_ERR_\w*SCHEMA|TypeError|ReferenceError|RangeError|SyntaxError|Cannot read propert|is not a function|undefined/i,
    cause:
      'A bug: the code failed on input it did not expect (an exception or a response not matching its schema).',
    runbook: 'ErrorBudgetBurnSlow.md',
    steps: [
      'Find the stack trace: search the logs for a sample request id.',
      'Reproduce with the same route and input; fix and add a test.',
      'If it started with a release, roll back first.',
    ],
  },
];

const FALLBACK: Rule = {
  match: /.*/,
  cause: 'An unclassified server error.',
  runbook: 'ErrorBudgetBurnSlow.md',
  steps: [
    'Search the logs for a sample request id to read the full error and stack.',
    'Check whether it started with a deploy or a dependency change.',
  ],
};

const rank = (s: Severity) => SEVERITIES.indexOf(s);
const atLeast = (s: Severity, floor: Severity): Severity => (rank(s) > rank(floor) ? floor : s);
const atMost = (s: Severity, cap: Severity): Severity => (rank(s) < rank(cap) ? cap : s);

/** Events per minute over the group's span (at least a minute, so one burst is not an infinite rate). */
function ratePerMinute(group: ErrorGroup): number {
  const spanMs = Date.parse(group.last_seen) - Date.parse(group.first_seen);
  return group.count / Math.max(1, spanMs / 60_000);
}

function severityOf(group: ErrorGroup): Severity {
  const serverError = group.statuses.some((s) => s >= 500) || group.statuses.length === 0;
  if (group.levels.includes('fatal')) return 'critical';
  if (!serverError) return 'low';
  const rate = ratePerMinute(group);
  if (rate >= 10 || group.count >= 100) return 'critical';
  if (rate >= 1 || group.count >= 20) return 'high';
  if (group.count >= 3) return 'medium';
  return 'low';
}

function ruleFor(group: ErrorGroup): Rule {
  const text = `${group.code} ${group.pattern} ${group.sample_message}`;
  return (
    RULES.find((r) => r.match.test(text)) ??
    RULES.find((r) => r.statuses?.some((s) => group.statuses.includes(s))) ??
    FALLBACK
  );
}

export function triageByRules(group: ErrorGroup): Triage {
  const rule = ruleFor(group);
  let severity = severityOf(group);
  if (rule.minSeverity !== undefined) severity = atLeast(severity, rule.minSeverity);
  if (rule.maxSeverity !== undefined) severity = atMost(severity, rule.maxSeverity);
  const runbook = rule.runbook === undefined ? undefined : `${RUNBOOKS}/${rule.runbook}`;
  return {
    fingerprint: group.fingerprint,
    likely_cause: rule.cause,
    severity,
    next_steps: runbook === undefined ? rule.steps : [...rule.steps, `Follow ${runbook}.`],
    ...(runbook === undefined ? {} : { runbook }),
    source: 'rules',
  };
}
