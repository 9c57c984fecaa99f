// `triage <logfile> [--text] [--summary] [--since 15m] [--limit N]`: groups the errors of a JSON log file
// offline and prints the report (JSON, or a table with --text); --summary adds the triage of the
// configured LLM, or of the rules when none is configured or it fails.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { InvalidParametersError } from '../lib/errors.js';
import type { ErrorGroup } from '../modules/triage/group.js';
import type { Triage } from '../modules/triage/rules.js';
import {
  errorReport,
  llmSettingsFrom,
  parseSince,
  summarize,
  type Summary,
} from '../modules/triage/service.js';

/** Bad usage (exit code 2, with the usage text). */
export class TriageUsageError extends Error {}

/** The log file cannot be read (exit code 2, one line). */
export class TriageFileError extends Error {}

export interface TriageArgs {
  file: string;
  text: boolean;
  summary: boolean;
  since: string | undefined;
  limit: number;
}

export function parseTriageArgs(args: string[]): TriageArgs {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      text: { type: 'boolean', default: false },
      summary: { type: 'boolean', default: false },
      since: { type: 'string' },
      limit: { type: 'string', default: '50' },
    },
  });
  if (positionals.length !== 1) throw new TriageUsageError('triage needs exactly one log file');
  if (!/^[1-9]\d{0,3}$/.test(values.limit)) throw new TriageUsageError('--limit takes a whole number 1-9999');
  return {
    file: positionals[0]!,
    text: values.text,
    summary: values.summary,
    since: values.since,
    limit: Number(values.limit),
  };
}

function pad(value: string, width: number): string {
  return value.length > width ? `${value.slice(0, width - 1)}…` : value.padEnd(width);
}

function table(groups: readonly ErrorGroup[], triage: ReadonlyMap<string, Triage>): string[] {
  const lines = [
    `${pad('COUNT', 7)}${pad('LAST SEEN', 26)}${pad('STATUS', 9)}${pad('CODE', 28)}${pad('ROUTE', 28)}MESSAGE`,
  ];
  for (const g of groups) {
    lines.push(
      `${pad(String(g.count), 7)}${pad(g.last_seen, 26)}${pad(g.statuses.join(',') || '-', 9)}` +
        `${pad(g.code, 28)}${pad(g.route, 28)}${g.pattern}`,
    );
    const t = triage.get(g.fingerprint);
    if (t !== undefined) {
      lines.push(`       ${t.severity}: ${t.likely_cause}`);
      for (const step of t.next_steps) lines.push(`         - ${step}`);
    }
  }
  return lines;
}

function summaryHeader(summary: Summary): string {
  const by = summary.source === 'llm' ? `${summary.provider} ${summary.model}` : 'rules';
  return `triage by ${by}${summary.llm_error === undefined ? '' : ` (LLM not used: ${summary.llm_error})`}`;
}

export async function triageCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  write: (line: string) => void,
): Promise<void> {
  const options = parseTriageArgs(args);
  let since: number | undefined;
  try {
    since = parseSince(options.since, Date.now());
  } catch (error) {
    if (error instanceof InvalidParametersError) throw new TriageUsageError(`--${error.message}`);
    throw error;
  }
  try {
    await access(options.file, constants.R_OK);
    if (!(await stat(options.file)).isFile()) throw new Error('not a file');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new TriageFileError(`cannot read ${options.file} (${reason})`);
  }
  const report = await errorReport({ logFilePath: options.file }, { since, limit: options.limit });
  if (report.sources.log_file?.error !== undefined) {
    throw new TriageFileError(`cannot read ${options.file} (${report.sources.log_file.error})`);
  }
  let summary: Summary | undefined;
  if (options.summary) {
    // Settings only when they are needed: the plain report works with no configuration at all.
    const config = loadConfig(env);
    const settings = llmSettingsFrom(config);
    // Loaded only for an LLM summary: the plain report needs no HTTP client at all.
    const outbound = settings && (await import('../adapters/http/outbound.js'));
    const registry = outbound?.createOutboundRegistry({ policy: outbound.outboundPolicyFrom(config) });
    try {
      summary = await summarize(
        report.groups,
        settings && { settings, transport: () => registry!.client('llm', settings.baseUrl) },
      );
    } finally {
      await registry?.close();
    }
  }
  if (!options.text) {
    write(JSON.stringify(summary === undefined ? report : { ...report, summary }, null, 2));
    return;
  }
  const file = report.sources.log_file!;
  write(
    `${report.total} errors in ${report.total_groups} groups from ${file.lines} lines of ${file.path}` +
      `${file.malformed > 0 ? ` (${file.malformed} malformed)` : ''}${file.truncated ? ' (older lines not read)' : ''}`,
  );
  if (summary !== undefined) write(summaryHeader(summary));
  const triage = new Map((summary?.groups ?? []).map((t) => [t.fingerprint, t]));
  for (const line of table(report.groups, triage)) write(line);
}
