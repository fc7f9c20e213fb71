import { CorruptDataError } from '../core/errors';
import type { Allocate, Compressor } from './compression';

/**
 * The part of zstd-napi's low-level binding used here. Declared rather than imported from the
 * package: zstd-napi is an optional dependency (a native build that may fail), so the project
 * must build and run where it is absent.
 */
export interface ZstdNapiBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  compressBound(size: number): number;
  /** The content size the frame declares; null when unknown; throws when not a frame. */
  getFrameContentSize(frame: Uint8Array): number | null;
}

/** Loads zstd-napi's compiled binding; throws where it is not installed or does not load. */
export function requireZstdNapi(): ZstdNapiBinding {
  // require rather than import: a missing package or an unloadable .node file must be an error
  // the caller catches (and falls back from), not a failure to start.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above: loading must be able to fail at run time
  return require('zstd-napi/binding') as ZstdNapiBinding;
}

const EMPTY = new Uint8Array(0);

/** Inputs up to this size compress into one reused buffer; larger ones get a buffer of their own. */
const SCRATCH_LIMIT = 1 << 20;

/**
 * zstd through zstd-napi (libzstd compiled natively), keeping one compression and one
 * decompression context for the process: most of what zstd-codec spends on a small payload is
 * creating a context per call. Single-threaded use only, as everything on Node's main thread is.
 */
export class NativeZstd implements Compressor {
  private readonly cctx: InstanceType<ZstdNapiBinding['CCtx']>;
  private readonly dctx: InstanceType<ZstdNapiBinding['DCtx']>;
  private scratch = new Uint8Array(0);

  constructor(private readonly zstd: ZstdNapiBinding, private readonly level: number) {
    this.cctx = new zstd.CCtx();
    this.dctx = new zstd.DCtx();
  }

  compress(data: Uint8Array): Uint8Array {
    const bound = this.zstd.compressBound(data.byteLength);
    if (bound > SCRATCH_LIMIT) {
      const out = new Uint8Array(bound);
      return out.slice(0, this.cctx.compress(out, data, this.level));
    }
    if (this.scratch.byteLength < bound) this.scratch = new Uint8Array(Math.max(bound, 2 * this.scratch.byteLength));
    // ZSTD_compressCCtx records the content size in the frame header, as zstd-codec's
    // ZSTD_compress did: decompress() and older readers rely on it. slice() copies the frame
    // out of the scratch buffer.
    return this.scratch.slice(0, this.cctx.compress(this.scratch, data, this.level));
  }

  decompress(data: Uint8Array, maxBytes: number): Uint8Array {
    let output = EMPTY;
    this.decompressInto(data, maxBytes, (size) => (output = new Uint8Array(size)));
    return output;
  }

  decompressInto(data: Uint8Array, maxBytes: number, allocate: Allocate): void {
    let size: number | null;
    try {
      size = this.zstd.getFrameContentSize(data);
    } catch (error) {
      throw new CorruptDataError(`not a zstd frame: ${reason(error)}`);
    }
    if (size === null) throw new CorruptDataError('zstd frame without a valid content size');
    // Checked before allocating: a hostile frame cannot make us allocate more than the limit.
    if (size > maxBytes) throw new CorruptDataError(`zstd frame declares ${size} bytes, over the ${maxBytes} limit`);
    // Exactly the declared size: a frame that holds more fails with "destination buffer too small".
    const output = allocate(size);
    let written: number;
    try {
      written = this.dctx.decompress(output, data);
    } catch (error) {
      throw new CorruptDataError(`corrupt zstd frame: ${reason(error)}`);
    }
    if (written !== size) throw new CorruptDataError('corrupt zstd frame: shorter than it declares');
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
