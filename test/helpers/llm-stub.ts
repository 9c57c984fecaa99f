// A fake LLM provider as a real HTTP server on loopback: it speaks OpenAI chat completions
// (POST .../chat/completions) and Gemini generateContent (POST .../models/<model>:generateContent),
// records every request, and can be told to fail, hang or answer garbage.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** ok: a triage for every fingerprint of the prompt; fail: 500; hang: never answers; garbage: 200, not JSON. */
export type StubMode = 'ok' | 'fail' | 'hang' | 'garbage' | 'not-json-content';

export interface LlmStub {
  url: string;
  requests: RecordedRequest[];
  mode: StubMode;
  close(): Promise<void>;
}

export const STUB_CAUSE = 'stub: the model thinks the database is down';

function triageFor(prompt: string): string {
  const fingerprints = [...new Set([...prompt.matchAll(/"fingerprint":"([0-9a-f]+)"/g)].map((m) => m[1]))];
  return JSON.stringify({
    groups: fingerprints.map((fingerprint) => ({
      fingerprint,
      likely_cause: STUB_CAUSE,
      severity: 'high',
      next_steps: ['check the database', 'read docs/runbooks/NotReady.md'],
    })),
  });
}

function promptOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as {
      messages?: { content?: string }[];
      contents?: { parts?: { text?: string }[] }[];
    };
    const openai = parsed.messages?.map((m) => m.content ?? '').join('\n');
    const gemini = parsed.contents?.flatMap((c) => c.parts?.map((p) => p.text ?? '') ?? []).join('\n');
    return openai ?? gemini ?? '';
  } catch {
    return '';
  }
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export async function startLlmStub(): Promise<LlmStub> {
  const hanging = new Set<ServerResponse>();
  const stub: LlmStub = {
    url: '',
    requests: [],
    mode: 'ok',
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      stub.requests.push({ method: req.method ?? '', url, headers: req.headers, body });
      const path = url.split('?', 1)[0]!;
      const isOpenAi = req.method === 'POST' && path.endsWith('/chat/completions');
      const isGemini = req.method === 'POST' && /\/models\/[^/]+:generateContent$/.test(path);
      if (!isOpenAi && !isGemini) return answer(res, 404, { error: { message: 'no such endpoint' } });
      switch (stub.mode) {
        case 'fail':
          return answer(res, 500, { error: { message: 'stub told to fail' } });
        case 'hang':
          hanging.add(res);
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end('<html>definitely not json');
          return;
        default:
      }
      const text =
        stub.mode === 'not-json-content' ? 'I think it is the database.' : triageFor(promptOf(body));
      if (isOpenAi) {
        const model = (JSON.parse(body) as { model?: string }).model;
        return answer(res, 200, {
          id: 'chatcmpl-stub',
          object: 'chat.completion',
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        });
      }
      return answer(res, 200, {
        candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP' }],
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}
