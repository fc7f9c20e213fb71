import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { KeyUnavailableError, StreamNotFoundError, StreamShreddedError } from '../core/errors';
import type { EventStore, WrappedKey } from '../store/port';
import { KEY_BYTES } from './aead';
import { KeyringError, type KekProvider } from './keyring';

/** One stream's usable data keys. */
export interface DataKeys {
  stream: string;
  /** The newest DEK version, used for new entries and snapshots; 0 when the stream has none yet. */
  activeVersion: number;
  /** The DEK of a version; throws when this server cannot use it. */
  key: (dekVersion: number) => Uint8Array;
}

export interface StreamKeyOptions {
  /** Streams whose keys are kept in memory. */
  cacheStreams: number;
  /**
   * How long cached keys are trusted. Bounds how long another replica keeps using a key after a
   * rotation or a shred made here.
   */
  cacheTtlMs: number;
}

const ENCODER = new TextEncoder();

/** The associated data of a wrapped DEK: the DEK belongs to this stream and version only. */
function wrapContext(stream: string, dekVersion: number): Uint8Array {
  return ENCODER.encode(`eventhorizon/dek\u0000${stream}\u0000${dekVersion}`);
}

/**
 * Envelope encryption's bookkeeping: each stream has data-encryption keys (DEKs, 256-bit random),
 * stored wrapped by the keyring's key-encryption key (KEK). Unwrapped keys are cached (bounded,
 * with a time limit) so an append costs no extra store round trip.
 */
export class StreamKeyManager {
  private readonly cache: LRUCache<string, Promise<DataKeys>>;

  constructor(private readonly store: EventStore, private readonly kek: KekProvider, options: StreamKeyOptions) {
    this.cache = new LRUCache({ max: options.cacheStreams, ttl: options.cacheTtlMs });
  }

  /**
   * The stream's keys. For writing (`write`: an existing stream, `create`: one being created) a
   * stream without keys gets its first DEK; reading never creates keys. Throws when shredded.
   *
   * `newestNeeded` is the newest DEK version the caller is about to decrypt with. Cached keys that
   * lack it are stale (another replica rotated the key): they are reloaded, once per call, and
   * callers that found the same stale keys meanwhile share that one reload, so a burst of new
   * entries costs one read of the keys. Versions only grow, so an older missing version is never
   * worth a reload.
   */
  async forStream(stream: string, purpose: 'read' | 'write' | 'create', newestNeeded = 0): Promise<DataKeys> {
    const cached = this.cache.get(stream);
    if (cached) {
      const keys = await cached;
      const current = keys.activeVersion >= newestNeeded;
      if (current && (purpose === 'read' || keys.activeVersion > 0)) return keys;
      const replaced = this.cache.get(stream);
      if (!current && replaced && replaced !== cached) return replaced;
    }
    const loading = this.load(stream, purpose);
    this.cache.set(stream, loading);
    // A failed load must not stay cached.
    loading.catch(() => this.cache.delete(stream));
    return loading;
  }

