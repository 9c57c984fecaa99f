// Password hashing with argon2id at OWASP's minimum (m=19 MiB, t=2, p=1). @node-rs/argon2 hashes on the
// libuv thread pool, so a login never blocks the event loop; old-parameter hashes are upgraded at login.
import { availableParallelism } from 'node:os';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { BulkheadRejectedError, bulkhead, type BulkheadPolicy } from 'cockatiel';
import { hashingBusy } from '../../lib/errors.js';

// The package exports Algorithm as a const enum, which isolated modules cannot inline: 2 is Argon2id.
const ARGON2ID = 2 as Algorithm;
export const ARGON2_PARAMS = {
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS);
}

/** False for a wrong password and for a malformed hash alike: callers answer both the same way. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** True when the hash was made with other parameters than today's, so the login should store a new one. */
export function needsRehash(passwordHash: string): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash);
  if (!match) return true;
  const [, m, t, p] = match.map(Number);
  return m !== ARGON2_PARAMS.memoryCost || t !== ARGON2_PARAMS.timeCost || p !== ARGON2_PARAMS.parallelism;
}

export interface PasswordPolicy {
  minLength: number;
  maxLength: number;
}

/** Reasons a new password is refused; empty when it is acceptable. Length counts characters, not bytes. */
export function passwordProblems(password: string, username: string, policy: PasswordPolicy): string[] {
  const length = [...password].length;
  const problems: string[] = [];
  if (length < policy.minLength) problems.push(`must be at least ${policy.minLength} characters`);
  if (length > policy.maxLength) problems.push(`must be at most ${policy.maxLength} characters`);
  if (password.toLowerCase() === username.toLowerCase()) problems.push('must not equal the username');
  return problems;
}

/**
 * Hashing behind a bulkhead: at most `concurrency` argon2 computations at once (each takes ~19 MiB and a
 * core for tens of milliseconds), `queue` more waiting, the rest refused with 503 at once. One hash fewer
 * than the cores keeps a core for the event loop, so probes and other requests stay fast during a login storm.
 */
export class PasswordHasher {
  readonly #bulkhead: BulkheadPolicy;

  constructor(concurrency = Math.max(1, availableParallelism() - 1), queue = 64) {
    this.#bulkhead = bulkhead(concurrency, queue);
  }

  async #run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.#bulkhead.execute(work);
    } catch (error) {
      if (error instanceof BulkheadRejectedError) {
        throw hashingBusy();
      }
      throw error;
    }
  }

  hash(password: string): Promise<string> {
    return this.#run(() => hashPassword(password));
  }

  verify(passwordHash: string, password: string): Promise<boolean> {
    return this.#run(() => verifyPassword(passwordHash, password));
  }
}
