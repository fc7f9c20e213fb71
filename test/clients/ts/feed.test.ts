import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  connect,
  eventData,
  jsonEvent,
  memoryPositionStore,
  SubtreeReader,
  type EventHorizon,
  type FeedItem,
  type ReconnectInfo,
  type SubtreeModel,
} from '../../../clients/ts/src';
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
