import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SubscribeFeedResponse, type FeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Encoded } from '../../src/codec/encoded-messages';
import { DEFAULT_CONFIG } from '../../src/config/config';
import type { FeedSelection } from '../../src/feed/feed-filter';
import type { OutgoingFeedMessage } from '../../src/feed/feed-messages';
import { Lifetime } from '../../src/realtime/lifetime';
import { openEventStore, type OpenedEventStore } from '../../src/wiring';

const STREAMS = ['/a', '/a/b', '/a/b/c', '/ab', '/z', '/z/y'];
const TYPES = ['x.one', 'x.two', 'xy', 'y.one', 'z', 'z.z'];
const SUBTREES = ['/', '/a', '/a/b', '/ab', '/z', '/z/y'];
const FILTERS = ['x.*', 'y.one', 'z', '$stream.started', 'x.two'];

/** What a feed should hold, computed here from the whole feed, independently of the server's filter. */
function expected(all: FeedEntry[], selection: FeedSelection, after: bigint): string[] {
  const { path, descendants } = selection.subtree;
  const inSubtree = (stream: string) => stream === path || (descendants && (path === '/' || stream.startsWith(`${path}/`)));
  const wanted = (type: string) =>
    selection.eventTypes.length === 0 || selection.eventTypes.some((filter) => (filter.endsWith('.*') ? type.startsWith(filter.slice(0, -1)) : type === filter));
  return all
    .filter((entry) => entry.position > after && inSubtree(entry.stream))
    .map((entry) => ({ entry, types: entry.events.map((event) => event.type).filter(wanted) }))
    .filter(({ types }) => types.length > 0)
    .map(({ entry, types }) => `${entry.position} ${entry.stream}@${entry.version} ${types.join(',')}`);
}

const label = (entry: FeedEntry) => `${entry.position} ${entry.stream}@${entry.version} ${entry.events.map((event) => event.type).join(',')}`;

function decode(message: OutgoingFeedMessage): SubscribeFeedResponse {
  return message instanceof Encoded ? SubscribeFeedResponse.decode(message.bytes) : message;
}

/**
 * What SubscribeFeed delivers equals what filtering the whole feed gives, for random trees,
 * event types, filters and start positions, with appends before the subscription (catch-up) and
 * after it caught up (live), one entry per message or in batches (max_entries_per_message).
 */
describe('the feed: filters (property)', function () {
  this.timeout(120_000);

  it('SubscribeFeed delivers exactly the filtered feed, from any start, caught up and live', async () => {
    const append = fc.record({ stream: fc.constantFrom(...STREAMS), types: fc.subarray(TYPES, { minLength: 1 }) });
    await fc.assert(
      fc.asyncProperty(
        fc.array(append, { minLength: 1, maxLength: 30 }),
        fc.array(append, { maxLength: 15 }),
        fc.constantFrom(...SUBTREES),
        fc.boolean(),
        fc.subarray(FILTERS),
        fc.nat(),
        fc.constantFrom(undefined, 2, 1000),
        async (before, live, path, descendants, eventTypes, startAt, maxEntriesPerMessage) => {
          const opened: OpenedEventStore = await openEventStore({ ...DEFAULT_CONFIG, dataDir: ':memory:' });
          const lifetime = new Lifetime();
          try {
            const { core } = opened;
            for (const stream of STREAMS) await core.createStream(stream, [], { requestId: undefined, createParents: true }).catch(() => undefined);
            const write = async ({ stream, types }: { stream: string; types: string[] }) =>
              core.append(stream, types.map((type, i) => ({ id: `e${i}`, type, data: Buffer.from('{}'), contentType: 'application/json', metadata: {}, occurredAt: undefined })), undefined, undefined);
            for (const entry of before) await write(entry);

            const whole = await core.feed.read({ subtree: { path: '/', descendants: true }, eventTypes: [] }, 0n, 1000, undefined);
            const after = startAt % (whole.entries.length + 1) === 0 ? 0n : (whole.entries[(startAt % (whole.entries.length + 1)) - 1]?.position ?? 0n);
            const selection: FeedSelection = { subtree: { path, descendants }, eventTypes };
            const delivered: FeedEntry[] = [];
            let caughtUp = false;
            const messages = core.feed
              .subscribe(selection, {
                after, checkpointEvery: 3, checkpointIntervalMs: 60_000, mayRead: undefined, lifetime,
                ...(maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage } : {}),
              })
              [Symbol.asyncIterator]();
            /** Every position told (entries, checkpoints, caught-up): never backwards. */
            const told: bigint[] = [];

            const pullUntil = async (done: () => boolean) => {
              while (!done()) {
                let timer: NodeJS.Timeout | undefined;
                const next = await Promise.race([
                  messages.next(),
                  new Promise<never>((_, reject) => {
                    timer = setTimeout(() => reject(new Error(`stuck after ${delivered.map(label).join(' | ')}`)), 5000);
                  }),
                ]).finally(() => clearTimeout(timer));
                if (next.done) throw new Error('the feed ended');
                const message = decode(next.value).message;
                if (message?.$case === 'entry') delivered.push(message.value);
                if (message?.$case === 'entries') {
                  assert.ok(maxEntriesPerMessage !== undefined && message.value.entries.length <= maxEntriesPerMessage, 'a batch only when asked, within the size asked');
                  delivered.push(...message.value.entries);
                }
                if (message?.$case === 'caughtUp') caughtUp = true;
                if (message?.$case === 'entry') told.push(message.value.position);
                if (message?.$case === 'entries') told.push(...message.value.entries.map((entry) => entry.position));
                if (message?.$case === 'checkpoint' || message?.$case === 'caughtUp') told.push(message.value.position);
                assert.ok(told.every((position, i) => i === 0 || position >= (told[i - 1] ?? 0n)), `positions told in order: ${told.join(',')}`);
              }
            };
            await pullUntil(() => caughtUp);
            for (const entry of live) await write(entry);

            const all = (await core.feed.read({ subtree: { path: '/', descendants: true }, eventTypes: [] }, 0n, 1000, undefined)).entries;
            const want = expected(all, selection, after);
            // Live entries arrive through the dispatcher: pulled until as many as expected came
            // (a missing one fails the pull after 5 s, naming what did come).
            await pullUntil(() => delivered.length >= want.length);
            assert.deepEqual(delivered.map(label), want);
          } finally {
            lifetime.end();
            opened.feed.stop();
            await opened.store.close();
          }
        },
      ),
      { numRuns: 40, seed: 1501, endOnFailure: true },
    );
  });
});