  /** Adds a new DEK version for new entries; older entries stay readable. Returns it. */
  async rotate(stream: string): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { keys, shredded } = await this.store.getStreamKeys(stream);
      if (shredded) throw new StreamShreddedError(stream);
      const next = Math.max(0, ...keys.map((k) => k.dekVersion)) + 1;
      if (await this.addKey(stream, next)) {
        this.cache.delete(stream);
        return next;
      }
    }
    throw new KeyUnavailableError(`could not add a key version to ${stream}: too much contention`);
  }

  /** Destroys the stream's DEKs: its encrypted entries and snapshots become unreadable. */
  async shred(stream: string): Promise<void> {
    await this.store.shredStreamKeys(stream, new Date());
    this.cache.delete(stream);
  }

  /**
   * Start-up check: the root's keys must unwrap with this keyring. A keyring that lacks the KEK
   * that wrapped them, or holds a different key under its id, stops the server with a message
   * naming the key id. A root without keys (shredded by an older server) is not a reason to
   * skip the check: the first stream that has keys stands in for it.
   */
  async checkKeyring(): Promise<void> {
    let stream = '/';
    let { keys } = await this.store.getStreamKeys(stream);
    if (keys.length === 0) {
      const [first] = await this.store.listStreamKeys(undefined, 1);
      if (first) ({ stream, keys } = first);
    }
    for (const key of keys) {
      if (!this.kek.has(key.kekId)) {
        throw new KeyringError(`the keyring lacks key "${key.kekId}", which wrapped the stored data keys`);
      }
      if (!(await this.kek.unwrap(key.kekId, key.wrapped, wrapContext(stream, key.dekVersion)))) {
        throw new KeyringError(`key "${key.kekId}" of the keyring is not the key that wrapped the stored data keys`);
      }
    }
  }

  /**
   * KEK rotation: re-wraps every DEK not wrapped by the active KEK, without touching any entry.
   * Runs online, page by page; returns how many keys it re-wrapped.
   */
  async rewrapAll(onProgress: (streamsSeen: number, rewrapped: number) => void = () => undefined): Promise<number> {
    let after: string | undefined;
    let seen = 0;
    let rewrapped = 0;
    for (;;) {
      const page = await this.store.listStreamKeys(after, 100);
      if (page.length === 0) return rewrapped;
      for (const { stream, keys } of page) {
        for (const key of keys) {
          if (key.kekId === this.kek.activeKekId) continue;
          const dek = await this.unwrap(stream, key);
          const { kekId, wrapped } = await this.kek.wrap(dek, wrapContext(stream, key.dekVersion));
          if (await this.store.rewrapStreamKey(stream, key.dekVersion, key.kekId, kekId, wrapped)) rewrapped++;
        }
        this.cache.delete(stream);
        after = stream;
        seen++;
      }
      onProgress(seen, rewrapped);
    }
  }

  private async load(stream: string, purpose: 'read' | 'write' | 'create'): Promise<DataKeys> {
    let stored = await this.store.getStreamKeys(stream);
    if (stored.shredded) throw new StreamShreddedError(stream);
    if (stored.keys.length === 0 && purpose !== 'read') {
      // Keys are made only for streams that exist or are being created: no orphan keys for
      // whatever path a caller happens to name.
      if (purpose === 'write' && !(await this.store.describe(stream))) throw new StreamNotFoundError(stream);
      await this.addKey(stream, 1);
      stored = await this.store.getStreamKeys(stream);
      if (stored.shredded) throw new StreamShreddedError(stream);
    }
    const byVersion = new Map<number, Uint8Array>();
    for (const key of stored.keys) byVersion.set(key.dekVersion, await this.unwrap(stream, key));
    const activeVersion = Math.max(0, ...byVersion.keys());
    return {
      stream,
      activeVersion,
      key: (dekVersion) => {
        const dek = byVersion.get(dekVersion);
        if (!dek) throw new KeyUnavailableError(`stream ${stream} has no data key version ${dekVersion}`);
        return dek;
      },
    };
  }

  private async addKey(stream: string, dekVersion: number): Promise<boolean> {
    const { kekId, wrapped } = await this.kek.wrap(randomBytes(KEY_BYTES), wrapContext(stream, dekVersion));
    const key: WrappedKey = { dekVersion, kekId, wrapped, createdAt: new Date() };
    return this.store.addStreamKey(stream, key);
  }

  private async unwrap(stream: string, key: WrappedKey): Promise<Uint8Array> {
    const dek = await this.kek.unwrap(key.kekId, key.wrapped, wrapContext(stream, key.dekVersion));
    if (!dek) throw new KeyUnavailableError(`the data key of ${stream} cannot be unwrapped with the keyring (key "${key.kekId}")`);
    return dek;
  }
}
