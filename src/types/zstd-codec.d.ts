// zstd-codec ships no type declarations; these cover the part of its API the codec uses.
declare module 'zstd-codec' {
  export interface ZstdSimple {
    /** Compresses a whole buffer into one frame that records its content size. */
    compress(content: Uint8Array, level?: number): Uint8Array | null;
    /** Decompresses one frame; null when the frame is invalid or does not record its size. */
    decompress(compressed: Uint8Array): Uint8Array | null;
  }
  export interface ZstdBinding {
    Simple: new () => ZstdSimple;
  }
  export const ZstdCodec: { run(callback: (zstd: ZstdBinding) => void): void };
}
