// Keys derived from an idempotency key, and AES-256-GCM sealing of the answers stored under it.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const HKDF_INFO = 'reliability-api idempotency v1';

// Stored answers can hold secrets (a new API key is shown once) and request bodies can hold passwords, so
// neither lands in the table in the clear: the row is found by a hash of the key, the fingerprint is an
// HMAC and the body is AES-GCM sealed, both keyed from the raw key, which is never stored. A database dump
// then reveals no key, no answer, and no fast hash to guess a password against.
export function keysFor(scope: string, key: string) {
  const material = Buffer.from(hkdfSync('sha256', key, scope, HKDF_INFO, 64));
  return { macKey: material.subarray(0, 32), encryptionKey: material.subarray(32) };
}

export function seal(key: Buffer, plain: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}
