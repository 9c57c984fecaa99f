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
const WRITE_MAX_ATTEMPTS = 8;

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
  #stopping = false;

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

  /** Stops sending, waits for what is in flight (and the retries of unacknowledged writes). */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    await this.#agent.close();
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
    try {
      const response = await request(`${this.baseUrl}${path}`, {
        method,
        dispatcher: this.#agent,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
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
    while (write.attempts < WRITE_MAX_ATTEMPTS) {
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
      if (this.#stopping && write.attempts >= 3) return;
      await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_MS));
    }
  }
}

export interface Summary {
  requests: number;
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
    counts,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}
