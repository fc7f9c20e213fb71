import { ZstdCodec, type ZstdGeneric, type ZstdSimple } from 'zstd-codec';
import { CorruptDataError } from '../core/errors';

/** A compression method, as recorded in the low 4 bits of the payload header. */
export const enum Compression {
  None = 0,
  Zstd = 1,
}

/** A tiny compression interface: the codec does not care which library is behind it. */
export interface Compressor {
  compress(data: Uint8Array): Uint8Array;
  /** Decompresses, refusing output larger than `maxBytes` before allocating it. */
  decompress(data: Uint8Array, maxBytes: number): Uint8Array;
}

/** zstd level 3: zstd's default, a good ratio at well over 100 MB/s. */
const ZSTD_LEVEL = 3;

let loading: Promise<Compressor> | undefined;

/** The zstd compressor. zstd-codec's WebAssembly module loads once, asynchronously. */
export function loadZstd(): Promise<Compressor> {
  loading ??= new Promise((resolve) => {
    ZstdCodec.run((zstd) => resolve(new ZstdCompressor(new zstd.Simple(), new zstd.Generic())));
  });
  return loading;
}

class ZstdCompressor implements Compressor {
  constructor(private readonly simple: ZstdSimple, private readonly generic: ZstdGeneric) {}

  compress(data: Uint8Array): Uint8Array {
    const compressed = this.simple.compress(data, ZSTD_LEVEL);
    if (!compressed) throw new Error('zstd compression failed');
    return compressed;
  }

  decompress(data: Uint8Array, maxBytes: number): Uint8Array {
    // The frame declares its size; checking it first means a hostile frame cannot make us
    // allocate more than the limit.
    const size = this.generic.contentSize(data);
    if (size === null) throw new CorruptDataError('zstd frame without a valid content size');
    if (size > maxBytes) throw new CorruptDataError(`zstd frame declares ${size} bytes, over the ${maxBytes} limit`);
    const output = this.simple.decompress(data);
    if (!output || output.byteLength !== size) throw new CorruptDataError('corrupt zstd frame');
    return output;
  }
}
