import assert from 'node:assert/strict';
import { Entry, SubscribeResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { encodeMessage } from '../../src/codec/message-writer';

/** An entry of one event whose data is `size` bytes of `fill`. */
function entry(size: number, fill: number): Entry {
  return Entry.fromPartial({
    version: 7n,
    events: [{ id: `id-${size}`, type: 'order-placed', contentType: 'application/json', data: Buffer.alloc(size, fill) }],
  });
}

describe('encodeMessage: one writer shared by every encode', () => {
  it('writes the bytes a writer of its own writes, message after message, small and large', () => {
    // Growing, shrinking, past the size at which the writer is replaced, and back.
    for (const [index, size] of [300, 10, 5_000, 40, 200_000, 300, 0].entries()) {
      const message = entry(size, index);
      assert.deepEqual(encodeMessage(Entry, message), Buffer.from(Entry.encode(message).finish()), `message ${index} (${size} bytes)`);
    }
  });

  it('hands out bytes that later encodes do not overwrite', () => {
    const first = encodeMessage(Entry, entry(300, 1));
    const copy = Buffer.from(first);
    for (let i = 0; i < 10; i++) encodeMessage(Entry, entry(300, 2 + i));
    assert.deepEqual(first, copy);
  });

  it('starts afresh after an encode that failed halfway', () => {
    // A version that is not an integer fails inside the writer, after the tag of the entry holding it.
    const broken = { message: { $case: 'entry', value: { ...entry(300, 3), version: 1.5 as unknown as bigint } } } as SubscribeResponse;
    assert.throws(() => encodeMessage(SubscribeResponse, broken));
    const message = entry(20, 4);
    assert.deepEqual(encodeMessage(Entry, message), Buffer.from(Entry.encode(message).finish()));
  });
});
