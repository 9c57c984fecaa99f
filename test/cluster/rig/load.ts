// A steady, open-loop mix of what clients send (a request every 1/rate s whether or not earlier ones have
// answered, so a slow replica shows as latency, not as a lower rate): anonymous draws, API-key draws,
// JWT reads, token refreshes and API key creations with an Idempotency-Key that the client retries.
// Every answer is classified; every acknowledged write is remembered so it can be checked afterwards.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';

export type Outcome = '2xx' | '429' | '503' | '4xx' | '5xx' | 'socket' | 'timeout';
export const OUTCOMES: readonly Outcome[] = ['2xx', '429', '503', '4xx', '5xx', 'socket', 'timeout'];

export type Kind = 'random' | 'integers' | 'me' | 'refresh' | 'create_key';
const MIX: readonly Kind[] = [
  'random',
  'random',
  'random',
  'random',
  'integers',
  'integers',
  'me',
  'me',
  'refresh',
  'create_key',
];

export interface Sample {
  kind: Kind;
  /** ms since the load started, when the request was sent. */
  at: number;
  ms: number;
  status: number | undefined;
  outcome: Outcome;
  /** For a 503: it was problem+json with Retry-After (the service's own answer, not a proxy's). */
  problem?: boolean;
  /** A problem answer's detail, for the report of an unexpected one. */
  detail?: string;
  /** The first attempt died on a reused connection before any answer, and was sent again. */
  retried?: boolean;
}

export interface Credentials {
  accessToken: string;
  apiKey: string;
  refreshTokens: string[];
  /** Logs in again (a session whose refresh ended in an unknown state is replaced). */
  login(): Promise<{ accessToken: string; refreshToken: string }>;
}

export interface Write {
  idempotencyKey: string;
  attempts: number;
  /** The key id of a 2xx answer: the write is acknowledged and must be in the database. */
  acknowledged?: string;
}

const REQUEST_TIMEOUT_MS = 5_000;
const MAX_IN_FLIGHT = 1_000;
const WRITE_RETRY_MS = 1_000;
// Long enough to outlast the longest outage and the idempotency lease a crashed replica leaves behind
// (IDEMPOTENCY_LEASE_SECONDS, 15 s): a write the client keeps retrying must be acknowledged in the end.
const WRITE_DEADLINE_MS = 30_000;

export class Load {
  readonly samples: Sample[] = [];
  readonly writes = new Map<string, Write>();
  readonly #agent = new Agent({
    connections: 128,
    keepAliveTimeout: 30_000,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  #timer: NodeJS.Timeout | undefined;
  #started = 0;
  #sent = 0;
  #inFlight = new Set<Promise<void>>();
  #sessions: { refreshToken: string; busy: boolean }[];

  constructor(
    private readonly baseUrl: string,
    private readonly credentials: Credentials,
    private readonly ratePerSecond: number,
  ) {
    this.#sessions = credentials.refreshTokens.map((refreshToken) => ({ refreshToken, busy: false }));
  }

  start(): void {
    this.#started = performance.now();
    const tick = () => {
      const due = Math.floor(((performance.now() - this.#started) / 1000) * this.ratePerSecond);
      while (this.#sent < due) {
        const kind = MIX[this.#sent % MIX.length]!;
        this.#sent++;
        if (this.#inFlight.size >= MAX_IN_FLIGHT) continue;
        this.#track(this.#send(kind));
      }
      this.#timer = setTimeout(tick, 5);
    };
    tick();
  }

  /** Stops sending, waits for what is in flight (and the retries of unacknowledged writes, up to 30 s). */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    await this.#agent.close();
    // Refresh tokens rotate: the next load starts from the current ones (a spent one would be refused
    // as a reuse and show up as a 401).
    this.credentials.refreshTokens = this.#sessions.map((s) => s.refreshToken);
  }

  /** Samples sent within [from, to) ms of the start. */
  between(from: number, to = Infinity): Sample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to);
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  now(): number {
    return performance.now() - this.#started;
  }

  #track(promise: Promise<void>) {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise));
  }

  async #call(
    kind: Kind,
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body?: unknown,
  ) {
    const at = this.now();
    const started = performance.now();
    let status: number | undefined;
    let outcome: Outcome;
    let problem: boolean | undefined;
    let json: unknown;
    let detail: string | undefined;
    let retried = false;
    try {
      const send = () =>
        request(`${this.baseUrl}${path}`, {
          method,
          dispatcher: this.#agent,
          headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      let response;
      try {
        response = await send();
      } catch (error) {
        if (!diedOnReusedConnection(error)) throw error;
        retried = true;
        response = await send();
      }
      status = response.statusCode;
      const text = await response.body.text();
      const isProblem = String(response.headers['content-type']).startsWith('application/problem+json');
      if (isProblem) detail = (JSON.parse(text) as { detail?: string }).detail;
      if (status >= 200 && status < 300) {
        outcome = '2xx';
        json = text ? JSON.parse(text) : undefined;
      } else if (status === 429) outcome = '429';
      else if (status === 503) {
        outcome = '503';
        problem = isProblem && response.headers['retry-after'] !== undefined;
      } else if (status < 500) outcome = '4xx';
      else outcome = '5xx';
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      outcome = /TIMEOUT/.test(code) ? 'timeout' : 'socket';
    }
    const sample: Sample = { kind, at, ms: performance.now() - started, status, outcome };
    if (problem !== undefined) sample.problem = problem;
    if (detail !== undefined) sample.detail = detail;
    if (retried) sample.retried = true;
    this.samples.push(sample);
    return { sample, json };
  }

  async #send(kind: Kind): Promise<void> {
    const bearer = { authorization: `Bearer ${this.credentials.accessToken}` };
    switch (kind) {
      case 'random':
        await this.#call(kind, 'GET', '/v1/random?min=1&max=100', {});
        return;
      case 'integers':
        await this.#call(kind, 'GET', '/v1/random/integers?count=5&min=1&max=6', {
          'x-api-key': this.credentials.apiKey,
        });
        return;
      case 'me':
        await this.#call(kind, 'GET', '/v1/auth/me', bearer);
        return;
      case 'refresh':
        await this.#refresh();
        return;
      case 'create_key':
        await this.#createKey(randomUUID());
        return;
    }
  }

