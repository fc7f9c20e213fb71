import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { paginateScan, ProvisionedThroughputExceededException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { StoreUnavailableError } from '../../src/core/errors';
import { storeFailure } from '../../src/store/dynamodb/aws-errors';
import { createDynamoDbClient, DynamoDbStore } from '../../src/store/dynamodb/dynamodb-store';
import { tableNames } from '../../src/store/dynamodb/tables';
import { freePort } from '../helpers/process';
import { typicalEvent } from '../helpers/typical-event';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { api, startTestServer, type Api, type TestServer } from '../helpers/server';

describe('DynamoDB: requests, capacity and limits', function () {
  let local: DynamoDbLocal;
  let server: TestServer;
  let store: DynamoDbStore;
  let client: Api;
  let prefix: string;
  /** Straight to DynamoDB Local, behind the store's back. */
  let raw: DynamoDBClient;

  before(async function () {
    local = await requireDynamoDbLocal(this);
    raw = createDynamoDbClient(local.connection);
  });
  after(() => raw?.destroy());

  beforeEach(async () => {
    prefix = freshTablePrefix();
    server = await startTestServer({}, () => (store = localStore(local, prefix)));
    client = api(server.client);
  });

  afterEach(async () => {
    await server?.stop();
  });

  it('spends exactly one write request per append in steady state, whatever the options', async () => {
    await client.createStream({ stream: '/orders' });
    await client.append({ stream: '/orders', events: [typicalEvent(0)] });
    store.meter.reset();
    let head = 1n;
    for (let i = 1; i <= 12; i++) {
      const options = i % 3 === 0 ? { expectedVersion: head } : i % 3 === 1 ? { requestId: `req-${i}` } : {};
      const response = await client.append({ stream: '/orders', events: [typicalEvent(i)], ...options });
      head = response.cursor?.version ?? -1n;
    }
    assert.equal(head, 13n);
    const counts = store.meter.snapshot();
    assert.deepEqual(counts.requests, { PutItem: 12 });
    // A 300-byte event fits one 1 KB write unit.
    assert.equal(counts.writeUnits, 12);
  });

  it('group-commits a burst of concurrent appends: gap-free, each request id once, fewer requests', async () => {
    await client.createStream({ stream: '/burst' });
    store.meter.reset();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        client.append({ stream: '/burst', events: [typicalEvent(i)], requestId: `burst-${i % 40}` }),
      ),
    );
    const written = results.filter((r) => !r.deduplicated).map((r) => r.cursor?.version ?? -1n);
    assert.deepEqual(
      [...written].sort((x, y) => (x < y ? -1 : 1)),
      Array.from({ length: 40 }, (_, i) => BigInt(i + 1)),
    );
    results.forEach((result, i) => {
      if (result.deduplicated) assert.equal(result.cursor?.version, results[i % 40]?.cursor?.version);
    });
    const page = await client.read({ stream: '/burst', limit: 100 });
    assert.equal(page.headVersion, 40n);
    assert.ok(store.meter.totalRequests() < 40, `${store.meter.totalRequests()} requests for 40 entries`);
  });

  it('stores a 100-event entry of typical JSON for well under one write unit per event', async () => {
    await client.createStream({ stream: '/batch' });
    store.meter.reset();
    const events = Array.from({ length: 100 }, (_, i) => typicalEvent(i));
    await client.append({ stream: '/batch', events });
    const counts = store.meter.snapshot();
    assert.deepEqual(counts.requests, { PutItem: 1 });
    assert.ok(counts.writeUnits / 100 < 0.25, `${counts.writeUnits} write units for 100 events`);
  });

  it('spends one PutItem per snapshot, and one transaction (with the shred check) per sealed snapshot', async () => {
    await client.createStream({ stream: '/snap' });
    store.meter.reset();
    await client.putSnapshot({ stream: '/snap', perspective: 'plain', version: 0n, data: Buffer.from('{}') });
    assert.deepEqual(store.meter.snapshot().requests, { PutItem: 1 });
    store.meter.reset();
    const snapshot = { perspective: 'sealed', version: 0n, payload: new Uint8Array(100), contentType: 'application/json', storedAt: new Date() };
    assert.deepEqual(await store.putSnapshot('/snap', snapshot, { sealed: true }), { stored: true, storedVersion: 0n });
    // One request; AWS bills it 2 units for the snapshot of under 1 KB and 2 for the check of the
    // shred marker (docs/dynamodb.md). DynamoDB Local reports its own figure for transactions.
    assert.deepEqual(store.meter.snapshot().requests, { TransactWriteItems: 1 });
  });

  it('writes an entry too large for one item as one transaction of its item and its chunks, and reads it back whole', async () => {
    await client.createStream({ stream: '/big' });
    // Random bytes: zstd cannot shrink them, so the stored payload is as large as the event.
    const blob = (size: number) => ({ type: 'blob', data: randomBytes(size), contentType: 'application/octet-stream' });
    const fits = blob(390 * 1024);
    store.meter.reset();
    await client.append({ stream: '/big', events: [fits] });
    assert.deepEqual(store.meter.snapshot().requests, { PutItem: 1 }, 'an entry that fits one item is still one PutItem');

    const large = blob(1 << 20);
    store.meter.reset();
    const appended = await client.append({ stream: '/big', events: [large], requestId: 'big-1' });
    assert.equal(appended.cursor?.version, 2n);
    // The entry's item and 3 chunks of at most 398 KiB, in one request.
    assert.deepEqual(store.meter.snapshot().requests, { TransactWriteItems: 1 });

    store.meter.reset();
    const page = await client.read({ stream: '/big', fromVersion: 1n });
    assert.deepEqual(page.entries.map((e) => e.version), [1n, 2n]);
    assert.ok(Buffer.from(page.entries[0]?.events[0]?.data ?? []).equals(fits.data));
    assert.ok(Buffer.from(page.entries[1]?.events[0]?.data ?? []).equals(large.data));
    // One Query of the events (the page reaches the head), one GetItem per chunk.
    assert.deepEqual(store.meter.snapshot().requests, { Query: 1, GetItem: 3 });

    // A retry of the request id is answered from the stream cache, writing nothing.
    store.meter.reset();
    const retried = await client.append({ stream: '/big', events: [large], requestId: 'big-1' });
    assert.deepEqual([retried.cursor?.version, retried.deduplicated], [2n, true]);
    assert.deepEqual(store.meter.snapshot().requests, {});
  });

  it('leaves no chunk behind when a split snapshot is replaced (split or not) or deleted', async () => {
    await client.createStream({ stream: '/snap-big' });
    for (let i = 0; i < 3; i++) await client.append({ stream: '/snap-big', events: [typicalEvent(i)] });
    const snapshot = (version: bigint, size: number) => ({
      perspective: 'p', version, payload: new Uint8Array(randomBytes(size)), contentType: 'application/octet-stream', storedAt: new Date(),
    });
    const chunks = async () => {
      let count = 0;
      for await (const page of paginateScan({ client: raw }, { TableName: tableNames(prefix).chunks, Select: 'COUNT', ConsistentRead: true })) {
        count += page.Count ?? 0;
      }
      return count;
    };
    assert.deepEqual(await store.putSnapshot('/snap-big', snapshot(1n, 1 << 20)), { stored: true, storedVersion: 1n });
    assert.equal(await chunks(), 3);
    // Replaced by a newer split one: a first attempt meets the split one (its condition shows it),
    // the second replaces exactly that one, then its chunks are deleted.
    store.meter.reset();
    assert.deepEqual(await store.putSnapshot('/snap-big', snapshot(2n, 900 * 1024), { sealed: true }), { stored: true, storedVersion: 2n });
    assert.deepEqual(store.meter.snapshot().requests, { TransactWriteItems: 2, DeleteItem: 3 });
    assert.equal(await chunks(), 3);
    assert.deepEqual(await store.putSnapshot('/snap-big', snapshot(3n, 100)), { stored: true, storedVersion: 3n });
    assert.equal(await chunks(), 0);
    assert.deepEqual(await store.putSnapshot('/snap-big', snapshot(3n, 1 << 20)), { stored: false, storedVersion: 3n });
    await client.append({ stream: '/snap-big', events: [typicalEvent(4)] });
    assert.deepEqual(await store.putSnapshot('/snap-big', snapshot(4n, 1 << 20)), { stored: true, storedVersion: 4n });
    assert.equal(await store.deleteSnapshot('/snap-big', 'p'), true);
    assert.equal(await chunks(), 0);
  });

  it('group-commits a burst of large appends in transactions of at most 4 MB', async () => {
    await client.createStream({ stream: '/big-burst' });
    store.meter.reset();
    const payloads = Array.from({ length: 8 }, () => new Uint8Array(randomBytes(1 << 20)));
    const at = new Date();
    const results = await Promise.all(payloads.map((payload) => store.append({ stream: '/big-burst', payload: () => payload, recordedAt: at })));
    assert.deepEqual(
      results.map((r) => r.version).sort((x, y) => (x < y ? -1 : 1)),
      payloads.map((_, i) => BigInt(i + 1)),
    );
    // 8 MiB cannot go in one transaction (nor in two: three 1 MiB entries fill one); alone, each would be one.
    const transactions = store.meter.snapshot().requests.TransactWriteItems ?? 0;
    assert.ok(transactions >= 3 && transactions < 8, `${transactions} transactions for 8 entries of 1 MiB`);
  });

  it('reports an unreachable DynamoDB as StoreUnavailableError, without table names', async () => {
    const port = await freePort(); // nothing listens there
    const unreachable = new DynamoDbStore({
      ...local.connection,
      endpoint: `http://127.0.0.1:${port}`,
      tablePrefix: 'secret-prefix-',
      createTables: false,
    });
    try {
      const error = await unreachable.describe('/anything').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof StoreUnavailableError, `got ${String(error)}`);
      assert.doesNotMatch(error.message, /secret-prefix|127\.0\.0\.1|ECONNREFUSED/);
    } finally {
      await unreachable.close();
    }
  });

  it('maps throttling that outlived the SDK retries to StoreUnavailableError', () => {
    const throttled = new ProvisionedThroughputExceededException({
      message: 'Rate exceeded for table secret-prefix-events',
      $metadata: { httpStatusCode: 400 },
    });
    const mapped = storeFailure(throttled);
    assert.ok(mapped instanceof StoreUnavailableError);
    assert.doesNotMatch(mapped.message, /secret-prefix/);
  });
});
