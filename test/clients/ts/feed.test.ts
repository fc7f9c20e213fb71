import assert from 'node:assert/strict';
import fs from 'node:fs';
import { credentials } from '@grpc/grpc-js';
import {
  connect,
  eventData,
  follow,
  jsonEvent,
  memoryPositionStore,
  SubtreeReader,
  type EventHorizon,
  type FeedItem,
  type ReconnectInfo,
  type SubtreeModel,
} from '../../../clients/ts/src';
import { EventHorizonClient } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server';

const FAST = { reconnect: { initialMs: 50, maxMs: 200 } };
const READY = { waitForReady: true };

/** Pulls items until `done` holds, or fails after `timeoutMs`. */
async function collectUntil(items: AsyncIterator<FeedItem>, into: FeedItem[], done: (items: FeedItem[]) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!done(into)) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      items.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out; collected ${into.length} items`)), Math.max(1, deadline - Date.now()));
      }),
    ]).finally(() => clearTimeout(timer));
    if (next.done) throw new Error('the feed ended');
    into.push(next.value);
  }
}

const labels = (items: FeedItem[]) => items.flatMap((item) => (item.kind === 'entry' ? [`${item.entry.stream}@${item.entry.version}`] : []));

describe('TypeScript client: the feed (follow, SubtreeReader)', function () {
  this.timeout(40_000);

  it('follows a subtree across a server restart, with no gap and no duplicate', async () => {
    const dataDir = tempDir();
    let server: TestServer = await startTestServer({ dataDir });
    const port = server.server.port;
    const writer: { client: EventHorizon } = { client: connect(server.address, FAST) };
    const reader = connect(server.address, FAST);
    const reconnects: ReconnectInfo[] = [];
    const items = reader.follow('/shop', { backoff: { initialMs: 20, maxMs: 200 }, onReconnect: (info) => reconnects.push(info) });
    const seen: FeedItem[] = [];
    try {
      await writer.client.createStream({ stream: '/shop/a', createParents: true });
      await writer.client.createStream({ stream: '/shop/b' });
      await collectUntil(items, seen, (s) => s.some((item) => item.kind === 'caughtUp'));
      for (let n = 1; n <= 4; n += 1) await writer.client.append({ stream: n % 2 === 0 ? '/shop/a' : '/shop/b', events: [jsonEvent('n', { n })] }, READY);
      await collectUntil(items, seen, (s) => labels(s).length === 9);

      const caughtUps = (s: FeedItem[]) => s.filter((item) => item.kind === 'caughtUp').length;
      const pulling = collectUntil(items, seen, (s) => labels(s).length === 13 && caughtUps(s) >= 2, 25_000);
      writer.client.close();
      await server.stop();
      server = await startTestServer({ dataDir, listen: `127.0.0.1:${port}` });
      writer.client = connect(server.address, FAST);
      for (let n = 5; n <= 8; n += 1) await writer.client.append({ stream: n % 2 === 0 ? '/shop/a' : '/shop/b', events: [jsonEvent('n', { n })] }, READY);
      await pulling;

      const numbers = seen.flatMap((item) => (item.kind === 'entry' && item.entry.events[0]?.type === 'n' ? [eventData<{ n: number }>(item.entry.events[0]).n] : []));
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
      const positions = seen.flatMap((item) => (item.kind === 'entry' ? [item.entry.position] : []));
      assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : 1)));
      assert.equal(new Set(positions).size, positions.length);
      assert.ok(reconnects.length >= 1);
      assert.equal(reconnects[0]?.error?.name, 'UnavailableError');
    } finally {
      await items.return();
      writer.client.close();
      reader.close();
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('asks for batches by default and yields the same items, one entry at a time, as a follower of one entry per message, across catch-up and live', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    const raw = new EventHorizonClient(server.address, credentials.createInsecure());
    const asked: Array<number | undefined> = [];
    const open: Parameters<typeof follow>[0] = (request) => {
      asked.push(request.maxEntriesPerMessage);
      return raw.subscribeFeed(request);
    };
    const batched = follow(open, '/f');
    const single = follow(open, '/f', { maxEntriesPerMessage: 1 });
    const got = { batched: [] as FeedItem[], single: [] as FeedItem[] };
    try {
      await client.createStream({ stream: '/f/a', createParents: true });
      await client.createStream({ stream: '/f/b' });
      await Promise.all(Array.from({ length: 40 }, (_, n) => client.append({ stream: n % 2 === 0 ? '/f/a' : '/f/b', events: [jsonEvent('n', { n })] })));
      const caughtUp = (items: FeedItem[]) => items.some((item) => item.kind === 'caughtUp');
      await collectUntil(batched, got.batched, caughtUp);
      await collectUntil(single, got.single, caughtUp);
      assert.deepEqual(asked, [1000, 1], 'follow asks for 1,000 entries per message unless told otherwise');
      for (let round = 0; round < 3; round++) {
        await Promise.all(Array.from({ length: 20 }, (_, n) => client.append({ stream: n % 2 === 0 ? '/f/a' : '/f/b', events: [jsonEvent('live', { round, n })] })));
      }
      const total = (await client.readFeed({ selector: { stream: '/f' }, limit: 1000 })).entries.length;
      await collectUntil(batched, got.batched, (items) => labels(items).length === total);
      await collectUntil(single, got.single, (items) => labels(items).length === total);
      assert.deepEqual(got.batched, got.single);
      const positions = labels(got.batched).length === total ? got.batched.flatMap((item) => (item.kind === 'entry' ? [item.entry.position] : [])) : [];
      assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : 1)));
      assert.equal(new Set(positions).size, total);
    } finally {
      await batched.return();
      await single.return();
      raw.close();
      client.close();
      await server.stop();
    }
  });

  it('keeps a read model over many streams with its position, and resumes after a restart exactly where it was', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    /** Order totals per stream, from "order.placed" events only. */
    const totals: SubtreeModel<Record<string, number>> = {
      handles: ['order.*'],
      initialState: () => ({}),
      apply(state, event, entry) {
        if (event.type !== 'order.placed') return state;
        const { amount } = eventData<{ amount: number }>(event);
        return { ...state, [entry.stream]: (state[entry.stream] ?? 0) + amount };
      },
    };
    const positions = memoryPositionStore<Record<string, number>>();
    try {
      for (const tenant of ['acme', 'globex']) await client.createStream({ stream: `/tenants/${tenant}/orders`, createParents: true });
      const place = (tenant: string, amount: number) =>
        client.append({ stream: `/tenants/${tenant}/orders`, events: [jsonEvent('order.placed', { amount }), jsonEvent('audit', {})] });
      await place('acme', 10);
      await place('globex', 5);

      const first = new SubtreeReader(client, '/tenants', totals, { store: positions, saveEvery: 1 });
      await first.start();
      assert.deepEqual(first.state, { '/tenants/acme/orders': 10, '/tenants/globex/orders': 5 });
      await place('acme', 7);
      await first.waitForPosition((await client.readFeed({ selector: { stream: '/tenants' }, afterPosition: first.position })).headPosition);
      assert.deepEqual(first.state, { '/tenants/acme/orders': 17, '/tenants/globex/orders': 5 });
      await first.stop();
      assert.equal(positions.saved?.position, first.position);

      // While it is down: more orders. The next process folds only those.
      await place('globex', 1);
      const second = new SubtreeReader(client, '/tenants', totals, { store: positions });
      await second.start();
      assert.deepEqual(second.state, { '/tenants/acme/orders': 17, '/tenants/globex/orders': 6 });
      await second.stop();
    } finally {
      client.close();
      await server.stop();
    }
  });
});
