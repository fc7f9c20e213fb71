import zlib from 'node:zlib';
import { CorruptDataError } from '../core/errors';
import type { Allocate, Compressor } from './compression';
import { frameContentSize } from './zstd-frame';

/**
 * Node's own zstd (node:zlib, from Node 22.15 and 23.8), as far as it is used here. Declared
 * because @types/node for Node 20, which the project builds with, does not have it.
 */
export interface NodeZstd {
  zstdCompressSync(data: Uint8Array, options: { params: Record<number, number>; pledgedSrcSize: number }): Uint8Array;
  zstdDecompressSync(data: Uint8Array, options: { maxOutputLength: number }): Uint8Array;
  constants: { ZSTD_c_compressionLevel: number };
}

/** node:zlib when this runtime has zstd, else undefined. */
export function nodeZstd(): NodeZstd | undefined {
  const candidate = zlib as unknown as Partial<NodeZstd>;
  const has = typeof candidate.zstdCompressSync === 'function' && typeof candidate.zstdDecompressSync === 'function'
    && typeof candidate.constants?.ZSTD_c_compressionLevel === 'number';
  return has ? (candidate as NodeZstd) : undefined;
}

/**
 * zstd through node:zlib. Each call sets up a zlib stream, so it is slower per call than
 * zstd-napi's reused contexts, but needs no package. The frames record their content size only
 * where Node knows `pledgedSrcSize` (the selection checks that before using this path).
 */
export class NodeZlibZstd implements Compressor {
  private readonly params: Record<number, number>;

  constructor(private readonly zstd: NodeZstd, level: number) {
    this.params = { [zstd.constants.ZSTD_c_compressionLevel]: level };
  }

  compress(data: Uint8Array): Uint8Array {
    return this.zstd.zstdCompressSync(data, { params: this.params, pledgedSrcSize: data.byteLength });
  }

  decompress(data: Uint8Array, maxBytes: number): Uint8Array {
    const size = frameContentSize(data);
    if (size === null) throw new CorruptDataError('zstd frame without a valid content size');
    if (size > maxBytes) throw new CorruptDataError(`zstd frame declares ${size} bytes, over the ${maxBytes} limit`);
    let output: Uint8Array;
    try {
      // maxOutputLength bounds what zlib allocates even if the frame lies about its size.
      output = this.zstd.zstdDecompressSync(data, { maxOutputLength: Math.max(size, 1) });
    } catch (error) {
      throw new CorruptDataError(`corrupt zstd frame: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (output.byteLength !== size) throw new CorruptDataError('corrupt zstd frame: not the size it declares');
    return output;
  }

  /** Decompresses (with the size checks of `decompress`), then copies: this binding writes only buffers of its own. */
  decompressInto(data: Uint8Array, maxBytes: number, allocate: Allocate): void {
    const output = this.decompress(data, maxBytes);
    allocate(output.byteLength).set(output);
  }
}
