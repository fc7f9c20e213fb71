import { createHash, randomBytes } from 'node:crypto';

/** Every key starts with this, so that leaked keys are easy to find by secret scanners. */
const KEY_PREFIX = 'ehk_';

/** A new API key: its public id (shown in listings) and the secret key (shown once). */
export interface NewKey {
  keyId: string;
  key: string;
}

/**
 * Makes a key: "ehk_<id>_<secret>", 256 random bits of secret. Keys are stored only as their
 * SHA-256: with that much entropy a fast hash is enough (no password-style stretching needed).
 */
export function generateKey(): NewKey {
  const keyId = randomBytes(6).toString('hex');
  return { keyId, key: `${KEY_PREFIX}${keyId}_${randomBytes(32).toString('base64url')}` };
}

/** The stored form of a key. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The key of an `authorization: Bearer <key>` value, or undefined when it has another form. */
export function bearerKey(authorization: unknown): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}
