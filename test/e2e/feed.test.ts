import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { FeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { generateKeyring } from '../../src/crypto/keyring';
import { recordFeed, type RecordingFeed } from '../helpers/feed-subscriber';
import { api, dataOf, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';

/** "stream@version" of each entry: what a consumer would key its work by. */
const labels = (entries: FeedEntry[]) => entries.map((entry) => `${entry.stream}@${entry.version}`);
const types = (entries: FeedEntry[]) => entries.map((entry) => entry.events.map((event) => event.type).join(','));

/** The whole feed of a subtree through ReadFeed, page by page. */
async function readWholeFeed(client: Api, stream: string, after = 0n, limit = 7, eventTypes: string[] = []): Promise<FeedEntry[]> {
  const entries: FeedEntry[] = [];
  let position = after;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await client.readFeed({ selector: { stream, eventTypes }, afterPosition: position, limit });
    entries.push(...page.entries);
    if (!page.more) return entries;
    assert.ok(page.nextAfterPosition > position || page.entries.length > 0, 'a page that says more moves on');
    position = page.nextAfterPosition;
  }
  throw new Error('ReadFeed never ended');
}

describe('the feed (SubscribeFeed, ReadFeed) over gRPC', function () {
  this.timeout(30_000);
  let eh: TestServer;
  let client: Api;
  const feeds: RecordingFeed[] = [];
  const follow = (...args: Parameters<typeof recordFeed> extends [unknown, ...infer R] ? R : never) => {
    const feed = recordFeed(eh.client, ...args);
    feeds.push(feed);
    return feed;
  };

  beforeEach(async () => {
    eh = await startTestServer({ heartbeatIntervalMs: 500 });
    client = api(eh.client);
  });
  afterEach(async () => {
    for (const feed of feeds.splice(0)) feed.cancel();
    await eh.stop();
  });

  it('delivers every stream of the tree in one order: catch-up, caught_up, then live, no gap and no duplicate', async () => {
    await client.createStream({ stream: '/shop/orders', createParents: true });
    await client.createStream({ stream: '/shop/payments' });
    for (let i = 0; i < 30; i++) {
      await client.append({ stream: i % 2 === 1 ? '/shop/orders' : '/shop/payments', events: [jsonEvent('happened', { i })] });
    }
    const feed = follow({ selector: { stream: '/' } });
    // Appends race the catch-up: some are read from the store, some arrive live.
    const racing = (async () => {
      for (let i = 30; i < 80; i++) {
        await client.append({ stream: i % 2 === 1 ? '/shop/orders' : '/shop/payments', events: [jsonEvent('happened', { i })] });
      }
    })();
    await feed.caughtUp;
    await racing;
    const expected = await readWholeFeed(client, '/');
    await feed.until((f) => f.entries.length >= expected.length, `${expected.length} entries`);
    assert.deepEqual(labels(feed.entries), labels(expected));
    const positions = feed.entries.map((entry) => entry.position);
    assert.ok(positions.every((position, i) => i === 0 || position > (positions[i - 1] ?? 0n)), 'positions strictly increase');
    // Every append is there, each once, in each stream's version order.
    const happened = feed.entries.filter((entry) => entry.events[0]?.type === 'happened').map((entry) => (dataOf(entry.events[0]!) as { i: number }).i);
    assert.deepEqual([...happened].sort((a, b) => a - b), Array.from({ length: 80 }, (_, i) => i));
    assert.ok(labels(feed.entries).includes('/shop@0') && labels(feed.entries).includes('/@1'), 'system events of the tree too');
  });

  it('follows a subtree, or one stream alone, and resumes after any position with exactly the rest', async () => {
    for (const stream of ['/a', '/a/x', '/ab', '/b']) await client.createStream({ stream });
    for (const stream of ['/a', '/a/x', '/ab', '/b', '/a/x']) await client.append({ stream, events: [jsonEvent('e', {})] });
    const subtree = await readWholeFeed(client, '/a');
    assert.deepEqual(labels(subtree), ['/a@0', '/a@1', '/a/x@0', '/a@2', '/a/x@1', '/a/x@2']);
    const alone = await client.readFeed({ selector: { stream: '/a', excludeDescendants: true } });
    assert.deepEqual(labels(alone.entries), ['/a@0', '/a@1', '/a@2']);

    for (const [index, entry] of subtree.entries()) {
      const feed = follow({ selector: { stream: '/a' }, afterPosition: entry.position });
      const caughtUp = await feed.caughtUp;
      assert.deepEqual(labels(feed.entries), labels(subtree.slice(index + 1)), `after ${entry.position}`);
      assert.equal(caughtUp, subtree[subtree.length - 1]?.position === entry.position ? caughtUp : caughtUp);
      assert.ok(caughtUp >= (subtree[subtree.length - 1]?.position ?? 0n), 'caught up at or past the last entry');
      feed.cancel();
    }
  });

  it('filters by event type (exact and prefix.*), delivering only the matching events, with checkpoints while it skips', async () => {
    await client.createStream({ stream: '/o' });
    await client.append({ stream: '/o', events: [jsonEvent('order.placed', {}), jsonEvent('audit', {}), jsonEvent('order.item.added', {})] });
    for (let i = 0; i < 12; i++) await client.append({ stream: '/o', events: [jsonEvent('noise', { i })] });
    await client.append({ stream: '/o', events: [jsonEvent('payment.taken', {})] });

    const feed = follow({ selector: { stream: '/', eventTypes: ['order.*', 'payment.taken'] }, checkpointEveryEntries: 5 });
    const caughtUpAt = await feed.caughtUp;
    assert.deepEqual(types(feed.entries), ['order.placed,order.item.added', 'payment.taken']);
    const checkpoints = feed.messages.filter((message) => message?.$case === 'checkpoint');
    assert.ok(checkpoints.length >= 2, `checkpoints while 12 entries were skipped: ${checkpoints.length}`);

    // Live: skipped entries still move the position on, by checkpoints.
    for (let i = 0; i < 11; i++) await client.append({ stream: '/o', events: [jsonEvent('noise', { i })] });
    await feed.until(
      (f) => f.messages.some((message) => message?.$case === 'checkpoint' && message.value.position > caughtUpAt),
      'a live checkpoint',
    );
    await client.append({ stream: '/o', events: [jsonEvent('order.shipped', {})] });
    await feed.until((f) => f.entries.length === 3, 'the live match');
    assert.deepEqual(types(feed.entries).slice(-1), ['order.shipped']);
    // Positions only ever grow, across entries and checkpoints alike.
    const told = feed.messages.flatMap((message) =>
      message?.$case === 'entry' ? [message.value.position] : message?.$case === 'checkpoint' || message?.$case === 'caughtUp' ? [message.value.position] : [],
    );
    assert.ok(told.every((position, i) => i === 0 || position >= (told[i - 1] ?? 0n)), `positions told in order: ${told.join(',')}`);

    const read = await readWholeFeed(client, '/', 0n, 100, ['order.*', 'payment.taken']);
    assert.deepEqual(types(read), ['order.placed,order.item.added', 'payment.taken', 'order.shipped']);
  });

  it('sends no batch to a client that does not ask, or asks for 1 entry per message', async () => {
    await client.createStream({ stream: '/u' });
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.append({ stream: '/u', events: [jsonEvent('e', { i })] })));
    for (const maxEntriesPerMessage of [undefined, 0, 1]) {
      const feed = follow({ selector: { stream: '/u' }, ...(maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage } : {}) });
      await feed.caughtUp;
      // Live entries queued together, too.
      await Promise.all(Array.from({ length: 50 }, (_, i) => client.append({ stream: '/u', events: [jsonEvent('live', { i })] })));
      const expected = (await readWholeFeed(client, '/u', 0n, 1000)).length;
      await feed.until((f) => f.entries.length === expected, `${expected} entries`);
      assert.equal(feed.messages.filter((message) => message?.$case === 'entries').length, 0, `max_entries_per_message ${maxEntriesPerMessage}`);
      feed.cancel();
    }
  });

  it('sends entries in batches to a client that asks: the same entries, checkpoints and positions as one by one, across catch-up and live', async () => {
    await client.createStream({ stream: '/b/x', createParents: true });
    await client.createStream({ stream: '/b/y' });
    const type = (i: number) => (i % 3 === 0 ? 'noise' : 'order.placed');
    for (let i = 0; i < 60; i++) await client.append({ stream: i % 2 === 0 ? '/b/x' : '/b/y', events: [jsonEvent(type(i), { i })] });
    const selector = { stream: '/b', eventTypes: ['order.*'] };
    const one = follow({ selector, checkpointEveryEntries: 2 });
    const batched = follow({ selector, checkpointEveryEntries: 2, maxEntriesPerMessage: 1000 });
    const small = follow({ selector, checkpointEveryEntries: 2, maxEntriesPerMessage: 4 });
    const all = [one, batched, small];
    const caughtUp = await Promise.all(all.map((feed) => feed.caughtUp));
    assert.deepEqual(caughtUp, [caughtUp[0], caughtUp[0], caughtUp[0]], 'caught up at the same position');
    // What each was told before caught_up: entries, batches and checkpoints alike.
    const told = (feed: RecordingFeed) =>
      feed.messages.flatMap((message) => {
        switch (message?.$case) {
          case 'entry':
            return [`entry ${message.value.position}`];
          case 'entries':
            return message.value.entries.map((entry) => `entry ${entry.position}`);
          case 'checkpoint':
          case 'caughtUp':
            return [`${message.$case} ${message.value.position}`];
          default:
            return [];
        }
      });
    assert.deepEqual(told(batched), told(one), 'the same entries and checkpoints, in the same order, in catch-up');
    assert.deepEqual(told(small), told(one));

    // Live: appends in concurrent groups, so that entries queue together.
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 30 }, (_, j) => client.append({ stream: j % 2 === 0 ? '/b/x' : '/b/y', events: [jsonEvent(type(j), { round, j })] })),
      );
    }
    const expected = await readWholeFeed(client, '/b', 0n, 100, ['order.*']);
    for (const feed of all) await feed.until((f) => f.entries.length >= expected.length, `${expected.length} entries`);
    for (const feed of all) {
      assert.deepEqual(feed.entries, expected, 'every entry whole, once, in position order');
      const positions = told(feed).map((item) => BigInt(item.split(' ')[1] ?? '0'));
      assert.ok(positions.every((position, i) => i === 0 || position >= (positions[i - 1] ?? 0n)), `positions told in order: ${positions.join(',')}`);
    }
    const batches = (feed: RecordingFeed) => feed.messages.flatMap((message) => (message?.$case === 'entries' ? [message.value.entries.length] : []));
    assert.equal(batches(one).length, 0, 'none unless asked');
    assert.ok(batches(batched).length > 0, 'batches when asked');
    assert.ok(batches(small).length > 0 && Math.max(...batches(small)) <= 4, `at most 4 entries a batch: ${batches(small).join(',')}`);
  });

  it('sends a checkpoint after the interval while every live entry is skipped', async () => {
    await client.createStream({ stream: '/quiet' });
    const feed = follow({ selector: { stream: '/', eventTypes: ['never'] }, checkpointIntervalMs: 200, checkpointEveryEntries: 1_000_000 });
    const caughtUpAt = await feed.caughtUp;
    await client.append({ stream: '/quiet', events: [jsonEvent('noise', {})] });
    await feed.until(
      (f) => f.messages.some((message) => message?.$case === 'checkpoint' && message.value.position > caughtUpAt),
      'a checkpoint past the skipped entry',
      5_000,
    );
    assert.deepEqual(feed.entries, []);
  });

  it('starts from now', async () => {
    await client.createStream({ stream: '/n' });
    await client.append({ stream: '/n', events: [jsonEvent('old', {})] });
    const feed = follow({ selector: { stream: '/n' }, fromNow: true });
    await feed.caughtUp;
    assert.equal(feed.entries.length, 0);
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.append({ stream: '/n', events: [jsonEvent('new', { i })] })));
    await feed.until((f) => f.entries.length === 200, '200 live entries');
    assert.deepEqual(
      feed.entries.map((entry) => entry.version),
      Array.from({ length: 200 }, (_, i) => BigInt(i + 2)),
    );
  });

  for (const maxEntriesPerMessage of [undefined, 1000]) {
  it(`keeps a consumer that stops reading bounded: past its buffer it reads what it missed from the store (${maxEntriesPerMessage === undefined ? 'one entry per message' : 'batches'})`, async () => {
    const small = await startTestServer({ subscriberBufferEntries: 8 });
    try {
      const smallClient = api(small.client);
      await smallClient.createStream({ stream: '/slow' });
      const feed = recordFeed(small.client, { selector: { stream: '/slow' }, ...(maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage } : {}) });
      feeds.push(feed);
      await feed.caughtUp;
      feed.pause();
      const payload = 'x'.repeat(4000);
      for (let i = 0; i < 10; i++) {
        await Promise.all(Array.from({ length: 30 }, (_, j) => smallClient.append({ stream: '/slow', events: [jsonEvent('big', { i, j, payload })] })));
      }
      feed.resume();
      await feed.until((f) => f.entries.length === 301, '301 entries');
      assert.deepEqual(
        feed.entries.map((entry) => entry.version),
        Array.from({ length: 301 }, (_, i) => BigInt(i)),
      );
    } finally {
      for (const feed of feeds.splice(0)) feed.cancel();
      await small.stop();
    }
  });
  }

  it('skips the entries of a shredded stream, stored and live, and delivers the others (encryption at rest)', async () => {
    const encrypted = await startTestServer({ keyring: JSON.stringify(generateKeyring('kek-1')), heartbeatIntervalMs: 300 });
    try {
      const writer = api(encrypted.client);
      for (const stream of ['/t/kept', '/t/gone']) {
        await writer.createStream({ stream, createParents: true });
        await writer.append({ stream, events: [jsonEvent('secret', { stream })] });
      }
      const live = recordFeed(encrypted.client, { selector: { stream: '/t' } });
      feeds.push(live);
      await live.caughtUp;
      assert.ok(live.entries.some((entry) => entry.stream === '/t/gone'), 'readable before the shred');
      await writer.shredStream({ stream: '/t/gone' });

      const after = recordFeed(encrypted.client, { selector: { stream: '/t' } });
      feeds.push(after);
      await after.caughtUp;
      assert.deepEqual(
        [...new Set(after.entries.map((entry) => entry.stream))].sort(),
        ['/t', '/t/kept'],
        'the shredded stream\'s entries are skipped, not an error',
      );
      const page = await writer.readFeed({ selector: { stream: '/t' } });
      assert.ok(page.entries.every((entry) => entry.stream !== '/t/gone'));
      // The open feed goes on with the other streams, and sends heartbeats while idle.
      await writer.append({ stream: '/t/kept', events: [jsonEvent('after', {})] });
      await live.until((f) => f.entries.some((entry) => entry.events[0]?.type === 'after'), 'the live entry');
      const heartbeats = () => live.messages.filter((message) => message?.$case === 'heartbeat').length;
      const before = heartbeats();
      await live.until(() => heartbeats() > before, 'a heartbeat while idle', 3000);
    } finally {
      for (const feed of feeds.splice(0)) feed.cancel();
      await encrypted.stop();
    }
  });

  it('never holds the system streams, even in the feed of "/"', async () => {
    const page = await client.readFeed({ selector: { stream: '/' }, limit: 1000 });
    assert.ok(page.entries.every((entry) => !entry.stream.startsWith('/$')));
    assert.ok(page.headPosition >= (page.entries[page.entries.length - 1]?.position ?? 0n));
  });

  it('refuses bad requests naming the field, and a missing stream with NOT_FOUND', async () => {
    const bad = async (request: Parameters<Api['readFeed']>[0], field: string) => {
      const details = await rejection(client.readFeed(request), status.INVALID_ARGUMENT);
      assert.ok(details.violations.some((violation) => violation.field === field), `${field}: ${JSON.stringify(details.violations)}`);
    };
    await bad({}, 'selector');
    await bad({ selector: { stream: 'relative' } }, 'selector.stream');
    await bad({ selector: { stream: '/$/auth' } }, 'selector.stream');
    await bad({ selector: { stream: '/', eventTypes: ['a.*.b'] } }, 'selector.event_types[0]');
    await bad({ selector: { stream: '/', eventTypes: ['ok', '.*'] } }, 'selector.event_types[1]');
    await bad({ selector: { stream: '/' }, afterPosition: -1n }, 'after_position');
    await bad({ selector: { stream: '/' }, limit: 5000 }, 'limit');
    await rejection(client.readFeed({ selector: { stream: '/missing' } }), status.NOT_FOUND);

    const missing = follow({ selector: { stream: '/missing' } });
    assert.equal((await missing.failed as { code?: number }).code, status.NOT_FOUND);
    const tooOften = follow({ selector: { stream: '/' }, checkpointIntervalMs: 10 });
    assert.equal((await tooOften.failed as { code?: number }).code, status.INVALID_ARGUMENT);
  });
});
