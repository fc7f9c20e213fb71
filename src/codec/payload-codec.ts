import { KeyUnavailableError, CorruptDataError } from '../core/errors';
import { open as aeadOpen, seal as aeadSeal } from '../crypto/aead';
import { Compression, type Allocate, type Compressor } from './compression';

/**
 * Payload format: one header byte, then the body.
 *
 *   header = format << 4 | compression       compression 0: none, 1: zstd
 *   format 0: body = the (maybe compressed) serialized data
 *   format 2: body = DEK version (uint32, big-endian) ‖ AES-256-GCM(nonce ‖ ciphertext ‖ tag) of
 *             the (maybe compressed) data; the associated data is the header byte and the DEK
 *             version, then the position's associated data: every byte outside the ciphertext
 *             is authenticated, so a flipped compression bit fails to decrypt (DATA_LOSS)
 *             instead of handing compressed bytes on as data, or garbage to the decompressor
 *   format 1: as format 2, but the associated data is the position's only. Written by earlier
 *             versions, and still read, so that stored data stays readable; never written now.
 *
 * Format 2 is a new format rather than a change to format 1's associated data because a reader
 * must know which associated data was used: trying both would let a tampered header pass as
 * format 1. A format-1 payload relabelled as format 2 (or the reverse) does not decrypt either,
 * since each was sealed with its own header in, or not in, the associated data.
 *
 * Unknown formats and methods are refused rather than guessed at, so new formats coexist with
 * data already written. The KEK that wraps a DEK is recorded with the wrapped DEK rather than
 * here, because KEK rotation re-wraps DEKs without rewriting entries.
 */
export const FORMAT_PLAIN = 0;
/** Encrypted, header unauthenticated: read only (data written by earlier versions). */
export const FORMAT_ENCRYPTED_V1 = 1;
/** Encrypted, header authenticated: what encryption writes. */
export const FORMAT_ENCRYPTED = 2;

/** Compression is kept only when it saves at least this fraction of the bytes. */
const MIN_SAVING = 0.1;
/**
 * Data under this size is stored as is, without calling zstd: compression would not earn its
 * cost. zstd's fixed work per frame (context reset, entropy tables) costs about 8 µs to compress
 * and 3.3 µs to decompress whatever the size, and a single ~300-byte JSON event (a 350-byte
 * entry) saves only 16 % (about 60 bytes) for it, paid again on every catch-up read. From two
 * such events (700 bytes) on, zstd saves 45-50 % and more: the repetition it finds is between
 * events, or within a larger document. Measured on the bench's event shapes (BENCHMARKS.md,
 * "Compression: zstd per stored payload"). Which data was compressed is recorded per payload
 * (the header's compression bits), so moving this bound never makes stored data unreadable.
 */
export const MIN_COMPRESS_BYTES = 512;
const DEK_VERSION_BYTES = 4;

/** Serialized data after compression, ready to be framed (and maybe encrypted) for a position. */
export interface Compressed {
  compression: Compression;
  body: Uint8Array;
}

/** The key and position binding of an encrypted payload. */
export interface Lock {
  dekVersion: number;
  key: Uint8Array;
  associatedData: Uint8Array;
}

/** Finds the data key of a DEK version; throws when it is unavailable (shredded, missing). */
export type KeyLookup = (dekVersion: number) => Uint8Array;

/**
 * The associated data of a payload's position, or a function that makes it: encrypted payloads
 * only need it, and a read of plain ones should not build it for every entry.
 */
export type AssociatedData = Uint8Array | (() => Uint8Array);

export class PayloadCodec {
  constructor(private readonly zstd: Compressor, private readonly maxDecodedBytes: number) {}

  /** Compresses data of `MIN_COMPRESS_BYTES` or more, when that saves at least 10 %. */
  compress(data: Uint8Array): Compressed {
    if (data.byteLength >= MIN_COMPRESS_BYTES) {
      const compressed = this.zstd.compress(data);
      if (compressed.byteLength <= data.byteLength * (1 - MIN_SAVING)) return { compression: Compression.Zstd, body: compressed };
    }
    return { compression: Compression.None, body: data };
  }

  /** Frames compressed data as a stored payload, encrypted when a lock is given. */
  frame(compressed: Compressed, lock?: Lock): Uint8Array {
    if (!lock) return withHeader(header(FORMAT_PLAIN, compressed.compression), [compressed.body]);
    const head = header(FORMAT_ENCRYPTED, compressed.compression);
    const prefix = Buffer.alloc(1 + DEK_VERSION_BYTES);
    prefix[0] = head;
    prefix.writeUInt32BE(lock.dekVersion, 1);
    const sealed = aeadSeal(lock.key, compressed.body, Buffer.concat([prefix, lock.associatedData]));
    return withHeader(head, [prefix.subarray(1), sealed]);
  }

