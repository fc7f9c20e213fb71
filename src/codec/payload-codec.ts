import { CorruptDataError } from '../store/errors';
import { Compression, type Compressor } from './compression';

/**
 * Payload format: one header byte, then the body.
 *
 *   header = format << 4 | compression
 *   format 0      : the body is the (maybe compressed) serialized data, unencrypted.
 *   compression 0 : none; 1 : zstd.
 *
 * Unknown formats and methods are refused rather than guessed at, so that later formats (such as
 * encryption) coexist with data already written.
 */
export const FORMAT_PLAIN = 0;

/** Compression is kept only when it saves at least this fraction of the bytes. */
const MIN_SAVING = 0.1;
/** Below this size compression cannot save enough to pay for itself. */
const MIN_COMPRESS_BYTES = 64;

export class PayloadCodec {
  constructor(private readonly zstd: Compressor, private readonly maxDecodedBytes: number) {}

  /** Wraps serialized bytes into a stored payload, compressed when that saves at least 10 %. */
  seal(data: Uint8Array): Uint8Array {
    if (data.byteLength >= MIN_COMPRESS_BYTES) {
      const compressed = this.zstd.compress(data);
      if (compressed.byteLength <= data.byteLength * (1 - MIN_SAVING)) {
        return withHeader(header(FORMAT_PLAIN, Compression.Zstd), compressed);
      }
    }
    return withHeader(header(FORMAT_PLAIN, Compression.None), data);
  }

  /** Unwraps a stored payload back into serialized bytes. */
  open(payload: Uint8Array): Uint8Array {
    if (payload.byteLength === 0) throw new CorruptDataError('empty payload');
    const head = payload[0] ?? 0;
    const format = head >> 4;
    const compression = head & 0x0f;
    if (format !== FORMAT_PLAIN) throw new CorruptDataError(`unknown payload format ${format}`);
    const body = payload.subarray(1);
    switch (compression) {
      case Compression.None:
        return body;
      case Compression.Zstd:
        return this.zstd.decompress(body, this.maxDecodedBytes);
      default:
        throw new CorruptDataError(`unknown compression method ${compression}`);
    }
  }
}

function header(format: number, compression: Compression): number {
  return (format << 4) | compression;
}

function withHeader(head: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = head;
  out.set(body, 1);
  return out;
}
