import { randomUUID } from 'node:crypto';
import { Entry } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { chooseZstd, ZSTD_LEVEL, type Compressor } from '../src/codec/compression';
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

export const COMPRESSION_PATHS: readonly CompressionPath[] = [
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
    label: `zstd-codec (WebAssembly), level ${ZSTD_LEVEL}: the fallback, and what ran before`,
    load: () => wasmZstd(ZSTD_LEVEL),
  },
  {
    key: 'nativeL1',
    name: 'zstd-napi at level 1',
    label: 'zstd-napi, level 1: for comparison, not used',
    load: async () => orUndefined(() => new NativeZstd(requireZstdNapi(), 1)),
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
  // The same shape as the aead figures: an entry as the codec serializes it before compressing.
  const entries = COMPRESSION_SIZES.map((eventsPerEntry) =>
    Entry.encode({
      version: 0n,
      events: Array.from({ length: eventsPerEntry }, () => ({ ...events.nextEvent(), id: randomUUID() })),
    }).finish(),
  );
  for (const path of COMPRESSION_PATHS) {
    const zstd = await path.load();
    if (!zstd) continue;
    for (const [index, eventsPerEntry] of COMPRESSION_SIZES.entries()) {
      const serialized = entries[index] as Uint8Array;
      const compressed = zstd.compress(serialized);
      // Longer than microsPerCall's own warm-up: WebAssembly is compiled in tiers, the optimised
      // tier in the background, and on a busy machine that takes a while to arrive.
      warmUp(WARM_UP_MS, () => zstd.decompress(zstd.compress(serialized), 64 * 1024 * 1024));
      const prefix = `compression.${path.key}.e${eventsPerEntry}`;
      figures.set(`${prefix}.rawBytes`, serialized.byteLength);
      figures.set(`${prefix}.bytes`, compressed.byteLength);
      figures.set(`${prefix}.compressUs`, microsPerCall(budgetMs, () => zstd.compress(serialized)));
      figures.set(`${prefix}.decompressUs`, microsPerCall(budgetMs, () => zstd.decompress(compressed, 64 * 1024 * 1024)));
    }
  }
}
