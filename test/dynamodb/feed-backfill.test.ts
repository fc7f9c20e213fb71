import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient, type DynamoDbStore } from '../../src/store/dynamodb/dynamodb-store';
import { checkScanOrder, FeedIndexer, type FeedIndexerOptions } from '../../src/store/dynamodb/feed-indexer';
import { readStateItem, stateKey } from '../../src/store/dynamodb/feed-pages';
import { createTables, tableNames } from '../../src/store/dynamodb/tables';
import type { FeedEntry } from '../../src/store/port';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { eventually } from '../helpers/eventually';
import { spawnScript } from '../helpers/process';
import { at, bytes, checkFeed, disableEventsStream, load, streamsOf } from './support/pre-feed';

/**
 * `eventhorizon dynamodb backfill-feed` against DynamoDB Local: tables written while the events
 * table had no stream, upgraded by create-tables (stream enabled, backfill marked), then
 * backfilled while appends go on and a live indexer waits, killed part-way and resumed. Every
 * test ends by checking the whole feed against the events table: each entry of each stream once,
 * in version order, positions strictly increasing.
 */
describe('DynamoDB feed backfill', function () {
  this.timeout(120_000);
  let local: DynamoDbLocal;
  const cleanups: Array<() => Promise<void>> = [];
  before(async function () {
    local = await requireDynamoDbLocal(this);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  function store(prefix: string): DynamoDbStore {
    // No indexer of its own: the tests start the live and backfill contenders themselves.
    const opened = localStore(local, prefix, { feedIndexer: false });
    cleanups.push(() => opened.close());
    return opened;
  }

  function contender(prefix: string, extra: Partial<FeedIndexerOptions> = {}): FeedIndexer {
    const log: FeedIndexerOptions['log'] = process.env.DEBUG_BACKFILL ? (level, message, fields) => console.error(level, message, fields) : undefined;
    const started = new FeedIndexer({ ...local.connection, tablePrefix: prefix, leaseMs: 1500, pollIntervalMs: 20, ...(log ? { log } : {}), ...extra });
    cleanups.push(() => started.stop());
    return started;
  }

  /** A deployment from before the feed: `streams` streams of `appends` appends, in no stream. */
  async function preFeed(prefix: string, streams: string[], appends: number): Promise<DynamoDbStore> {
    const target = store(prefix);
    await target.init(bytes('root'), at);
    await disableEventsStream(local, prefix);
    await load(target, streams, appends);
    return target;
  }

  /** create-tables on the old tables: the stream is enabled and the backfill marked. */
  async function upgrade(prefix: string): Promise<void> {
    const client = createDynamoDbClient(local.connection);
    try {
      const names = tableNames(prefix);
      const { streamEnabled, backfillPending } = await createTables(client, names);
      assert.deepEqual(streamEnabled, [names.events]);
      assert.equal(backfillPending, true);
    } finally {
      client.destroy();
    }
  }

  async function stateOf(prefix: string) {
    const client = createDynamoDbClient(local.connection);
    try {
      const { Item } = await client.send(new GetItemCommand({ TableName: tableNames(prefix).feed, Key: stateKey(), ConsistentRead: true }));
      return Item ? readStateItem(Item) : undefined;
    } finally {
      client.destroy();
    }
  }

  it('gives a pre-feed table its positions, oldest first, while appends go on; the live indexer then takes over', async () => {
    const prefix = freshTablePrefix();
    const old = streamsOf(8, 'old');
    const target = await preFeed(prefix, old, 6);
    // A replica's contender already holds the lease (there is no stream to read yet) when
    // create-tables marks the backfill: it leaves the lease, and indexes nothing until the end.
    const live = contender(prefix, { holderId: 'live' });
    live.start();
    await eventually(() => live.holding, 30_000);
    await upgrade(prefix);
    // The service serves meanwhile: appends to old streams and new ones, in the stream only.
    await load(target, old, 3, false);
    await load(target, streamsOf(3, 'mid'), 2);
    await eventually(() => !live.holding, 30_000);
    assert.equal(await target.feedHead(), 0n, 'nothing is indexed before the backfill');

    const backfill = contender(prefix, { holderId: 'backfill', backfill: true, batchSize: 7, backfillSettleMs: 500 });
    const during = (async () => {
      await sleep(100);
      await load(target, old, 4, false);
      await load(target, streamsOf(3, 'during'), 3);
    })();
    const outcome = await backfill.runBackfill();
    await during;
    assert.equal(outcome.ran, true);
    assert.ok(outcome.streams >= 1 + old.length, `${outcome.streams} streams scanned`);
    assert.equal(backfill.holding, false, 'the lease is released');
    assert.equal((await stateOf(prefix))?.backfill, undefined, 'the mark is removed');

    await load(target, old, 2, false);
    await load(target, streamsOf(2, 'after'), 2);
    await live.caughtUp();
    const all = [...old, ...streamsOf(3, 'mid'), ...streamsOf(3, 'during'), ...streamsOf(2, 'after')];
    const feed = await checkFeed(target, all);
    // Each old stream's entries written before the stream existed come before its later ones.
    const firstAfter = feed.find((entry) => entry.stream === '/after0');
    assert.ok(firstAfter && feed.filter((entry) => entry.position < firstAfter.position).length > 1 + old.length * 7);

    // Running it again does nothing.
    const again = contender(prefix, { holderId: 'again', backfill: true, backfillSettleMs: 100 });
    const head = await target.feedHead();
    assert.deepEqual(await again.runBackfill(), { ran: false, streams: 0, entries: 0, fromStream: 0 });
    assert.equal(await target.feedHead(), head);
  });

  it('gives split entries (issue 17) one position each, and the feed returns them whole', async () => {
    const prefix = freshTablePrefix();
    const target = await preFeed(prefix, ['/plain'], 2);
    await load(target, ['/big'], 0);
    // 1 MiB each: an events item with n and z, and 3 chunk items in the chunks table.
    const large = [1, 2, 3].map(() => new Uint8Array(randomBytes(1 << 20)));
    for (const payload of large.slice(0, 2)) await target.append({ stream: '/big', payload: () => payload, recordedAt: at });
    await upgrade(prefix);
    // Written after the upgrade: in the scan and in the stream, indexed once.
    await target.append({ stream: '/big', payload: () => large[2] as Uint8Array, recordedAt: at });

    const backfill = contender(prefix, { holderId: 'backfill', backfill: true, batchSize: 3, backfillSettleMs: 300 });
    const outcome = await backfill.runBackfill();
    assert.equal(outcome.ran, true);
    // The root's entries 0..2, /plain's 0..2, /big's 0..3: no chunk counted.
    assert.equal(outcome.entries + outcome.fromStream, 3 + 3 + 4);
    const feed = await checkFeed(target, ['/plain', '/big']);
    const big = feed.filter((entry) => entry.stream === '/big' && entry.version > 0n);
    assert.deepEqual(big.map((entry) => entry.payload.byteLength), large.map((payload) => payload.byteLength));
    big.forEach((entry, i) => assert.ok(Buffer.from(entry.payload).equals(large[i] as Uint8Array), `entry ${i + 1}, whole`));
  });

  it('resumes a backfill SIGKILLed mid-batch: the same positions as an uninterrupted one', async () => {
    const streams = streamsOf(6, 'k');
    const positions = async (killAt: number | undefined): Promise<FeedEntry[]> => {
      const prefix = freshTablePrefix();
      const target = await preFeed(prefix, streams, 5);
      await upgrade(prefix);
      if (killAt !== undefined) {
        const child = spawnBackfillChild(prefix, 1000, 5, killAt);
        cleanups.push(async () => void child.process.kill('SIGKILL'));
        const paused = await child.line(/^PAUSED (\d+)$/);
        assert.ok(Number(paused[1]) > 0, 'killed with a batch read and not written');
        assert.match(child.output(), /WROTE/, 'batches were written before');
        child.process.kill('SIGKILL');
        const mark = (await stateOf(prefix))?.backfill;
        assert.equal(mark?.phase, 'scan');
        assert.ok((mark?.entries ?? 0) > 0 && mark?.after !== undefined, 'killed part-way through the scan');
      }
      // The re-run waits out the dead run's lease and resumes after its last batch.
      const backfill = contender(prefix, { backfill: true, batchSize: 5, backfillSettleMs: 200 });
      const outcome = await backfill.runBackfill();
      assert.equal(outcome.ran, true);
      assert.equal(outcome.entries, 1 + 6 * 6 + 6, 'every entry scanned once, the root and its child-created entries included');
      assert.equal(outcome.fromStream, 0);
      return checkFeed(target, streams);
    };
    const clean = await positions(undefined);
    const resumed = await positions(4);
    const key = (entries: FeedEntry[]) => entries.map((entry) => `${entry.position} ${entry.stream} ${entry.version}`);
    assert.deepEqual(key(resumed), key(clean));
  });

  it('refuses to scan out of order (the order positions are given in)', () => {
    const r = (stream: string, version: bigint) => ({ stream, version });
    checkScanOrder([r('/a', 3n), r('/a', 4n), r('/b', 0n), r('/b', 1n)], { stream: '/a', version: 2n });
    assert.throws(() => checkScanOrder([r('/a', 2n)], { stream: '/a', version: 2n }), /version 2 of \/a after version 2/);
    assert.throws(() => checkScanOrder([r('/a', 0n), r('/b', 0n), r('/a', 1n)], undefined), /apart/);
  });

  /** A backfill in a process of its own (test/dynamodb/support/backfill-child.ts). */
  function spawnBackfillChild(prefix: string, leaseMs: number, batchSize: number, pauseAt: number) {
    const script = path.join(__dirname, 'support', 'backfill-child.js');
    return spawnScript(script, [local.endpoint, prefix, String(leaseMs), String(batchSize), String(pauseAt)], 'backfill child');
  }
});
