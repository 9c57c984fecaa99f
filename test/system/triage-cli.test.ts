// The built CLI's `triage` command as a process: the grouped report of a log file as JSON or a table, the
// summary by rules or through a fake LLM on loopback, and exit code 2 for bad usage or an unreadable file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STUB_CAUSE, startLlmStub, type LlmStub } from '../helpers/llm-stub.js';
import { runToEnd } from '../helpers/process.js';

const dir = mkdtempSync(path.join(tmpdir(), 'triage-cli-'));
const logFile = path.join(dir, 'api.log');
const line = (fields: Record<string, unknown>) =>
  JSON.stringify({ time: new Date().toISOString(), ...fields });
writeFileSync(
  logFile,
  [
    ...[1, 2, 3].flatMap((n) => [
      line({
        level: 'error',
        request_id: `req-${n}`,
        msg: 'request failed',
        err: {
          type: 'TypeError',
          message: `Cannot read properties of undefined (reading 'row${n}') for dave${n}@example.com`,
        },
      }),
      line({
        level: 'info',
        request_id: `req-${n}`,
        method: 'GET',
        route: '/v1/users/:id',
        status: 500,
        msg: 'request completed',
      }),
    ]),
    line({
      level: 'error',
      request_id: 'req-9',
      msg: 'request failed',
      err: { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.0.0.5:5432' },
    }),
    line({
      level: 'info',
      request_id: 'req-9',
      method: 'POST',
      route: '/v1/api-keys',
      status: 503,
      msg: 'request completed',
    }),
    line({
      level: 'info',
      request_id: 'req-10',
      method: 'GET',
      route: '/v1/random',
      status: 200,
      msg: 'request completed',
    }),
    'garbage line',
    '',
  ].join('\n'),
);

interface Report {
  total: number;
  sources: { log_file: { path: string; lines: number; malformed: number } };
  groups: { code: string; route: string; count: number; request_ids: string[]; sample_message: string }[];
  summary?: { source: string; provider?: string; llm_error?: string; groups: { likely_cause: string }[] };
}

const ENV = { ENVIRONMENT: 'test' };

let stub: LlmStub;
beforeAll(async () => {
  stub = await startLlmStub();
});
afterAll(async () => {
  await stub.close();
});

describe('triage <logfile>', () => {
  it('when given a log file, then it prints the grouped report as JSON and exits 0', async () => {
    const { code, stdout, stderr } = await runToEnd(['triage', logFile], ENV);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.sources.log_file).toMatchObject({ path: logFile, lines: 10, malformed: 1 });
    expect(report.total).toBe(4);
    expect(report.groups[0]).toMatchObject({
      code: 'TypeError',
      route: '/v1/users/:id',
      count: 3,
      request_ids: expect.arrayContaining(['req-1', 'req-2', 'req-3']),
    });
    expect(report.groups[0]!.sample_message).not.toContain('@example.com');
    expect(report.groups[1]).toMatchObject({ code: 'ECONNREFUSED', route: '/v1/api-keys', count: 1 });
    expect(report.summary).toBeUndefined();
  });

  it('when asked for --text, then it prints a table with one row per group', async () => {
    const { code, stdout } = await runToEnd(['triage', logFile, '--text', '--limit', '1'], ENV);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(`4 errors in 2 groups from 10 lines of ${logFile} (1 malformed)`);
    expect(lines[1]).toMatch(/^COUNT\s+LAST SEEN\s+STATUS\s+CODE\s+ROUTE\s+MESSAGE$/);
    expect(lines.slice(2)).toHaveLength(1);
    expect(lines[2]).toMatch(/^3\s+\S+\s+500\s+TypeError\s+\/v1\/users\/:id\s+Cannot read properties/);
  });

  it('when asked for --summary with no LLM configured, then the triage is rule-based', async () => {
    const { code, stdout } = await runToEnd(['triage', logFile, '--summary'], ENV);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.summary?.source).toBe('rules');
    expect(report.summary?.groups).toHaveLength(2);
  });

  it('when asked for --summary with an LLM configured, then the triage comes from it', async () => {
    stub.requests.length = 0;
    const { code, stdout, stderr } = await runToEnd(['triage', logFile, '--summary'], {
      ...ENV,
      TRIAGE_LLM_PROVIDER: 'openai',
      TRIAGE_LLM_BASE_URL: `${stub.url}/v1`,
      TRIAGE_LLM_API_KEY: 'cli-test-key',
    });
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.summary).toMatchObject({ source: 'llm', provider: 'openai' });
    expect(report.summary?.groups.map((g) => g.likely_cause)).toEqual([STUB_CAUSE, STUB_CAUSE]);
    expect(stub.requests).toHaveLength(1);
    expect(stub.requests[0]!.body).not.toMatch(/dave\d@example\.com|10\.0\.0\.5/);
  });

  it.each([
    ['no file', ['triage']],
    ['two files', ['triage', logFile, logFile]],
    ['an unknown option', ['triage', logFile, '--colour']],
    ['a bad --since', ['triage', logFile, '--since', 'last tuesday']],
    ['a bad --limit', ['triage', logFile, '--limit', '0']],
    ['a missing file', ['triage', path.join(dir, 'missing.log')]],
    ['a directory', ['triage', dir]],
  ])('when given %s, then it exits 2 with the reason', async (_case, args) => {
    const { code, stderr, stdout } = await runToEnd(args, ENV);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^reliability-api: /);
    expect(stdout).toBe('');
  });
});
