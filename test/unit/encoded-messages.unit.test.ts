import assert from 'node:assert/strict';
import { SubscribeResponse, type Entry, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import {
  BATCH_BYTES,
  Encoded,
  EntryBatcher,
  encodeEntryMessage,
  encodeStoredEntryMessage,
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
