import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Metadata, status, type ClientReadableStream } from '@grpc/grpc-js';
import { connect, eventData, jsonEvent, type EventHorizon, type ReconnectInfo, type SubscriptionItem } from '../../../clients/ts/src';
import type { SubscribeRequest, SubscribeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { resumableSubscription } from '../../../clients/ts/src/subscription';
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

/** A Subscribe call that answers `messages`, then ends with `end` (or stays open without it). */
function fakeCall(messages: SubscribeResponse[], end?: 'end' | Error): ClientReadableStream<SubscribeResponse> {
  const stream = new Readable({ objectMode: true, read: () => undefined });
  for (const message of messages) stream.push(message);
  if (end === 'end') stream.push(null);
  else if (end) setImmediate(() => stream.destroy(end));
  return Object.assign(stream, { cancel: () => stream.destroy() }) as unknown as ClientReadableStream<SubscribeResponse>;
}

function entryMessage(version: bigint): SubscribeResponse {
  return { message: { $case: 'entry', value: { version, events: [], recordedAt: undefined } } };
}

function batchMessage(...versions: bigint[]): SubscribeResponse {
  return { message: { $case: 'entries', value: { entries: versions.map((version) => ({ version, events: [], recordedAt: undefined })) } } };
}

/** What grpc-js reports when the server shuts down: UNAVAILABLE, which the subscription resumes after. */
function unavailable(): Error {
  return Object.assign(new Error('14 UNAVAILABLE: shutting down'), { code: status.UNAVAILABLE, details: 'shutting down', metadata: new Metadata() });
}

describe('TypeScript client: subscribe', () => {
  it('asks for batches and yields their entries one by one, checked as lone entries are, across a reconnection', async () => {
    const requests: SubscribeRequest[] = [];
    const calls = [
      // Caught up, one live entry, then the server goes away.
      fakeCall([batchMessage(0n, 1n, 2n), { message: { $case: 'caughtUp', value: { version: 2n } } }, entryMessage(3n)], unavailable()),
      // Resumed from 4; a batch that repeats entry 3 (it was delivered) then goes on.
      fakeCall([batchMessage(3n, 4n, 5n), { message: { $case: 'caughtUp', value: { version: 5n } } }, batchMessage(6n, 8n)]),
    ];
    const items = resumableSubscription(
      (request) => {
        requests.push(request);
        const call = calls.shift();
        if (!call) throw new Error('no more calls');
        return call;
      },
      '/s',
      { backoff: { initialMs: 1, maxMs: 1 } },
    );
    const seen: SubscriptionItem[] = [];
    await collectUntil(items, seen, (s) => entryVersions(s).includes(6n));
    assert.deepEqual(summary(seen), ['v0', 'v1', 'v2', 'caughtUp@2', 'v3', 'v4', 'v5', 'caughtUp@5', 'v6']);
    assert.deepEqual(
      requests.map((request) => [request.fromVersion, request.maxEntriesPerMessage]),
      [[0n, 1000], [4n, 1000]],
      'batches of up to 1000 entries, the server maximum, by default',
    );
    // Entry 8 follows 6 inside a batch: a gap there is refused as one between messages is.
    await assert.rejects(items.next(), /skipped from version 7 to 8/);
  });

  it('asks for one entry per message with maxEntriesPerMessage 1', async () => {
    const requests: SubscribeRequest[] = [];
    const items = resumableSubscription(
      (request) => {
        requests.push(request);
        return fakeCall([entryMessage(0n), { message: { $case: 'caughtUp', value: { version: 0n } } }], 'end');
      },
      '/s',
      { maxEntriesPerMessage: 1 },
    );
    const seen: SubscriptionItem[] = [];
    await collectUntil(items, seen, (s) => s.length === 2);
    await items.return();
    assert.equal(requests[0]?.maxEntriesPerMessage, 1);
  });

  it('gets stored entries in batches from the server and yields them one by one, with no gap or duplicate across the switch to live', async () => {
    const server = await startTestServer();
    const client = connect(server.address, FAST);
    // The requests the client sends, and how many entries came in `entries` messages.
    const requests: SubscribeRequest[] = [];
    let batched = 0;
    type OpenCall = (request: SubscribeRequest) => ClientReadableStream<SubscribeResponse>;
    const raw = client.raw as unknown as { subscribe: OpenCall };
    const open: OpenCall = client.raw.subscribe.bind(client.raw);
    raw.subscribe = (request) => {
      requests.push(request);
      const call = open(request);
      // Counted as grpc-js hands them over, without consuming them: the client reads them itself.
      const push = call.push.bind(call);
      call.push = (message: SubscribeResponse | null) => {
        if (message?.message?.$case === 'entries') batched += message.message.value.entries.length;
        return push(message);
      };
      return call;
    };
    try {
      await client.createStream({ stream: '/batched' });
      const stored = 600;
      for (let n = 1; n <= stored; n += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, i) => client.append({ stream: '/batched', events: [jsonEvent('n', { n: n + i })] })));
      }
      const items = client.subscribe('/batched');
      const seen: SubscriptionItem[] = [];
      // Appends land while the subscription catches up and switches to live.
      const writing = (async () => {
        for (let n = 0; n < 100; n += 10) {
          await Promise.all(Array.from({ length: 10 }, () => client.append({ stream: '/batched', events: [jsonEvent('live', {})] })));
        }
      })();
      await collectUntil(items, seen, (s) => entryVersions(s).length === stored + 101 && s.some((item) => item.kind === 'caughtUp'), 30_000);
      await writing;
      await items.return();
      assert.deepEqual(entryVersions(seen), Array.from({ length: stored + 101 }, (_, i) => BigInt(i)));
      assert.equal(requests[0]?.maxEntriesPerMessage, 1000);
      assert.ok(batched >= stored / 2, `${batched} entries came in batches`);
    } finally {
      client.close();
      await server.stop();
    }
  });

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
