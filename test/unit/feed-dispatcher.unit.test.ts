import assert from 'node:assert/strict';
import pino from 'pino';
import { KeyUnavailableError } from '../../src/core/errors';
import { FeedDispatcher, type FeedConsumer } from '../../src/feed/feed-dispatcher';
import { FeedFilter } from '../../src/feed/feed-filter';
import { OpenedFeedEntry } from '../../src/feed/feed-messages';
import { Heartbeats, LiveFeed } from '../../src/realtime/hub';
import type { FeedEntry, FeedPage } from '../../src/store/port';
import { eventually } from '../helpers/eventually';

const at = new Date(1_700_000_000_000);
const entry = (position: bigint, stream: string): FeedEntry => ({ position, stream, version: position, recordedAt: at, payload: new Uint8Array() });

function consumerOf(path: string): FeedConsumer {
  return {
    filter: new FeedFilter({ subtree: { path, descendants: true }, eventTypes: [] }, undefined),
    queue: new LiveFeed('feed', 100, new Heartbeats()),
    checkpointEvery: 1000,
    skipped: 0,
  };
}

/**
 * The feed's one reader per process, with a store and codecs faked: what it gives each consumer
 * when a stream's entries cannot be opened here (a key-encryption key missing from this server's
 * keyring), where before it retried the page for ever and held every consumer back.
 */
describe('FeedDispatcher: a stream it cannot open', () => {
  it('ends the consumers that want that stream with the error, and goes on for the others', async () => {
    const pages: FeedPage[] = [{ entries: [entry(1n, '/a/x'), entry(2n, '/b'), entry(3n, '/a/y')], reached: 3n, more: false }];
    const refused = new KeyUnavailableError('key-encryption key kek-9 is not in this keyring');
    // The page is there once both consumers have joined (a consumer joins before its own catch-up).
    let joined = false;
    const dispatcher = new FeedDispatcher({
      readPage: (after) => Promise.resolve((joined && pages.shift()) || { entries: [], reached: after, more: false }),
      head: () => Promise.resolve(0n),
      open: (entries) => {
        const unreadable = new Map<string, unknown>();
        const opened: OpenedFeedEntry[] = [];
        for (const stored of entries) {
          if (stored.stream === '/b') unreadable.set('/b', refused);
          else opened.push(new OpenedFeedEntry(stored, new Uint8Array()));
        }
        return Promise.resolve({ opened, unreadable });
      },
      logger: pino({ level: 'silent' }),
    });
    const everything = consumerOf('/');
    const onlyA = consumerOf('/a');
    await dispatcher.join(everything);
    await dispatcher.join(onlyA);
    joined = true;
    dispatcher.committed();

    await eventually(() => assert.equal(dispatcher.reached, 3n), 2000, () => `reached ${dispatcher.reached}`);
    assert.equal(everything.queue.failure(), refused, 'the consumer of "/" ends with the stream\'s error');
    const given: bigint[] = [];
    for (let item = onlyA.queue.shift(); item; item = onlyA.queue.shift()) given.push(item.version);
    assert.deepEqual(given, [1n, 3n], 'the consumer of /a gets its entries');
    assert.equal(onlyA.queue.failure(), undefined);
    dispatcher.stop();
  });
});
