// Identity: the demo admin (SEED_DEMO_USER=true), whose password the service logs once, and its access token.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError, root } from './common.js';
import { tail } from './processes.js';

// The demo admin's password is in the service log before readiness; the logger writes asynchronously.
export const CREDENTIALS_TIMEOUT_MS = 10_000;
const DEMO_LOG_MESSAGE = 'demo admin created; this password is shown once';
export const LOGIN_PATH = '/v1/auth/login';
// A login hashes with argon2id on the server's single core: under load it can take well over wrk's
// default 2 s timeout, which would count slow logins as errors instead of measuring them.
export const LOGIN_TIMEOUT_SECONDS = 10;

export interface Credentials {
  username: string;
  password: string;
}

/** The demo admin's credentials, from the one log line that shows its password; polls the log, bounded. */
export async function demoCredentials(logFile: string): Promise<Credentials> {
  const deadline = Date.now() + CREDENTIALS_TIMEOUT_MS;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(logFile, 'utf8');
    } catch {
      // Not created yet: poll again.
    }
    for (const line of text.split('\n')) {
      if (!line.includes(DEMO_LOG_MESSAGE)) continue;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a line still being written
      }
      const { msg, demo_username: username, demo_password: password } = entry;
      if (msg !== DEMO_LOG_MESSAGE) continue;
      if (typeof username !== 'string' || typeof password !== 'string' || password === '[REDACTED]') {
        throw new BenchError(`the "${DEMO_LOG_MESSAGE}" log line has no usable demo_username/demo_password`);
      }
      return { username, password };
    }
    if (Date.now() >= deadline) {
      throw new BenchError(
        `no "${DEMO_LOG_MESSAGE}" line in ${path.relative(root, logFile)} within ` +
          `${CREDENTIALS_TIMEOUT_MS / 1000} s (is SEED_DEMO_USER honoured?):\n${tail(logFile, 10)}`,
      );
    }
    await sleep(100);
  }
}

/** Logs in with JSON credentials; returns the access token. */
export async function login(baseUrl: string, credentials: Credentials): Promise<string> {
  const response = await fetch(`${baseUrl}${LOGIN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
    signal: AbortSignal.timeout(LOGIN_TIMEOUT_SECONDS * 1_000),
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new BenchError(
      `POST ${LOGIN_PATH} answered ${response.status}, expected 200: ${text.slice(0, 300)}`,
    );
  }
  const token = (JSON.parse(text) as { access_token?: unknown }).access_token;
  if (typeof token !== 'string' || token === '') {
    throw new BenchError(`POST ${LOGIN_PATH} answered 200 without an access_token`);
  }
  return token;
}

export const API_KEYS_PATH = '/v1/api-keys';

/** Creates an API key with the random:read scope for the token's user; returns the key (shown once). */
export async function createApiKey(baseUrl: string, accessToken: string): Promise<string> {
  const response = await fetch(`${baseUrl}${API_KEYS_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ name: 'bench', scopes: ['random:read'] }),
    signal: AbortSignal.timeout(LOGIN_TIMEOUT_SECONDS * 1_000),
  });
  const text = await response.text();
  if (response.status !== 201) {
    throw new BenchError(
      `POST ${API_KEYS_PATH} answered ${response.status}, expected 201: ${text.slice(0, 300)}`,
    );
  }
  const key = (JSON.parse(text) as { key?: unknown }).key;
  if (typeof key !== 'string' || key === '')
    throw new BenchError(`POST ${API_KEYS_PATH} answered without a key`);
  return key;
}
