import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { generateKeyring, type KeyringFile } from '../../src/crypto/keyring';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { api, dataOf, detailsOf, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';
import { recordSubscription } from '../helpers/subscriber';

/**
 * Stream keys across two replicas (two servers, one keyring, the same DynamoDB tables): each
 * replica caches unwrapped keys, and a rotation or a shred made on one must not leave the other
 * failing reads or writing data nobody can read.
 */
/** The key cache time of both servers: the documented bound on serving a shredded stream. */
const KEY_CACHE_TTL_MS = 1_000;
/**
 * The longest wait between two reads of the feed by a replica: with the indexer's poll, the
 * documented bound on ending subscriptions elsewhere (docs/dynamodb.md).
 */
const POLL_MAX_INTERVAL_MS = 200;

describe('DynamoDB: stream keys across two replicas', function () {
  this.timeout(30_000);
  let local: DynamoDbLocal;
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  let a: Api;
  let b: Api;

  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  /** What B logged at warn level or above. */
  let warnedOnB: string[];

  beforeEach(async () => {
    const prefix = freshTablePrefix();
    const keyring: KeyringFile = generateKeyring('kek-1');
    const config = { pollMaxIntervalMs: POLL_MAX_INTERVAL_MS, keyring: JSON.stringify(keyring), keyCacheTtlMs: KEY_CACHE_TTL_MS };
    first = await startTestServer(config, () => localStore(local, prefix));
    warnedOnB = [];
    const logOfB = pino({ level: 'warn' }, { write: (line: string) => warnedOnB.push(String((JSON.parse(line) as { msg?: unknown }).msg)) });
    second = await startTestServer(config, () => localStore(local, prefix), undefined, logOfB);
    a = api(first.client);
    b = api(second.client);
  });

  afterEach(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it('reads and delivers on B the entries written after a rotation on A', async () => {
    await a.createStream({ stream: '/k', events: [jsonEvent('before', { n: 1 })] });
    // B caches the stream's keys (version 1) by reading it, and follows it live.
    assert.equal((await b.read({ stream: '/k' })).entries.length, 2);
    const subscriber = recordSubscription(second!.client, '/k');
    try {
      await subscriber.caughtUp;
      assert.equal((await a.rotateStreamKey({ stream: '/k' })).dekVersion, 2);
      for (let n = 2; n <= 4; n++) await a.append({ stream: '/k', events: [jsonEvent('after', { n })] });

      const page = await b.read({ stream: '/k' });
      assert.deepEqual(page.entries.slice(1).map((e) => dataOf(e.events[0]!)), [1, 2, 3, 4].map((n) => ({ n })));
      await subscriber.waitForEntries(5);
      assert.deepEqual(subscriber.entries.slice(2).map((e) => dataOf(e.entry.events[0]!)), [{ n: 2 }, { n: 3 }, { n: 4 }]);
      // B's own appends now use the new key too, readable on A.
      await b.append({ stream: '/k', events: [jsonEvent('from-b', { n: 5 })] });
      assert.deepEqual(dataOf((await a.read({ stream: '/k', fromVersion: 5n })).entries[0]!.events[0]!), { n: 5 });
    } finally {
      subscriber.cancel();
    }
  });

  it('reads on B a burst of entries under a new key, all of them, after one rotation on A', async () => {
    await a.createStream({ stream: '/burst' });
    await b.read({ stream: '/burst' });
    await a.rotateStreamKey({ stream: '/burst' });
    for (let n = 1; n <= 5; n++) await a.append({ stream: '/burst', events: [jsonEvent('n', { n })] });
    const reads = await Promise.all(Array.from({ length: 10 }, () => b.read({ stream: '/burst', fromVersion: 1n })));
    for (const page of reads) assert.deepEqual(page.entries.map((e) => dataOf(e.events[0]!)), [1, 2, 3, 4, 5].map((n) => ({ n })));
  });

  it('refuses on B every append to a stream shredded on A, and stops serving it within the key cache time', async () => {
    await a.createStream({ stream: '/gone', events: [jsonEvent('secret', { n: 1 })] });
    // B has the keys cached and knows the head: without a fence it would write under a dead key.
    await b.append({ stream: '/gone', events: [jsonEvent('secret', { n: 2 })] });
    assert.equal((await b.read({ stream: '/gone' })).entries.length, 3);
    await a.shredStream({ stream: '/gone' });
    const shredAt = performance.now();

    const onB = await rejection(b.append({ stream: '/gone', events: [jsonEvent('late', { n: 3 })] }), status.FAILED_PRECONDITION);
    const onA = await rejection(a.append({ stream: '/gone', events: [jsonEvent('late', { n: 3 })] }), status.FAILED_PRECONDITION);
    assert.equal(onB.reason, 'STREAM_SHREDDED');
    assert.equal(onB.reason, onA.reason);
    await rejection(b.append({ stream: '/gone', expectedVersion: 2n, events: [jsonEvent('late', {})] }), status.FAILED_PRECONDITION);
    await rejection(b.createStream({ stream: '/gone/child' }), status.FAILED_PRECONDITION);
    // A read reaching the head meets the fence at once.
    assert.equal((await rejection(b.read({ stream: '/gone' }), status.FAILED_PRECONDITION)).reason, 'STREAM_SHREDDED');
    // Older entries alone may be served from B's cached keys, but no longer than the key cache time.
    for (;;) {
      const refused = await b.read({ stream: '/gone', limit: 1 }).then(() => false, () => true);
      if (refused) break;
      assert.ok(performance.now() - shredAt < KEY_CACHE_TTL_MS + 200, 'B still serves the shredded stream past the bound');
      await sleep(50);
    }
    assert.equal((await rejection(b.read({ stream: '/gone', limit: 1 }), status.FAILED_PRECONDITION)).reason, 'STREAM_SHREDDED');
    assert.equal((await b.describeStream({ stream: '/gone' })).stream, '/gone');
  });

  it('refuses on B a snapshot of a stream shredded on A, while B still caches its keys', async () => {
    await a.createStream({ stream: '/snapped', events: [jsonEvent('secret', { n: 1 })] });
    // B caches the keys by storing (and reading) a snapshot.
    await b.putSnapshot({ stream: '/snapped', perspective: 'p', version: 0n, data: Buffer.from('{"n":0}') });
    assert.deepEqual(JSON.parse(Buffer.from((await b.getSnapshot({ stream: '/snapped', perspective: 'p' })).snapshot!.data).toString()), { n: 0 });
    await a.shredStream({ stream: '/snapped' });

    for (const perspective of ['p', 'new']) {
      const refused = await rejection(
        b.putSnapshot({ stream: '/snapped', perspective, version: 1n, data: Buffer.from('{"n":1}') }),
        status.FAILED_PRECONDITION,
      );
      assert.equal(refused.reason, 'STREAM_SHREDDED');
    }
    assert.deepEqual((await b.describeStream({ stream: '/snapped' })).snapshotPerspectives, ['p'], 'nothing stored');
  });

  it('ends subscriptions on both replicas when A shreds the stream, B once its feed reader reaches the shred fence', async () => {
    await a.createStream({ stream: '/followed', events: [jsonEvent('secret', { n: 1 })] });
    const onA = recordSubscription(first!.client, '/followed');
    const onB = recordSubscription(second!.client, '/followed');
    const laterOnB = recordSubscription(second!.client, '/followed', 9n);
    try {
      await Promise.all([onA.caughtUp, onB.caughtUp, laterOnB.caughtUp]);
      // Let B's feed reader reach its longest interval: the worst case for the bound.
      await sleep(4 * POLL_MAX_INTERVAL_MS);
      await a.shredStream({ stream: '/followed' });
      const shredAt = performance.now();
      for (const subscriber of [onA, onB, laterOnB]) {
        const details = detailsOf(await subscriber.failed);
        assert.equal(details.code, status.FAILED_PRECONDITION);
        assert.equal(details.reason, 'STREAM_SHREDDED');
      }
      // The feed reader's interval, plus the indexer's poll (50 ms in tests) and the round trips.
      assert.ok(performance.now() - shredAt < POLL_MAX_INTERVAL_MS + 500, 'B ended its subscriptions late');
      await sleep(5 * POLL_MAX_INTERVAL_MS);
      assert.deepEqual(warnedOnB, [], 'B logs nothing for a shredded stream');
      // A new subscription on B is refused too (it reads up to the fence).
      const refused = recordSubscription(second!.client, '/followed');
      assert.equal(detailsOf(await refused.failed).reason, 'STREAM_SHREDDED');
    } finally {
      for (const subscriber of [onA, onB, laterOnB]) subscriber.cancel();
    }
  });
});
