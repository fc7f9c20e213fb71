import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import type { DynamoDbStore } from '../../src/store/dynamodb/dynamodb-store';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { eventually } from '../helpers/eventually';
import { api, dataOf, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';

import { recordSubscription } from '../helpers/subscriber';

/**
 * Two Event Horizon servers (two replicas, each with its own store and caches) on the same
 * DynamoDB tables, spoken to through real gRPC clients.
 */
describe('DynamoDB: two replicas on the same tables', function () {
  let local: DynamoDbLocal;
  let first: TestServer;
  let second: TestServer;
  let a: Api;
  let b: Api;
  let prefix: string;
  /** The store of the first replica, for its request meter. */
  let firstStore: DynamoDbStore;

  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  beforeEach(async () => {
    prefix = freshTablePrefix();
    first = await startTestServer({ pollMaxIntervalMs: 200 }, () => (firstStore = localStore(local, prefix)));
    second = await startTestServer({ pollMaxIntervalMs: 200 }, () => localStore(local, prefix));
    a = api(first.client);
    b = api(second.client);
  });

  afterEach(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it('lets exactly one expected-version append win each version across replicas, without gaps', async () => {
    await a.createStream({ stream: '/race' });
    const rounds = 8;
    const perReplica = 4;
    for (let round = 0; round < rounds; round++) {
      const head = (await b.describeStream({ stream: '/race' })).headVersion;
      const attempts = [a, b].flatMap((replica, r) =>
        Array.from({ length: perReplica }, (_, w) =>
          replica.append({
            stream: '/race',
            expectedVersion: head,
            events: [jsonEvent('raced', { round, replica: r, writer: w })],
          }),
        ),
      );
      const outcomes = await Promise.allSettled(attempts);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}: exactly one winner`);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') assert.equal((outcome.reason as { code: number }).code, status.ABORTED);
      }
    }
    const page = await a.read({ stream: '/race', limit: 100 });
    assert.deepEqual(
      page.entries.map((e) => e.version),
      Array.from({ length: rounds + 1 }, (_, i) => BigInt(i)),
    );
  });

  it('keeps appends without expected version gap-free when both replicas write at once', async () => {
    await a.createStream({ stream: '/busy' });
    const each = 15;
    await Promise.all(
      [a, b].map(async (replica, r) => {
        for (let i = 0; i < each; i++) await replica.append({ stream: '/busy', events: [jsonEvent('n', { r, i })] });
      }),
    );
    const page = await b.read({ stream: '/busy', limit: 100 });
    assert.deepEqual(
      page.entries.map((e) => e.version),
      Array.from({ length: 2 * each + 1 }, (_, i) => BigInt(i)),
    );
    const written = page.entries.slice(1).map((e) => JSON.stringify(dataOf(e.events[0]!)));
    assert.equal(new Set(written).size, 2 * each, 'every append stored exactly once');
  });

  it('answers a request-id retry sent to the other replica with the original cursor', async () => {
    await a.createStream({ stream: '/idem' });
    // Replica B knows the stream already (warm cache), then falls behind while A writes.
    await b.append({ stream: '/idem', events: [jsonEvent('warm', {})] });
    const original = await a.append({ stream: '/idem', requestId: 'req-1', events: [jsonEvent('once', {})] });
    await a.append({ stream: '/idem', events: [jsonEvent('later', {})] });
    const retried = await b.append({ stream: '/idem', requestId: 'req-1', events: [jsonEvent('once', {})] });
    assert.equal(retried.deduplicated, true);
    assert.equal(retried.cursor?.version, original.cursor?.version);

    // A replica that never saw the stream (cold cache) recognises it too.
    const third = await startTestServer({}, () => localStore(local, prefix));
    try {
      const fromCold = await api(third.client).append({
        stream: '/idem',
        requestId: 'req-1',
        events: [jsonEvent('once', {})],
      });
      assert.equal(fromCold.deduplicated, true);
      assert.equal(fromCold.cursor?.version, original.cursor?.version);
    } finally {
      await third.stop();
    }
    const page = await a.read({ stream: '/idem' });
    assert.deepEqual(
      page.entries.map((e) => e.events[0]?.type),
      ['$stream.started', 'warm', 'once', 'later'],
    );
  });

  it('refuses a conflicting expected version from a replica whose cache is behind, naming the real head', async () => {
    await a.createStream({ stream: '/stale' });
    await b.append({ stream: '/stale', events: [jsonEvent('b', {})] });
    await a.append({ stream: '/stale', events: [jsonEvent('a', {})] });
    const details = await rejection(
      b.append({ stream: '/stale', expectedVersion: 1n, events: [jsonEvent('late', {})] }),
      status.ABORTED,
    );
    assert.equal(details.metadata.actual_version, '2');
  });

  it('delivers appends made on one replica to a subscriber on the other, in order', async () => {
    await a.createStream({ stream: '/live' });
    const subscriber = recordSubscription(first.client, '/live');
    try {
      await subscriber.caughtUp;
      const count = 20;
      for (let i = 1; i <= count; i++) await b.append({ stream: '/live', events: [jsonEvent('tick', { i })] });
      await subscriber.waitForEntries(count + 1);
      assert.deepEqual(
        subscriber.entries.map((e) => e.entry.version),
        Array.from({ length: count + 1 }, (_, i) => BigInt(i)),
      );
      assert.deepEqual(dataOf(subscriber.entries[count]!.entry.events[0]!), { i: count });
    } finally {
      subscriber.cancel();
    }
  });

  // Other replicas' entries come from the feed's one reader per process (feed-dispatcher.ts):
  // it reads the feed table only while someone here subscribes.
  it('reads the feed for its subscribers only, and stops when the last subscriber leaves', async function () {
    this.timeout(20_000);
    await a.createStream({ stream: '/quiet' });
    const meter = firstStore.meter;
    const queries = () => meter.snapshot().requests.Query ?? 0;
    meter.reset();
    await sleep(600); // three 200 ms maximum intervals: polls of a stream without subscribers would show here
    assert.equal(queries(), 0, 'no subscriber, no polling');

    const subscriber = recordSubscription(first.client, '/quiet');
    try {
      await subscriber.caughtUp;
      meter.reset(); // the catch-up's own reads
      await eventually(() => queries() > 0, 10_000, () => 'the subscribed stream was not polled');
    } finally {
      subscriber.cancel();
    }
    await eventually(() => first.server.hub.subscriberCount() === 0);
    await sleep(300); // a poll already in flight may still land
    meter.reset();
    await sleep(600);
    assert.equal(queries(), 0, 'no polling once the last subscriber left');
  });

  it('creates children of one parent through both replicas, all recorded', async () => {
    await a.createStream({ stream: '/kids' });
    const each = 10;
    await Promise.all(
      [a, b].flatMap((replica, r) =>
        Array.from({ length: each }, (_, i) => replica.createStream({ stream: `/kids/r${r}-${i}` })),
      ),
    );
    const info = await b.describeStream({ stream: '/kids' });
    assert.equal(info.childCount, BigInt(2 * each));
    assert.equal(info.headVersion, BigInt(2 * each));
    const listed = await a.listChildren({ stream: '/kids', limit: 100 });
    assert.equal(listed.children.length, 2 * each);
  });
});
