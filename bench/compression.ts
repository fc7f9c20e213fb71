import { Entry } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { chooseZstd, ZSTD_LEVEL, type Compressor } from '../src/codec/compression';
import { MIN_COMPRESS_BYTES, PayloadCodec } from '../src/codec/payload-codec';
import { EntryEventIds } from '../src/model/event-ids';
import { NodeZlibZstd, nodeZstd } from '../src/codec/zstd-node';
import { NativeZstd, requireZstdNapi } from '../src/codec/zstd-native';
import { wasmZstd } from '../src/codec/zstd-wasm';
import { microsPerCall } from './aead-micro';
import { OrderEvents } from './events';
import type { Figures } from './scenarios';

/**
 * In-process micro-measure of zstd (issue 14, target 7): CPU µs per compress and decompress of
 * a stored entry of 1 event (~300-byte JSON) and of 100 events, for each zstd path that loads
 * on this machine. No server: the pure per-payload work, as the codec does it.
 */

export interface CompressionPath {
  key: string;
  name: string;
  label: string;
  /** The compressor, or undefined where this path does not load. */
  load(): Promise<Compressor | undefined>;
}

function orUndefined<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

/** Decompression bound of the measures: far above any entry here. */
const MAX_DECODED = 64 * 1024 * 1024;

/**
 * What the server does per entry: the codec's policy (stored as is under `MIN_COMPRESS_BYTES`,
 * else compressed by the chosen zstd) with its header byte, as a Compressor so the measures
 * below time it like the zstd paths. Its figures are the ones the targets are judged on.
 */
async function codecPolicy(): Promise<Compressor> {
  const codec = new PayloadCodec((await chooseZstd()).compressor, MAX_DECODED);
  return {
    compress: (data) => codec.seal(data),
    decompress: (data) => codec.open(data),
    decompressInto: (data, _maxBytes, allocate) => codec.openInto(data, undefined, undefined, allocate),
  };
}

export const COMPRESSION_PATHS: readonly CompressionPath[] = [
  {
    key: 'codec',
    name: 'the codec',
    label: `the codec's policy: stored as is under ${MIN_COMPRESS_BYTES} bytes, else the chosen zstd at level ${ZSTD_LEVEL} (header byte included): what the server does`,
    load: codecPolicy,
  },
  {
    key: 'native',
    name: 'zstd-napi',
    label: `zstd-napi (native), level ${ZSTD_LEVEL}: the chosen path`,
    load: async () => {
      const choice = await chooseZstd();
      return choice.path === 'native' ? choice.compressor : undefined;
    },
  },
  {
    key: 'nodezlib',
    name: "node:zlib's zstd (Node 22.15+)",
    label: `node:zlib zstd, level ${ZSTD_LEVEL}: next, on Node 22.15+ without zstd-napi`,
    load: async () => {
      const zstd = nodeZstd();
      return zstd && new NodeZlibZstd(zstd, ZSTD_LEVEL);
    },
  },
  {
    key: 'wasm',
    name: 'zstd-codec',
    label: `zstd-codec (WebAssembly), level ${ZSTD_LEVEL}: the fallback`,
    load: () => wasmZstd(ZSTD_LEVEL),
  },
  {
    key: 'nativeL3',
    name: 'zstd-napi at level 3',
    label: 'zstd-napi, level 3: what the codec used before, for comparison',
    load: async () => orUndefined(() => new NativeZstd(requireZstdNapi(), 3)),
  },
];

export const COMPRESSION_SIZES = [1, 100] as const;
const WARM_UP_MS = 200;

function warmUp(ms: number, fn: () => unknown): void {
  const started = performance.now();
  while (performance.now() - started < ms) fn();
}

/** Records `compression.{path}.e{N}.{bytes,compressUs,decompressUs}`, `budgetMs` per measure. */
export async function measureCompression(figures: Figures, budgetMs: number): Promise<void> {
  const events = new OrderEvents(7);
  // An entry as the codec serializes it before compressing, with the ids the server gives events
  // that come without one (UUIDv7 sharing a random tail within the entry), as the bench's appends do.
  const entries = COMPRESSION_SIZES.map((eventsPerEntry) => {
    const ids = new EntryEventIds();
    return Entry.encode({
      version: 0n,
      events: Array.from({ length: eventsPerEntry }, () => ({ ...events.nextEvent(), id: ids.next() })),
    }).finish();
  });
  for (const path of COMPRESSION_PATHS) {
    const zstd = await path.load();
    if (!zstd) continue;
    for (const [index, eventsPerEntry] of COMPRESSION_SIZES.entries()) {
      const serialized = entries[index] as Uint8Array;
      const compressed = zstd.compress(serialized);
      // Longer than microsPerCall's own warm-up: WebAssembly is compiled in tiers, the optimised
      // tier in the background, and on a busy machine that takes a while to arrive.
      warmUp(WARM_UP_MS, () => zstd.decompress(zstd.compress(serialized), MAX_DECODED));
      const prefix = `compression.${path.key}.e${eventsPerEntry}`;
      figures.set(`${prefix}.rawBytes`, serialized.byteLength);
      figures.set(`${prefix}.bytes`, compressed.byteLength);
      figures.set(`${prefix}.compressUs`, microsPerCall(budgetMs, () => zstd.compress(serialized)));
      figures.set(`${prefix}.decompressUs`, microsPerCall(budgetMs, () => zstd.decompress(compressed, MAX_DECODED)));
    }
  }
}