  async #refresh() {
    const session = this.#sessions.find((s) => !s.busy);
    if (session === undefined) return;
    session.busy = true;
    try {
      const { sample, json } = await this.#call(
        'refresh',
        'POST',
        '/v1/auth/refresh',
        {},
        { refresh_token: session.refreshToken },
      );
      if (sample.outcome === '2xx') {
        session.refreshToken = (json as { refresh_token: string }).refresh_token;
      } else if (sample.outcome !== '503' && sample.outcome !== '429') {
        // Unknown whether the token rotated: this session is replaced by a new one.
        try {
          session.refreshToken = (await this.credentials.login()).refreshToken;
        } catch {
          this.#sessions.splice(this.#sessions.indexOf(session), 1);
        }
      }
    } finally {
      session.busy = false;
    }
  }

  /** One API key creation, retried with the same Idempotency-Key until it is acknowledged. */
  async #createKey(idempotencyKey: string) {
    const write: Write = { idempotencyKey, attempts: 0 };
    this.writes.set(idempotencyKey, write);
    const deadline = performance.now() + WRITE_DEADLINE_MS;
    while (performance.now() < deadline) {
      write.attempts++;
      const { sample, json } = await this.#call(
        'create_key',
        'POST',
        '/v1/api-keys',
        { authorization: `Bearer ${this.credentials.accessToken}`, 'idempotency-key': idempotencyKey },
        { name: idempotencyKey, scopes: ['random:read'] },
      );
      if (sample.outcome === '2xx') {
        write.acknowledged = (json as { id: string }).id;
        return;
      }
      if (sample.outcome === '4xx' && sample.status !== 409) return;
      await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_MS));
    }
  }
}

/**
 * A keep-alive connection the balancer closed while it was idle (an nginx reload closes its old workers'
 * idle connections) can meet a request the client had just written on it: the request dies before any
 * answer, and the balancer never read it. Browsers send such a request again on a new connection
 * (Chromium does it for any method when the socket was reused and nothing came back); this client does
 * the same, once, and marks the sample so the report shows how often it happened. A close after an answer
 * began is never retried (undici reports it from the body, not from request()), nor one on a connection
 * that had not yet carried an answer. A reset (ECONNRESET, EPIPE) carries no socket details and is
 * taken as the same race: the client only talks to nginx, which resets nothing it has started to serve.
 */
function diedOnReusedConnection(error: unknown): boolean {
  const { code, socket } = error as { code?: string; socket?: { bytesRead?: number } };
  if (code === 'ECONNRESET' || code === 'EPIPE') return true;
  return code === 'UND_ERR_SOCKET' && (socket?.bytesRead ?? 0) > 0;
}

export interface Summary {
  requests: number;
  /** Requests sent a second time after their reused connection was closed under them. */
  retried: number;
  counts: Record<Outcome, number>;
  p50: number;
  p99: number;
  max: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export function summarize(samples: Sample[]): Summary {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  for (const s of samples) counts[s.outcome]++;
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    requests: samples.length,
    retried: samples.filter((s) => s.retried === true).length,
    counts,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}
