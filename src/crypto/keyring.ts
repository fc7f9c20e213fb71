import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { KEY_BYTES, open, seal } from './aead';

/**
 * Where key-encryption keys (KEKs) live. The local keyring below keeps them in a file; a cloud
 * KMS can implement the same interface without the stores or the codec noticing.
 */
export interface KekProvider {
  /** The KEK that wraps new data keys. */
  readonly activeKekId: string;
  /** Whether this provider holds the KEK with this id. */
  has(kekId: string): boolean;
  /** Encrypts a data key under the active KEK, bound to `context`. */
  wrap(dek: Uint8Array, context: Uint8Array): Promise<{ kekId: string; wrapped: Uint8Array }>;
  /** Decrypts a data key; undefined when the KEK is unknown or does not match. */
  unwrap(kekId: string, wrapped: Uint8Array, context: Uint8Array): Promise<Uint8Array | undefined>;
}

/** The keyring file: named 256-bit keys (base64), one of them active. */
export interface KeyringFile {
  active: string;
  keys: Record<string, string>;
}

export class KeyringError extends Error {}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A keyring held in memory, read from a file or an environment variable. */
export class LocalKeyring implements KekProvider {
  private constructor(readonly activeKekId: string, private readonly keys: Map<string, Buffer>) {}

  /** Parses and checks a keyring; every problem is a KeyringError saying what to fix. */
  static parse(text: string, source: string): LocalKeyring {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new KeyringError(`${source}: not valid JSON (generate one with: eventhorizon keys generate)`);
    }
    const file = parsed as Partial<KeyringFile>;
    if (typeof file !== 'object' || file === null || typeof file.keys !== 'object' || file.keys === null) {
      throw new KeyringError(`${source}: expected {"active": "<key id>", "keys": {"<key id>": "<base64 key>"}}`);
    }
    const keys = new Map<string, Buffer>();
    for (const [id, encoded] of Object.entries(file.keys)) {
      if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key id "${id}" must be 1..64 characters of [A-Za-z0-9._-]`);
      const key = typeof encoded === 'string' ? Buffer.from(encoded, 'base64') : Buffer.alloc(0);
      if (key.byteLength !== KEY_BYTES) throw new KeyringError(`${source}: key "${id}" must be ${KEY_BYTES} bytes, base64-encoded`);
      keys.set(id, key);
    }
    if (typeof file.active !== 'string' || !keys.has(file.active)) {
      throw new KeyringError(`${source}: the active key "${String(file.active)}" is not among the keys`);
    }
    return new LocalKeyring(file.active, keys);
  }

  /** Reads the keyring from a file. */
  static fromFile(file: string): LocalKeyring {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new KeyringError(`keyring file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    return LocalKeyring.parse(text, `keyring file ${file}`);
  }

  has(kekId: string): boolean {
    return this.keys.has(kekId);
  }

  async wrap(dek: Uint8Array, context: Uint8Array): Promise<{ kekId: string; wrapped: Uint8Array }> {
    const kek = this.keys.get(this.activeKekId) as Buffer;
    return { kekId: this.activeKekId, wrapped: seal(kek, dek, context) };
  }

  async unwrap(kekId: string, wrapped: Uint8Array, context: Uint8Array): Promise<Uint8Array | undefined> {
    const kek = this.keys.get(kekId);
    return kek && open(kek, wrapped, context);
  }
}

/**
 * A new keyring: a fresh random key made active, keeping the keys of `previous` (so that data
 * keys wrapped by them stay readable until they are re-wrapped).
 */
export function generateKeyring(id: string, previous?: KeyringFile): KeyringFile {
  if (!KEY_ID.test(id)) throw new KeyringError(`key id "${id}" must be 1..64 characters of [A-Za-z0-9._-]`);
  if (previous?.keys[id]) throw new KeyringError(`the keyring already has a key "${id}"`);
  return { active: id, keys: { ...previous?.keys, [id]: randomBytes(KEY_BYTES).toString('base64') } };
}
