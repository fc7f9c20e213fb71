import assert from 'node:assert/strict';
import { generateKeyring, type KeyringFile } from '../../src/crypto/keyring';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { api, dataOf, jsonEvent, startTestServer, type Api, type TestServer } from '../helpers/server';
import { recordSubscription } from '../helpers/subscriber';

/**
 * Stream keys across two replicas (two servers, one keyring, the same DynamoDB tables): each
 * replica caches unwrapped keys, and a rotation or a shred made on one must not leave the other
 * failing reads or writing data nobody can read.
 */
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

  beforeEach(async () => {
    const prefix = freshTablePrefix();
    const keyring: KeyringFile = generateKeyring('kek-1');
    const config = { pollMaxIntervalMs: 200, keyring: JSON.stringify(keyring) };
    first = await startTestServer(config, () => localStore(local, prefix));
    second = await startTestServer(config, () => localStore(local, prefix));
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
});
