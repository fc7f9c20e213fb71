import { randomBytes, randomUUID } from 'node:crypto';
import { Entry } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { loadZstd } from '../src/codec/compression';
import { PayloadCodec } from '../src/codec/payload-codec';
import { KEY_BYTES, open, seal } from '../src/crypto/aead';
import { OrderEvents } from './events';
import type { Figures } from './scenarios';

/**
 * In-process micro-measure that explains the encryption figures: what AES-256-GCM costs per
 * stored payload (an entry, as the codec stores it: serialized, compressed from 512 bytes), next to
 * what zstd costs on the same payload. No server, no gRPC: the pure per-payload work.
 */

/**
 * Calls `fn` repeatedly for about `budgetMs`; answers CPU µs per call. CPU time rather than wall
 * time: on a shared machine the wall clock also counts the time other processes held the core.
 */
export function microsPerCall(budgetMs: number, fn: () => unknown): number {
  for (let i = 0; i < 50; i++) fn(); // warm-up: let V8 optimise before timing
  let calls = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < budgetMs) {
    for (let i = 0; i < 20; i++) fn();
    calls += 20;
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / calls;
}

/** Records `encryption.aead.e{N}.*` figures for entries of 1 and of 100 events, `budgetMs` per measure. */
export async function measureAead(figures: Figures, budgetMs: number): Promise<void> {
  const zstd = await loadZstd();
  const events = new OrderEvents(7);
  const key = randomBytes(KEY_BYTES);
  // The shape of an entry's associated data (stream and version), as the codec binds it.
  const associatedData = Buffer.from('eventhorizon/entry\u0000/bench/encryption-append-1/s0\u00001234');
  for (const eventsPerEntry of [1, 100]) {
    const serialized = Entry.encode({
      version: 0n,
      events: Array.from({ length: eventsPerEntry }, () => ({ ...events.nextEvent(), id: randomUUID() })),
    }).finish();
    // What the codec seals: its policy's output (a single event is stored as is, not compressed).
    const policy = new PayloadCodec(zstd, 64 * 1024 * 1024).compress(serialized).body;
    const compressed = zstd.compress(serialized);
    const sealed = seal(key, policy, associatedData);
    const prefix = `encryption.aead.e${eventsPerEntry}`;
    figures.set(`${prefix}.bytes`, policy.byteLength);
    figures.set(`${prefix}.sealUs`, microsPerCall(budgetMs, () => seal(key, policy, associatedData)));
    figures.set(`${prefix}.openUs`, microsPerCall(budgetMs, () => open(key, sealed, associatedData)));
    figures.set(`${prefix}.compressUs`, microsPerCall(budgetMs, () => zstd.compress(serialized)));
    figures.set(`${prefix}.decompressUs`, microsPerCall(budgetMs, () => zstd.decompress(compressed, 64 * 1024 * 1024)));
  }
}
