import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReadResponse, SubscribeResponse, type Entry, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import {
  BATCH_BYTES,
  Encoded,
  EntryBatcher,
  ReadResponseWriter,
  encodeEntryMessage,
  encodeStoredEntryMessage,
  serializeReadResponse,
  serializeSubscribeResponse,
} from '../../src/codec/encoded-messages';
import { loadZstd } from '../../src/codec/compression';
import { PayloadCodec } from '../../src/codec/payload-codec';
import { StreamCodec } from '../../src/codec/stream-codec';

describe('pre-encoded subscription messages', () => {
  const events: Event[] = [
    { id: 'a', type: 'order.placed', data: Buffer.from('{"total":12.5}'), contentType: 'application/json', metadata: { user: 'u1' }, occurredAt: new Date(1_700_000_000_123) },
    { id: 'b', type: 'order.paid', data: Buffer.from('{}'), contentType: 'application/json', metadata: {}, occurredAt: undefined },
  ];

  for (const version of [0n, 1n, 300n, (1n << 62n) + 5n]) {
    it(`encodes a stored entry at version ${version} exactly as SubscribeResponse.encode does`, async () => {
      const codec = new StreamCodec('/s', new PayloadCodec(await loadZstd(), 1 << 20), undefined);
      const recordedAt = new Date(1_764_000_000_987);
      const stored = { version, recordedAt, payload: codec.entryPayload(events)(version) };
      const expected: Entry = { ...codec.decodeEntry(stored) };
      const viaObjects = Buffer.from(SubscribeResponse.encode({ message: { $case: 'entry', value: expected } }).finish());
      const passedThrough = encodeStoredEntryMessage(version, recordedAt, codec.openEntry(stored));
      assert.deepEqual(passedThrough.bytes, viaObjects);
      assert.deepEqual(SubscribeResponse.decode(passedThrough.bytes), { message: { $case: 'entry', value: expected } });
    });
  }

  it('encodes any version, time and events exactly as SubscribeResponse.encode does, events given or written in place', async () => {
    const codec = new StreamCodec('/s', new PayloadCodec(await loadZstd(), 1 << 20), undefined);
    let compressed = 0;
    const event = fc.record({
      id: fc.string({ maxLength: 40 }),
      type: fc.string({ minLength: 1, maxLength: 20 }),
      // Random bytes are stored as they are; repetitive ones compressed.
      data: fc.oneof(
        fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)),
        fc.tuple(fc.string({ minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 100 })).map(([text, times]) => Buffer.from(text.repeat(times))),
      ),
      contentType: fc.constantFrom('application/json', 'application/octet-stream'),
      metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
      occurredAt: fc.constant(undefined),
    });
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })),
        // Times from before 1970 (negative fields) to past 2100, whole seconds included.
        fc.oneof(fc.integer({ min: -5_000_000_000_000, max: 5_000_000_000_000 }), fc.integer({ min: -5_000_000, max: 5_000_000 }).map((s) => s * 1000)),
        fc.array(event, { maxLength: 4 }),
        (version, millis, events) => {
          const recordedAt = new Date(millis);
          const stored = { version, recordedAt, payload: codec.entryPayload(events)(version) };
          compressed += (stored.payload[0] ?? 0) & 0x0f;
          const expected = Buffer.from(SubscribeResponse.encode({ message: { $case: 'entry', value: { ...codec.decodeEntry(stored) } } }).finish());
          assert.deepEqual(encodeStoredEntryMessage(version, recordedAt, codec.openEntry(stored)).bytes, expected);
          assert.deepEqual(encodeStoredEntryMessage(version, recordedAt, (allocate) => codec.openEntryInto(stored, allocate)).bytes, expected);
        },
      ),
      { numRuns: 500 },
    );
    assert.ok(compressed > 50, `${compressed} of the 500 payloads were compressed`);
  });

  it('serializes a Read page exactly as ReadResponse.encode does, its trailer fields included, and the serializer passes it through', async () => {
    const codec = new StreamCodec('/s', new PayloadCodec(await loadZstd(), 1 << 20), undefined);
    const entries: Entry[] = [5n, 4n, 0n].map((version) => ({ version, events, recordedAt: new Date(1_764_000_000_000 + Number(version)) }));
    for (const [page, more, nextVersion, headVersion] of [
      [entries, true, -1n, 9n], // backwards to version 0: next_version -1
      [entries, false, 6n, 5n],
      [[], false, 0n, 0n],
      [entries.slice(0, 1), true, (1n << 62n) + 1n, 1n << 62n],
    ] as const) {
      const expected = Buffer.from(ReadResponse.encode({ entries: [...page], more, nextVersion, headVersion }).finish());
      const writer = new ReadResponseWriter(0);
      for (const entry of page) {
        const stored = { version: entry.version, recordedAt: entry.recordedAt as Date, payload: codec.entryPayload(entry.events)(entry.version) };
        writer.addEntry(entry.version, stored.recordedAt, (allocate) => codec.openEntryInto(stored, allocate));
      }
      const serialized = writer.finish(more, nextVersion, headVersion);
      assert.deepEqual(serialized.bytes, expected);
      assert.equal(serializeReadResponse(serialized), serialized.bytes, 'passed through by the serializer');
    }
  });

  it('writes a Read page entry by entry into one buffer exactly as ReadResponse.encode does, an entry taken back included', async () => {
    const codec = new StreamCodec('/s', new PayloadCodec(await loadZstd(), 1 << 20), undefined);
    const entry = fc.record({
      version: fc.oneof(fc.constantFrom(0n, 1n, 2n ** 53n), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })),
      // Before 1970 too: those take BinaryWriter's path into the same buffer.
      millis: fc.integer({ min: -5_000_000_000_000, max: 5_000_000_000_000 }),
      data: fc.oneof(
        fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
        fc.integer({ min: 1, max: 3000 }).map((times) => Buffer.from('ab'.repeat(times))),
      ),
      takenBack: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 12 }),
        fc.boolean(),
        fc.bigInt({ min: -1n, max: 2n ** 63n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
        // A first guess too small for the page as well: the buffer grows.
        fc.integer({ min: 0, max: 5000 }),
        (page, more, nextVersion, headVersion, expectedBytes) => {
          const writer = new ReadResponseWriter(expectedBytes);
          const kept: Entry[] = [];
          for (const { version, millis, data, takenBack } of page) {
            const recordedAt = new Date(millis);
            const stored = { version, recordedAt, payload: codec.entryPayload([{ ...events[1], data } as Event])(version) };
            writer.addEntry(version, recordedAt, (allocate) => codec.openEntryInto(stored, allocate));
            if (takenBack) writer.dropLast();
            else kept.push(codec.decodeEntry(stored));
          }
          const expected = Buffer.from(ReadResponse.encode({ entries: kept, more, nextVersion, headVersion }).finish());
          assert.deepEqual(writer.finish(more, nextVersion, headVersion).bytes, expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('batches entry messages into the bytes SubscribeResponse.encode makes of an EntryBatch, and leaves one entry alone', () => {
    const entries: Entry[] = [0n, 1n, 300n].map((version) => ({ version, events, recordedAt: new Date(1_764_000_000_000 + Number(version)) }));
    const batcher = new EntryBatcher(10);
    for (const entry of entries) {
      const message = encodeEntryMessage(entry);
      assert.ok(batcher.fits(message));
      batcher.add(message);
    }
    const batch = batcher.take();
    assert.ok(batch);
    assert.deepEqual(batch.bytes, Buffer.from(SubscribeResponse.encode({ message: { $case: 'entries', value: { entries } } }).finish()));
    assert.equal(batch.recordedAt, entries[0]?.recordedAt, 'a batch carries its oldest commit time');
    assert.equal(batcher.take(), undefined, 'taken: the batcher is empty');

    const alone = encodeEntryMessage(entries[2] as Entry);
    batcher.add(alone);
    assert.equal(batcher.take(), alone, 'one entry leaves as its own entry message');
  });

  it('batches at most maxEntries entries, and stops before BATCH_BYTES unless the batch is empty', () => {
    const small = encodeEntryMessage({ version: 1n, events, recordedAt: new Date(0) });
    const two = new EntryBatcher(2);
    two.add(small);
    assert.ok(two.fits(small));
    two.add(small);
    assert.equal(two.fits(small), false, 'two is the most');

    const big = new Encoded(Buffer.alloc(BATCH_BYTES - 10));
    const batcher = new EntryBatcher(1000);
    assert.ok(batcher.fits(big), 'an empty batch takes anything');
    batcher.add(big);
    assert.ok(batcher.fits(new Encoded(Buffer.alloc(10))));
    assert.equal(batcher.fits(new Encoded(Buffer.alloc(11))), false, 'over BATCH_BYTES');
  });

  it('passes encoded messages through the serializer and encodes the others', () => {
    const entry: Entry = { version: 7n, events, recordedAt: new Date(0) };
    const encoded = encodeEntryMessage(entry);
    assert.ok(encoded instanceof Encoded);
    assert.equal(serializeSubscribeResponse(encoded), encoded.bytes);
    const caughtUp: SubscribeResponse = { message: { $case: 'caughtUp', value: { version: 7n } } };
    assert.deepEqual(SubscribeResponse.decode(serializeSubscribeResponse(caughtUp)), caughtUp);
    assert.deepEqual(SubscribeResponse.decode(encoded.bytes), { message: { $case: 'entry', value: entry } });
  });
});
