import assert from 'node:assert/strict';
import { connect, eventData, jsonEvent, type EventHorizon, type ReconnectInfo, type SubscriptionItem } from '../../../clients/ts/src';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server';

/** Reconnect quickly: these tests restart servers and should not wait for grpc-js's default pace. */
const FAST = { reconnect: { initialMs: 50, maxMs: 200 } };
/** Appends wait for the restarted server instead of failing while the channel reconnects. */
const READY = { waitForReady: true };

/** Pulls items from an iterator until `done` says enough, or fails after `timeoutMs`. */
async function collectUntil(
  items: AsyncIterator<SubscriptionItem>,
  into: SubscriptionItem[],
  done: (collected: SubscriptionItem[]) => boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done(into)) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new Error(`timed out; collected ${JSON.stringify(summary(into))}`);
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      items.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out; collected ${JSON.stringify(summary(into))}`)), remaining);
      }),
    ]).finally(() => clearTimeout(timer));
    if (next.done) throw new Error('the subscription ended');
    into.push(next.value);
  }
}

function summary(items: SubscriptionItem[]): string[] {
  return items.map((item) => (item.kind === 'entry' ? `v${item.entry.version}` : `caughtUp@${item.version}`));
}

function entryVersions(items: SubscriptionItem[]): bigint[] {
  return items.flatMap((item) => (item.kind === 'entry' ? [item.entry.version] : []));
}

describe('TypeScript client: subscribe', () => {
  it('says caughtUp at fromVersion - 1 when nothing was delivered: resuming from version + 1 goes on where it stands', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    try {
      await client.createStream({ stream: '/idle' });
      for (let n = 1; n <= 3; n += 1) await client.append({ stream: '/idle', events: [jsonEvent('n', { n })] });
      for (const [fromVersion, expected] of [
        [4n, ['caughtUp@3']],
        [7n, ['caughtUp@6']],
        [3n, ['v3', 'caughtUp@3']],
      ] as const) {
        const items = client.subscribe('/idle', { fromVersion });
        const seen: SubscriptionItem[] = [];
        await collectUntil(items, seen, (s) => s.some((item) => item.kind === 'caughtUp'));
        assert.deepEqual(summary(seen), expected, `from ${fromVersion}`);
        await items.return();
      }
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('delivers stored entries, then caughtUp, then live entries, from fromVersion', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    try {
      await client.createStream({ stream: '/live' });
      for (let n = 1; n <= 3; n += 1) await client.append({ stream: '/live', events: [jsonEvent('n', { n })] });
      const items = client.subscribe('/live', { fromVersion: 2n });
      const seen: SubscriptionItem[] = [];
      await collectUntil(items, seen, (s) => s.some((item) => item.kind === 'caughtUp'));
      assert.deepEqual(summary(seen), ['v2', 'v3', 'caughtUp@3']);
      await client.append({ stream: '/live', events: [jsonEvent('n', { n: 4 })] });
      await collectUntil(items, seen, (s) => s.length === 4);
      const last = seen[3];
      assert.ok(last?.kind === 'entry');
      assert.deepEqual(eventData(last.entry.events[0] ?? { data: Buffer.from('null') }), { n: 4 });
      await items.return();
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('resumes after the server restarts mid-subscription, with no gap and no duplicate', async () => {
    const dataDir = tempDir();
    let server: TestServer = await startTestServer({ dataDir });
    const port = server.server.port;
    const writer: { client: EventHorizon } = { client: connect(server.address, FAST) };
    const reader = connect(server.address, FAST);
    const reconnects: ReconnectInfo[] = [];
    const items = reader.subscribe('/orders', {
      backoff: { initialMs: 20, maxMs: 200 },
      onReconnect: (info) => reconnects.push(info),
    });
    const seen: SubscriptionItem[] = [];
    try {
      await writer.client.createStream({ stream: '/orders' });
      for (let n = 1; n <= 3; n += 1) await writer.client.append({ stream: '/orders', events: [jsonEvent('placed', { n })] }, READY);
      await collectUntil(items, seen, (s) => s.some((item) => item.kind === 'caughtUp'));
      // Live entries before the restart.
      for (let n = 4; n <= 5; n += 1) await writer.client.append({ stream: '/orders', events: [jsonEvent('placed', { n })] }, READY);
      await collectUntil(items, seen, (s) => entryVersions(s).includes(5n));

      // Restart on the same port and data folder; the subscriber keeps iterating meanwhile.
      const caughtUps = (s: SubscriptionItem[]) => s.filter((item) => item.kind === 'caughtUp').length;
      // Done when all entries arrived and the resumed subscription has caught up again.
      const pulling = collectUntil(items, seen, (s) => entryVersions(s).includes(9n) && caughtUps(s) >= 2, 20_000);
      writer.client.close();
      await server.stop();
      server = await startTestServer({ dataDir, listen: `127.0.0.1:${port}` });
      writer.client = connect(server.address, FAST);
      for (let n = 6; n <= 9; n += 1) await writer.client.append({ stream: '/orders', events: [jsonEvent('placed', { n })] }, READY);
      await pulling;

      assert.deepEqual(entryVersions(seen), [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
      assert.ok(reconnects.length >= 1, 'the subscription reconnected');
      assert.equal(reconnects[0]?.fromVersion, 6n);
      assert.equal(reconnects[0]?.error?.name, 'UnavailableError');
    } finally {
      await items.return();
      writer.client.close();
      reader.close();
      await server.stop();
      const fs = await import('node:fs');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps retrying while the server is down, then resumes', async () => {
    const dataDir = tempDir();
    let server: TestServer = await startTestServer({ dataDir });
    const port = server.server.port;
    const client = connect(server.address, FAST);
    await client.createStream({ stream: '/down' });
    await server.stop();
    const reconnects: ReconnectInfo[] = [];
    const items = client.subscribe('/down', { backoff: { initialMs: 20, maxMs: 100 }, onReconnect: (info) => reconnects.push(info) });
    const seen: SubscriptionItem[] = [];
    const pulling = collectUntil(items, seen, (s) => entryVersions(s).includes(1n), 20_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 400));
      server = await startTestServer({ dataDir, listen: `127.0.0.1:${port}` });
      const writer = connect(server.address, FAST);
      await writer.append({ stream: '/down', events: [jsonEvent('up', {})] }, READY);
      writer.close();
      await pulling;
      assert.deepEqual(entryVersions(seen), [0n, 1n]);
      assert.ok(reconnects.length >= 2, `reconnected ${reconnects.length} times`);
    } finally {
      await items.return();
      client.close();
      await server.stop();
      const fs = await import('node:fs');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('ends without an error when its signal aborts', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    try {
      await client.createStream({ stream: '/abort' });
      const abort = new AbortController();
      const seen: SubscriptionItem[] = [];
      for await (const item of client.subscribe('/abort', { signal: abort.signal })) {
        seen.push(item);
        if (item.kind === 'caughtUp') abort.abort();
      }
      assert.deepEqual(summary(seen), ['v0', 'caughtUp@0']);
    } finally {
      client.close();
      await server.stop();
    }
  });
});
