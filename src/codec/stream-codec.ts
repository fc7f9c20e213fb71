import { Entry, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { DataKeys, StreamKeyManager } from '../crypto/stream-keys';
import type { PayloadAt, StoredEntry, Version } from '../store/port';
import type { Allocate } from './compression';
import type { Lock, PayloadCodec } from './payload-codec';
import { encodeMessage } from './message-writer';

const ENCODER = new TextEncoder();

/**
 * Associated data of a stream's entries: a ciphertext decrypts only at its stream and version,
 * the UTF-8 bytes of `eventhorizon/entry\0<stream>\0<version>`. The stream's part is encoded
 * once; each entry adds its version's digits into a buffer from Node's pool. Why: a catch-up
 * decrypts every entry, and encoding the whole text per entry (TextEncoder, a new ArrayBuffer
 * each time) was a measurable part of what encryption costs a read of single-event entries.
 */
export class EntryContexts {
  private readonly prefix: Buffer;

  constructor(stream: string) {
    this.prefix = Buffer.from(`eventhorizon/entry\u0000${stream}\u0000`, 'utf8');
  }

  /** The associated data of the entry at `version`. */
  at(version: Version): Uint8Array {
    const digits = version.toString();
    const context = Buffer.allocUnsafe(this.prefix.byteLength + digits.length);
    this.prefix.copy(context, 0);
    // Digits (and a minus sign) are ASCII: one byte each, the same in latin1 as in UTF-8.
    context.write(digits, this.prefix.byteLength, 'latin1');
    return context;
  }
}

/** Associated data of a snapshot: bound to its stream, perspective and version. */
function snapshotContext(stream: string, perspective: string, version: Version): Uint8Array {
  return ENCODER.encode(`eventhorizon/snapshot\u0000${stream}\u0000${perspective}\u0000${version}`);
}

/**
 * Encodes and decodes one stream's entries and snapshots. Entries are stored as the protobuf
 * encoding of an `Entry` holding only its events (version and time live in the store's own
 * columns), compressed, and encrypted with the stream's data key when encryption is on.
 */
export class StreamCodec {
  private contexts: EntryContexts | undefined;

  constructor(
    readonly stream: string,
    private readonly payloads: PayloadCodec,
    private readonly keys: DataKeys | undefined,
  ) {}

  /** The associated data of the entry at `version` (made only for encrypted entries). */
  private entryContext(version: Version): Uint8Array {
    return (this.contexts ??= new EntryContexts(this.stream)).at(version);
  }

  /** The payload of an entry holding these events: serialized and compressed once, sealed per version. */
  entryPayload(events: Event[]): PayloadAt {
    const compressed = this.payloads.compress(encodeMessage(Entry, { version: 0n, events }));
    return (version) => this.payloads.frame(compressed, this.lock(this.entryContext(version)));
  }

  /** A stored entry's serialized `Entry` (events only), decrypted and decompressed, not decoded. */
  openEntry(stored: StoredEntry): Uint8Array {
    return this.payloads.open(stored.payload, this.keys?.key, () => this.entryContext(stored.version));
  }

  /** As `openEntry`, written into `allocate(size)` once the size is known (a message's place for it). */
  openEntryInto(stored: StoredEntry, allocate: Allocate): void {
    this.payloads.openInto(stored.payload, this.keys?.key, () => this.entryContext(stored.version), allocate);
  }

  /** The API entry of a stored one. */
  decodeEntry(stored: StoredEntry): Entry {
    return this.decodeOpenedEntry(stored, this.openEntry(stored));
  }

  /** The API entry of a stored one whose `openEntry` bytes the caller already has. */
  decodeOpenedEntry(stored: StoredEntry, opened: Uint8Array): Entry {
    const entry = Entry.decode(opened);
    entry.version = stored.version;
    entry.recordedAt = stored.recordedAt;
    return entry;
  }

  snapshotPayload(perspective: string, version: Version, data: Uint8Array): Uint8Array {
    return this.payloads.seal(data, this.lock(snapshotContext(this.stream, perspective, version)));
  }

  openSnapshot(perspective: string, version: Version, payload: Uint8Array): Uint8Array {
    return this.payloads.open(payload, this.keys?.key, snapshotContext(this.stream, perspective, version));
  }

  /** Whether new entries and snapshots are sealed with the stream's data key. */
  get sealing(): boolean {
    return this.keys !== undefined && this.keys.activeVersion > 0;
  }

  private lock(associatedData: Uint8Array): Lock | undefined {
    if (!this.keys || this.keys.activeVersion === 0) return undefined;
    return { dekVersion: this.keys.activeVersion, key: this.keys.key(this.keys.activeVersion), associatedData };
  }
}

/** Hands out stream codecs: plain ones, or encrypting ones when a key manager is configured. */
export class Codecs {

  constructor(private readonly payloads: PayloadCodec, readonly keys?: StreamKeyManager) {}

  /** Whether new data is encrypted. */
  get encrypting(): boolean {
    return this.keys !== undefined;
  }

  /**
   * The codec of a stream. `write` makes sure an existing stream has a data key, `create` does
   * so for a stream about to be created; reading never creates keys.
   */
  async forStream(stream: string, purpose: 'read' | 'write' | 'create'): Promise<StreamCodec> {
    if (!this.keys) return new StreamCodec(stream, this.payloads, undefined);
    return new StreamCodec(stream, this.payloads, await this.keys.forStream(stream, purpose));
  }

  /**
   * The codec to read these stored payloads (entries or snapshots) of a stream. When one names a
   * DEK version newer than the cached keys (the key was rotated on another replica), the keys are
   * reloaded first, once, rather than failing until the cache expires.
   */
  async forReading(stream: string, payloads: Iterable<Uint8Array>): Promise<StreamCodec> {
    if (!this.keys) return new StreamCodec(stream, this.payloads, undefined);
    let newest = 0;
    for (const payload of payloads) newest = Math.max(newest, this.payloads.dekVersionOf(payload) ?? 0);
    return new StreamCodec(stream, this.payloads, await this.keys.forStream(stream, 'read', newest));
  }
}
