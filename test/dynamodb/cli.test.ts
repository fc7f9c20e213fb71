import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { credentials } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { BIN, REPO_ROOT, spawnServer, type ServerProcess } from '../helpers/process';
import { api, dataOf, jsonEvent } from '../helpers/server';
import { recordSubscription } from '../helpers/subscriber';
import { at, bytes, checkFeed, disableEventsStream, load, streamsOf } from './support/pre-feed';

/** `eventhorizon` as a user runs it: separate processes, configured by environment variables. */
describe('eventhorizon with EH_STORE=dynamodb (separate processes)', function () {
  let local: DynamoDbLocal;
  let env: Record<string, string>;

  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  beforeEach(function () {
    this.timeout(60_000);
    env = {
      EH_STORE: 'dynamodb',
      EH_DYNAMODB_ENDPOINT: local.endpoint,
      EH_DYNAMODB_REGION: local.connection.region ?? 'us-east-1',
      EH_DYNAMODB_TABLE_PREFIX: freshTablePrefix(),
      AWS_ACCESS_KEY_ID: local.connection.credentials?.accessKeyId ?? '',
      AWS_SECRET_ACCESS_KEY: local.connection.credentials?.secretAccessKey ?? '',
      NODE_NO_WARNINGS: '1',
    };
  });

  function run(args: string[]) {
    return spawnSync(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  it('refuses to serve without tables, names them, and create-tables makes them', function () {
    this.timeout(60_000);
    const refused = run(['serve', '--listen', '127.0.0.1:0']);
    assert.equal(refused.status, 1, refused.stderr);
    const prefix = env.EH_DYNAMODB_TABLE_PREFIX;
    assert.match(refused.stderr, new RegExp(`table ${prefix}events does not exist`));
    assert.match(refused.stderr, /eventhorizon dynamodb create-tables/);

    const created = run(['dynamodb', 'create-tables']);
    assert.equal(created.status, 0, created.stderr);
    assert.deepEqual(created.stdout.trim().split('\n'), [
      `${prefix}events: created`,
      `${prefix}snapshots: created`,
      `${prefix}children: created`,
      `${prefix}keys: created`,
      `${prefix}feed: created`,
      `${prefix}chunks: created`,
    ]);
    const again = run(['dynamodb', 'create-tables']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`${prefix}events: already exists`));
  });

  it('refuses to serve with limits that allow entries larger than one DynamoDB transaction holds', function () {
    this.timeout(60_000);
    const refused = run(['serve', '--listen', '127.0.0.1:0', '--max-entry-bytes', String(8 << 20)]);
    // A configuration problem, found before the tables are even looked at.
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /EH_MAX_ENTRY_BYTES=8388608 with EH_MAX_EVENTS_PER_ENTRY=1000 allows entries of up to \d+ stored bytes, more than the 4128768 this store holds/);
  });

  it('backfill-feed gives tables written before the feed their feed, sums up, and does nothing the second time', async function () {
    this.timeout(90_000);
    const prefix = env.EH_DYNAMODB_TABLE_PREFIX ?? '';
    const streams = streamsOf(5, 'c');
    // A deployment of an earlier version: its events table has no stream.
    const target = localStore(local, prefix, { feedIndexer: false });
    try {
      await target.init(bytes('root'), at);
      await disableEventsStream(local, prefix);
      await load(target, streams, 4);
      const upgraded = run(['dynamodb', 'create-tables']);
      assert.equal(upgraded.status, 0, upgraded.stderr);
      assert.match(upgraded.stdout, new RegExp(`^${prefix}events: stream enabled \\(for the feed\\)$`, 'm'));
      assert.match(upgraded.stdout, new RegExp(`^${prefix}feed: backfill pending: run "eventhorizon dynamodb backfill-feed"`, 'm'));
      // Written after the upgrade: in the stream too, and in the feed once only.
      await load(target, streams, 2, false);

      const backfilled = run(['dynamodb', 'backfill-feed', '--settle', '300ms']);
      assert.equal(backfilled.status, 0, backfilled.stderr);
      // The root's entry 0 and one child-created entry per stream; 1 + 4 + 2 entries per stream.
      const summary = /^backfilled the feed: (\d+) entries of (\d+) streams from the scan, then (\d+) from the stream/m.exec(backfilled.stderr);
      assert.ok(summary, backfilled.stderr);
      assert.deepEqual(summary.slice(1), [String(1 + 5 + 5 * 7), '6', '0']);
      const feed = await checkFeed(target, streams);
      assert.equal(feed.length, 1 + 5 + 5 * 7);

      const again = run(['dynamodb', 'backfill-feed']);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stderr, /^nothing to backfill/m);
      assert.equal(await target.feedHead(), BigInt(feed.length));
    } finally {
      await target.close();
    }
  });

  it("serves from two processes on the same tables: a subscriber on one sees the other's appends", async function () {
    this.timeout(60_000);
    assert.equal(run(['dynamodb', 'create-tables']).status, 0);
    const servers: ServerProcess[] = [];
    const clients: EventHorizonClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const server = await spawnServer({ ...env, EH_POLL_MAX_INTERVAL: '200ms' });
        servers.push(server);
        clients.push(new EventHorizonClient(server.address, credentials.createInsecure()));
      }
      const [writer, reader] = clients as [EventHorizonClient, EventHorizonClient];
      await api(writer).createStream({ stream: '/shared' });
      const subscriber = recordSubscription(reader, '/shared');
      try {
        await subscriber.caughtUp;
        for (let i = 1; i <= 5; i++) await api(writer).append({ stream: '/shared', events: [jsonEvent('n', { i })] });
        await subscriber.waitForEntries(6);
        assert.deepEqual(
          subscriber.entries.map((e) => e.entry.version),
          [0n, 1n, 2n, 3n, 4n, 5n],
        );
        assert.deepEqual(dataOf(subscriber.entries[5]!.entry.events[0]!), { i: 5 });
      } finally {
        subscriber.cancel();
      }
    } finally {
      for (const client of clients) client.close();
      for (const server of servers) server.child.kill('SIGTERM');
      await Promise.all(servers.map((s) => s.exited));
    }
  });
});
