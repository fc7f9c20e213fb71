import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** AES-256-GCM from node:crypto: 256-bit keys, 96-bit random nonces, 128-bit tags. */
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const ALGORITHM = 'aes-256-gcm';

/**
 * Nonces are drawn from random bytes fetched ahead in blocks: one `randomBytes` call costs about as
 * much as the encryption of a small entry, so a call per nonce would nearly double the cost of
 * sealing. Each slice is handed out once, so nonces stay random and never repeat.
 */
const NONCES_PER_BLOCK = 256;
let nonceBlock = Buffer.alloc(0);
let nonceOffset = 0;

function nextNonce(): Buffer {
  if (nonceOffset + NONCE_BYTES > nonceBlock.byteLength) {
    nonceBlock = randomBytes(NONCE_BYTES * NONCES_PER_BLOCK);
    nonceOffset = 0;
  }
  const nonce = nonceBlock.subarray(nonceOffset, nonceOffset + NONCE_BYTES);
  nonceOffset += NONCE_BYTES;
  return nonce;
}

/** Encrypts `plaintext` bound to `associatedData`: nonce ‖ ciphertext ‖ tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Buffer {
  const nonce = nextNonce();
  const cipher = createCipheriv(ALGORITHM, key, nonce);
  cipher.setAAD(associatedData);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

/**
 * Decrypts what `seal` produced with the same key and associated data. Returns undefined when the
 * key, the associated data or the bytes do not match: never a partial or forged plaintext.
 */
export function open(key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array): Buffer | undefined {
  if (sealed.byteLength < NONCE_BYTES + TAG_BYTES) return undefined;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.byteLength - TAG_BYTES);
  const decipher = createDecipheriv(ALGORITHM, key, nonce);
  decipher.setAAD(associatedData);
  decipher.setAuthTag(tag);
  try {
    const plaintext = decipher.update(sealed.subarray(NONCE_BYTES, sealed.byteLength - TAG_BYTES));
    // GCM releases all plaintext from update; final only checks the tag (and throws on a mismatch).
    decipher.final();
    return plaintext;
  } catch {
    return undefined;
  }
}
