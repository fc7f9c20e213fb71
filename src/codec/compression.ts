import { frameContentSize } from './zstd-frame';
import { NativeZstd, requireZstdNapi, type ZstdNapiBinding } from './zstd-native';
import { NodeZlibZstd, nodeZstd, type NodeZstd } from './zstd-node';

/** A compression method, as recorded in the low 4 bits of the payload header. */
export const enum Compression {
  None = 0,
  Zstd = 1,
}

/** Answers where `size` bytes go: a view of exactly that size (a part of a larger buffer, say). */
export type Allocate = (size: number) => Uint8Array;

/** A tiny compression interface: the codec does not care which library is behind it. */
export interface Compressor {
  compress(data: Uint8Array): Uint8Array;
  /** Decompresses, refusing output larger than `maxBytes` before allocating it. */
  decompress(data: Uint8Array, maxBytes: number): Uint8Array;
  /**
   * Decompresses into `allocate(size)`, asked once the declared size is known and within
   * `maxBytes`: a caller that frames the bytes (a subscription message) has them written in
   * place rather than copied there.
   */
  decompressInto(data: Uint8Array, maxBytes: number, allocate: Allocate): void;
}

/**
 * zstd level 1, rather than zstd's default 3: on the bench's entries (~300-byte JSON events with
 * the server's UUIDv7 ids) it stores the same bytes (43.3 against 43.5 per event in 100-event
 * entries, 4,334 against 4,354 per entry) for about 15 % less CPU per compress (49 against 59 µs
 * per 100-event entry). Frames of any level read the same way, so stored data does not depend on it.
 */
export const ZSTD_LEVEL = 1;

/**
 * Where zstd comes from, fastest first. All write standard zstd frames that record their content
 * size, so each reads what the others wrote: stored data does not depend on the choice.
 */
export type ZstdPath = 'native' | 'node:zlib' | 'wasm';

export interface ZstdChoice {
  compressor: Compressor;
  path: ZstdPath;
  /** Why the native binding is not used; absent when it is. */
  fallbackReason?: string;
}

export interface ZstdOptions {
  /** Loads zstd-napi's binding; injectable, so that tests can play a machine where it does not load. */
  loadNative?: () => ZstdNapiBinding;
  /** Node's own zstd, or undefined for a runtime without it; by default, node:zlib's when it has zstd. */
  nodeZstd?: NodeZstd | undefined;
  level?: number;
}

/**
 * Chooses the fastest zstd that works here: zstd-napi (native, an optional dependency built at
 * install), else node:zlib's zstd (Node 22.15+), else zstd-codec's WebAssembly, which always loads.
 */
export async function chooseZstd(options: ZstdOptions = {}): Promise<ZstdChoice> {
  const level = options.level ?? ZSTD_LEVEL;
  let fallbackReason: string;
  try {
    return { compressor: checked(new NativeZstd((options.loadNative ?? requireZstdNapi)(), level)), path: 'native' };
  } catch (error) {
    fallbackReason = `the native zstd binding (zstd-napi) is unavailable: ${message(error)}`;
  }
  const node = 'nodeZstd' in options ? options.nodeZstd : nodeZstd();
  if (node) {
    try {
      return { compressor: checked(new NodeZlibZstd(node, level)), path: 'node:zlib', fallbackReason };
    } catch (error) {
      fallbackReason += `; node:zlib's zstd is not usable: ${message(error)}`;
    }
  }
  // Loaded only as the fallback: where the native binding loads, zstd-codec is never used.
  const { wasmZstd } = require('./zstd-wasm') as typeof import('./zstd-wasm');
  return { compressor: await wasmZstd(level), path: 'wasm', fallbackReason };
}

/**
 * A round trip on a sample before a path is used: a binding that loads but misbehaves (or a
 * node:zlib whose frames do not record their size, which every reader here requires) is
 * refused at start rather than found out on stored data.
 */
function checked(compressor: Compressor): Compressor {
  const sample = Buffer.from(JSON.stringify({ check: 'zstd round trip', again: 'zstd round trip' }));
  const frame = compressor.compress(sample);
  if (frameContentSize(frame) !== sample.byteLength) throw new Error('its frames do not record their content size');
  if (!Buffer.from(compressor.decompress(frame, sample.byteLength)).equals(sample)) throw new Error('a round trip changed the data');
  return compressor;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Where a fallback is reported: the server passes its logger; elsewhere a process warning. */
export type ZstdWarn = (message: string) => void;

const processWarning: ZstdWarn = (text) => process.emitWarning(text, 'ZstdFallback');

/**
 * A loader that chooses once and reports a fallback once, with its reason, through the `warn`
 * of the first call; every call answers the same compressor.
 */
export function zstdLoader(options: ZstdOptions = {}): (warn?: ZstdWarn) => Promise<Compressor> {
  let loading: Promise<Compressor> | undefined;
  return (warn = processWarning) => {
    loading ??= chooseZstd(options).then((choice) => {
      if (choice.fallbackReason !== undefined) warn(`zstd: using ${choice.path}, slower than native: ${choice.fallbackReason}`);
      return choice.compressor;
    });
    return loading;
  };
}

/** The process's zstd compressor (see `chooseZstd`). */
export const loadZstd = zstdLoader();
