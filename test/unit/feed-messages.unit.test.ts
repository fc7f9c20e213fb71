import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Entry, SubscribeFeedResponse, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { OpenedFeedEntry } from '../../src/feed/feed-messages';

describe('feed entry messages', () => {
  it('encodes a stored feed entry exactly as SubscribeFeedResponse.encode does, whatever its version, position, time, stream and events', () => {
    const event = fc.record({
      id: fc.string({ maxLength: 40 }),
      type: fc.string({ minLength: 1, maxLength: 20 }),
      data: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      contentType: fc.constantFrom('application/json', 'application/octet-stream'),
      metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
      occurredAt: fc.constant(undefined),
    });
    const bigints = fc.oneof(fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }));
    fc.assert(
      fc.property(
        bigints,
        bigints,
        // Times from before 1970 (negative fields, BinaryWriter's path) to past 2100, whole seconds included.
        fc.oneof(fc.integer({ min: -5_000_000_000_000, max: 5_000_000_000_000 }), fc.integer({ min: -5_000_000, max: 5_000_000 }).map((s) => s * 1000)),
        // Paths of several bytes per character too: the stream's length is its UTF-8 bytes.
        fc.oneof(fc.constantFrom('/', '/orders/42', '/é/日本/🙂'), fc.string({ minLength: 1, maxLength: 200 }).map((s) => `/${s}`)),
        fc.array(event, { maxLength: 4 }),
        (version, position, millis, stream, events: Event[]) => {
          const recordedAt = new Date(millis);
          const opened = Entry.encode({ version: 0n, events, recordedAt: undefined }).finish();
          const entry = new OpenedFeedEntry({ stream, position, version, recordedAt, payload: new Uint8Array() }, opened);
          const expected = SubscribeFeedResponse.encode({ message: { $case: 'entry', value: { version, events, recordedAt, stream, position } } }).finish();
          assert.deepEqual(entry.wholeMessage().bytes, Buffer.from(expected));
          assert.equal(entry.wholeMessage().recordedAt, recordedAt);
        },
      ),
      { numRuns: 500 },
    );
  });
});
