import { randomUUID } from 'node:crypto';
import { chooseZstd, loadZstd, type Compressor } from '../src/codec/compression';
import { Compression } from '../src/codec/compression';
import { PayloadCodec, type Compressed } from '../src/codec/payload-codec';
import { Codecs } from '../src/codec/stream-codec';
import type { KekProvider } from '../src/crypto/keyring';
import { StreamKeyManager } from '../src/crypto/stream-keys';
import { rootStartedEvents } from '../src/core/system-events';
import type { PayloadAt } from '../src/store/port';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { OrderEvents } from './events';

/**
 * Writes the large streams of the catch-up figures straight into the data folder, through the
 * store and the server's own codecs, before the server starts. Going through gRPC would take
 * minutes for a million single-event entries and measures nothing that the append figures don't.
 */

/** Distinct payloads per stream; entries cycle through them (ids need be unique only per entry). */
const DISTINCT_PAYLOADS = 500;
/** Appends per group commit while seeding. */
const BATCH = 5_000;

export interface SeedSpec {
  stream: string;
  eventsPerEntry: number;
  entries: number;
  /**
   * Store the entries zstd-compressed (level 3) whenever that saves 10 %, small ones included,
   * as versions before the 512-byte bound did (the server still reads them): what compressing
   * small entries cost a reader, measured.
   */
  compressedAsBefore?: boolean;
  /**
   * Instead of one stream: this many streams `<stream>/s<i>` (under `stream`, created too) of
   * `entries` entries each, written round-robin (one entry to each stream in turn), so that the
   * feed interleaves them as it does streams written side by side.
   */
  streams?: number;
}

/**
 * A payload codec that compresses as earlier versions did: any data of 64 bytes or more, kept
 * when it saves 10 %, at level 3.
 */
class CompressedAsBeforePayloadCodec extends PayloadCodec {
  constructor(private readonly level3: Compressor, maxDecodedBytes: number) {
    super(level3, maxDecodedBytes);
  }

  override compress(data: Uint8Array): Compressed {
    const compressed = this.level3.compress(data);
    if (data.byteLength >= 64 && compressed.byteLength <= data.byteLength * 0.9) return { compression: Compression.Zstd, body: compressed };
    return { compression: Compression.None, body: data };
  }
}

/**
 * Creates each stream (under /bench) and fills it; returns when the store is closed. With a
 * keyring the data is encrypted as a server with that keyring writes it (a data key per stream).
 */
export async function seed(dataDir: string, specs: SeedSpec[], kek?: KekProvider): Promise<void> {
  const zstd = await loadZstd();
  const store = new SqliteStore({ dataDir });
  const keys = kek && new StreamKeyManager(store, kek, { cacheStreams: 100, cacheTtlMs: 60 * 60_000 });
  const codecs = new Codecs(new PayloadCodec(zstd, 64 * 1024 * 1024), keys);
  const asBefore = new Codecs(new CompressedAsBeforePayloadCodec((await chooseZstd({ level: 3 })).compressor, 64 * 1024 * 1024), keys);
  const now = new Date();
  const root = await codecs.forStream('/', 'create');
  await store.init(root.entryPayload(rootStartedEvents())(0n), now);
  const system = (type: string, data: object) => ({
    id: randomUUID(), type, data: Buffer.from(JSON.stringify(data)), contentType: 'application/json', metadata: {}, occurredAt: undefined,
  });
  const create = async (stream: string, parent: string) => {
    const [codec, parentCodec] = await Promise.all([codecs.forStream(stream, 'create'), codecs.forStream(parent, 'write')]);
    await store.createStream({
      stream, parent, recordedAt: now,
      startedPayload: codec.entryPayload([system('$stream.started', { stream, parent })])(0n),
      childCreatedPayload: parentCodec.entryPayload([system('$stream.child-created', { child: stream })]),
    });
    return codec;
  };
  await create('/bench', '/');
  for (const spec of specs) {
    const created = await create(spec.stream, '/bench');
    const streams = spec.streams === undefined ? [spec.stream] : Array.from({ length: spec.streams }, (_, i) => `${spec.stream}/s${i}`);
    const events = new OrderEvents(11);
    const payloadsOf = async (stream: string) => {
      const own = stream === spec.stream ? created : await create(stream, spec.stream);
      const codec = spec.compressedAsBefore ? await asBefore.forStream(stream, 'write') : own;
      // Never more distinct payloads than entries: making them is most of a small seed's time.
      const perStream = spec.streams === undefined ? DISTINCT_PAYLOADS : Math.max(4, Math.ceil(DISTINCT_PAYLOADS / streams.length));
      const count = Math.min(perStream, spec.entries);
      return Array.from({ length: count }, () =>
        codec.entryPayload(Array.from({ length: spec.eventsPerEntry }, () => ({ ...events.nextEvent(), id: randomUUID() }))),
      );
    };
    // A stream's payloads are made with its own codec (its encryption key, with a keyring).
    const payloads: PayloadAt[][] = [];
    for (const stream of streams) payloads.push(await payloadsOf(stream));
    const total = spec.entries * streams.length;
    for (let written = 0; written < total; written += BATCH) {
      const batch: Array<Promise<unknown>> = [];
      for (let i = written; i < Math.min(total, written + BATCH); i++) {
        const s = i % streams.length;
        const own = payloads[s] as PayloadAt[];
        const payload = own[Math.floor(i / streams.length) % own.length] as PayloadAt;
        batch.push(store.append({ stream: streams[s] as string, payload, recordedAt: now }));
      }
      await Promise.all(batch);
    }
  }
  await store.close();
}