  /** Compresses and frames in one step. */
  seal(data: Uint8Array, lock?: Lock): Uint8Array {
    return this.frame(this.compress(data), lock);
  }

  /** The DEK version an encrypted payload names; undefined for a plain (or malformed) one. */
  dekVersionOf(payload: Uint8Array): number | undefined {
    const format = (payload[0] ?? 0) >> 4;
    // Both encrypted formats put the DEK version right after the header byte.
    if (format !== FORMAT_ENCRYPTED && format !== FORMAT_ENCRYPTED_V1) return undefined;
    if (payload.byteLength < 1 + DEK_VERSION_BYTES) return undefined;
    return readDekVersion(payload);
  }

  /**
   * Unwraps a stored payload back into serialized bytes. Encrypted payloads need the key lookup
   * and the associated data of the position they were written at (made only for those, when
   * given as a function).
   */
  open(payload: Uint8Array, keys?: KeyLookup, associatedData?: AssociatedData): Uint8Array {
    const { head, body } = this.decrypt(payload, keys, associatedData);
    switch (head & 0x0f) {
      case Compression.None:
        return body;
      case Compression.Zstd:
        return this.zstd.decompress(body, this.maxDecodedBytes);
      default:
        throw new CorruptDataError(`unknown compression method ${head & 0x0f}`);
    }
  }

  /**
   * As `open`, but the serialized bytes are written into `allocate(size)`, asked once their size
   * is known (and, compressed, within the decoded limit): decompressed in place, not copied.
   */
  openInto(payload: Uint8Array, keys: KeyLookup | undefined, associatedData: AssociatedData | undefined, allocate: Allocate): void {
    const { head, body } = this.decrypt(payload, keys, associatedData);
    switch (head & 0x0f) {
      case Compression.None:
        allocate(body.byteLength).set(body);
        return;
      case Compression.Zstd:
        this.zstd.decompressInto(body, this.maxDecodedBytes, allocate);
        return;
      default:
        throw new CorruptDataError(`unknown compression method ${head & 0x0f}`);
    }
  }

  /** The header byte, and the body decrypted when the payload is encrypted (still compressed, maybe). */
  private decrypt(payload: Uint8Array, keys: KeyLookup | undefined, associatedData: AssociatedData | undefined) {
    if (payload.byteLength === 0) throw new CorruptDataError('empty payload');
    const head = payload[0] ?? 0;
    const format = head >> 4;
    const body = payload.subarray(1);
    if (format === FORMAT_PLAIN) return { head, body };
    if (format !== FORMAT_ENCRYPTED && format !== FORMAT_ENCRYPTED_V1) throw new CorruptDataError(`unknown payload format ${format}`);
    if (!keys || !associatedData) throw new KeyUnavailableError('encrypted data, but no keyring is configured');
    if (body.byteLength < DEK_VERSION_BYTES) throw new CorruptDataError('truncated encrypted payload');
    const dekVersion = readDekVersion(payload);
    const position = typeof associatedData === 'function' ? associatedData() : associatedData;
    const bound = format === FORMAT_ENCRYPTED ? headerBound(payload, position) : position;
    const opened = aeadOpen(keys(dekVersion), body.subarray(DEK_VERSION_BYTES), bound);
    if (!opened) throw new CorruptDataError('payload does not decrypt: tampered, or moved from another position');
    return { head, body: opened };
  }
}

/**
 * The DEK version after an encrypted payload's header byte (uint32, big-endian; the caller checked
 * the length). Read from the bytes: a Buffer view per entry is garbage a catch-up makes per entry.
 */
function readDekVersion(payload: Uint8Array): number {
  return (((payload[1] ?? 0) << 24) | ((payload[2] ?? 0) << 16) | ((payload[3] ?? 0) << 8) | (payload[4] ?? 0)) >>> 0;
}

/** Format 2's associated data: the header byte and DEK version, then the position's. */
function headerBound(payload: Uint8Array, position: Uint8Array): Uint8Array {
  const bound = Buffer.allocUnsafe(1 + DEK_VERSION_BYTES + position.byteLength);
  bound.set(payload.subarray(0, 1 + DEK_VERSION_BYTES), 0);
  bound.set(position, 1 + DEK_VERSION_BYTES);
  return bound;
}

function header(format: number, compression: Compression): number {
  return (format << 4) | compression;
}

function withHeader(head: number, parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(1 + parts.reduce((sum, part) => sum + part.byteLength, 0));
  out[0] = head;
  let offset = 1;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
