import { ZstdCodec, type ZstdBinding, type ZstdSimple } from 'zstd-codec';
import { CorruptDataError } from '../core/errors';
import type { Allocate, Compressor } from './compression';
import { frameContentSize } from './zstd-frame';

let loading: Promise<ZstdBinding> | undefined;

/**
 * zstd-codec's WebAssembly build: slower than the native binding (each call creates a zstd
 * context and copies through Emscripten vectors), but it loads anywhere. The fallback. Its
 * module loads once, asynchronously.
 */
export async function wasmZstd(level: number): Promise<Compressor> {
  loading ??= new Promise((resolve) => ZstdCodec.run(resolve));
  const zstd = await loading;
  return new WasmZstd(new zstd.Simple(), level);
}

class WasmZstd implements Compressor {
  constructor(private readonly simple: ZstdSimple, private readonly level: number) {}

  compress(data: Uint8Array): Uint8Array {
    const compressed = this.simple.compress(data, this.level);
    if (!compressed) throw new Error('zstd compression failed');
    return compressed;
  }

  decompress(data: Uint8Array, maxBytes: number): Uint8Array {
    // The frame declares its size; checking it first means a hostile frame cannot make us
    // allocate more than the limit. Read from the header here: zstd-codec's own contentSize
    // answers a 32-bit int, so a declared 2^32 + 100 would pass for 100.
    const size = frameContentSize(data);
    if (size === null) throw new CorruptDataError('zstd frame without a valid content size');
    if (size > maxBytes) throw new CorruptDataError(`zstd frame declares ${size} bytes, over the ${maxBytes} limit`);
    const output = this.simple.decompress(data);
    if (!output || output.byteLength !== size) throw new CorruptDataError('corrupt zstd frame');
    return output;
  }

  /** Decompresses (with the size checks of `decompress`), then copies: this binding writes only buffers of its own. */
  decompressInto(data: Uint8Array, maxBytes: number, allocate: Allocate): void {
    const output = this.decompress(data, maxBytes);
    allocate(output.byteLength).set(output);
  }
}
