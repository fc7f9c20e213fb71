import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  AlreadyExistsError,
  connect,
  FailedPreconditionError,
  InvalidArgumentError,
  jsonEvent,
  NotFoundError,
  type EventHorizon,
  type FeedEntry,
  type GroupConsumer,
} from '../../../clients/ts/src';
import type { ConsumeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { partitionOf } from '../../../src/groups/partition-hash';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store';
import { eventually } from '../../helpers/eventually';
import { startTestServer, tempDir, type TestServer } from '../../helpers/server';

const READY = { waitForReady: true };

/** Who handled what: per stream, the versions in handling order, and overlaps seen. */
class Ledger {
  readonly byStream = new Map<string, bigint[]>();
  readonly handledBy = new Map<string, string>();
  readonly active = new Map<string, string>();
  overlaps = 0;

  async handle(member: string, entry: FeedEntry, work?: () => Promise<void>): Promise<void> {
    if (this.active.has(entry.stream)) this.overlaps++;
    this.active.set(entry.stream, member);
    try {
      await (work?.() ?? new Promise((resolve) => setTimeout(resolve, 1)));
      const list = this.byStream.get(entry.stream) ?? [];
      list.push(entry.version);
      this.byStream.set(entry.stream, list);
      this.handledBy.set(`${entry.stream}@${entry.version}`, member);
    } finally {
      this.active.delete(entry.stream);
    }
  }

  total(): number {
    let n = 0;
    for (const list of this.byStream.values()) n += list.length;
    return n;
  }
}

describe('consumer groups through the TypeScript client', function () {
  this.timeout(60_000);
  let server: TestServer;
  let client: EventHorizon;
  const consumers: GroupConsumer[] = [];

  beforeEach(async () => {
    server = await startTestServer();
    client = connect(server.address);
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()));
    client.close();
    await server.stop();
  });

  async function appendRound(streams: string[], round: number) {
    await Promise.all(streams.map((stream) => client.append({ stream, events: [jsonEvent('item.added', { round })] }, READY)));
  }

  it('shares the work of a group between two members: each entry once, each stream in order, acked positions saved', async () => {
    const streams = Array.from({ length: 20 }, (_, i) => `/shop/s${i}`);
    await client.createStream({ stream: '/shop', createParents: true }, READY);
    for (const stream of streams) await client.createStream({ stream });
    const created = await client.createConsumerGroup({ name: 'projector', selector: { stream: '/shop' }, settings: { partitions: 8, maxInFlight: 5 } });
    assert.deepEqual(created.group?.settings, { partitions: 8, ackWaitMs: 30_000, maxDeliveries: 10, maxInFlight: 5 });

    const ledger = new Ledger();
    const members = new Map<string, number[]>();
    for (const name of ['a', 'b']) {
      consumers.push(
        // The group also gets /shop's own entries (its children's creation): not counted here.
        client.consume('projector', async (entry) => (entry.stream === '/shop' ? undefined : ledger.handle(name, entry)), {
          concurrency: 4,
          memberName: name,
          onEvent: (event) => {
            if (event.kind === 'assignment') members.set(name, event.partitions);
          },
        }),
      );
    }
    for (let round = 1; round <= 5; round++) await appendRound(streams, round);
    // Each stream: $stream.started (0) and 5 appends.
    await eventually(() => ledger.total() === streams.length * 6, 20_000, () => `handled ${ledger.total()}`);
    for (const stream of streams) assert.deepEqual(ledger.byStream.get(stream), [0n, 1n, 2n, 3n, 4n, 5n], stream);
    assert.equal(ledger.overlaps, 0);
    // Both members took part, each on its own partitions.
    assert.deepEqual([...(members.get('a') ?? []), ...(members.get('b') ?? [])].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7]);
    for (const [key, member] of ledger.handledBy) {
      const stream = key.slice(0, key.indexOf('@'));
      assert.ok(members.get(member)?.includes(partitionOf(stream, 8)), `${key} handled by ${member}, outside its partitions`);
    }

    const head = (await client.readFeed({ selector: { stream: '/' }, afterPosition: 0n, limit: 1 })).headPosition;
    await eventually(async () => {
      const described = await client.describeConsumerGroup('projector');
      assert.equal(described.members.length, 2);
      for (const partition of described.partitions) {
        assert.equal(partition.position, head, `partition ${partition.partition}`);
        assert.equal(partition.lagEntries, 0n);
      }
    });
    // The positions are in the store, where a restarted server finds them.
    const stored = await server.server.store.groups?.getGroupPartitions('projector');
    await eventually(async () => {
      const again = await server.server.store.groups?.getGroupPartitions('projector');
      assert.ok(again?.every((p) => p.position === head), JSON.stringify(again?.map((p) => p.position.toString())));
    }, 5000);
    assert.equal(stored?.length, 8);
  });

  it('redelivers an unacked entry after the ack wait, parks it after max deliveries, and the stream moves on; a reset before it replays it and takes it off the parked list', async () => {
    await client.createStream({ stream: '/jobs/bad', createParents: true }, READY);
    await client.createStream({ stream: '/jobs/good' });
    await client.createConsumerGroup({ name: 'jobs', selector: { stream: '/jobs' }, settings: { partitions: 2, ackWaitMs: 300, maxDeliveries: 2 } });
    const deliveries: Array<{ key: string; count: number }> = [];
    const handled: string[] = [];
    let poisoned = true;
    consumers.push(
      client.consume(
        'jobs',
        async (entry, context) => {
          const key = `${entry.stream}@${entry.version}`;
          deliveries.push({ key, count: context.deliveryCount });
          if (key === '/jobs/bad@1' && poisoned) throw new Error('poison');
          handled.push(key);
        },
        { handlerAttempts: 1 },
      ),
    );
    await client.append({ stream: '/jobs/bad', events: [jsonEvent('job', { n: 1 })] });
    await client.append({ stream: '/jobs/bad', events: [jsonEvent('job', { n: 2 })] });
    await client.append({ stream: '/jobs/good', events: [jsonEvent('job', { n: 1 })] });
    await eventually(() => handled.includes('/jobs/bad@2'), 15_000, () => JSON.stringify(deliveries));
    assert.deepEqual(
      deliveries.filter((d) => d.key === '/jobs/bad@1').map((d) => d.count),
      [1, 2],
    );
    // /jobs/bad@2 only after @1 was parked: the stream's order holds.
    assert.ok(deliveries.findIndex((d) => d.key === '/jobs/bad@2') > deliveries.map((d) => d.key).lastIndexOf('/jobs/bad@1'));
    assert.ok(handled.includes('/jobs/good@1'));
    const described = await client.describeConsumerGroup('jobs');
    assert.equal(described.parkedCount, 1n);
    assert.deepEqual(
      described.parked.map((p) => [p.stream, p.version, p.deliveries, p.reason]),
      [['/jobs/bad', 1n, 2, 'max-deliveries']],
    );
    await eventually(async () => {
      const metrics = await (await fetch(`http://${server.server.metricsAddress}/metrics`)).text();
      assert.match(metrics, /eventhorizon_consumer_group_parked_entries\{group="jobs"\} 1/);
      assert.match(metrics, /eventhorizon_consumer_group_lag_entries\{group="jobs",partition="0"\} 0/);
      // Both partitions held by this server; the position of /jobs/bad's past the parked entry.
      assert.match(metrics, /eventhorizon_consumer_group_partitions_held\{group="jobs"\} 2/);
      const position = new RegExp(`eventhorizon_consumer_group_position\\{group="jobs",partition="${partitionOf('/jobs/bad', 2)}"\\} (\\d+)`).exec(metrics);
      assert.ok(position && BigInt(position[1] ?? '0') >= (described.parked[0]?.position ?? 1n), metrics);
    });

    // The poison is fixed: a reset to just before the parked entry delivers it (and what follows)
    // again, and it leaves the parked list.
    poisoned = false;
    const parkedAt = described.parked[0]?.position ?? 0n;
    await client.resetConsumerGroup({ name: 'jobs', to: { $case: 'afterPosition', value: parkedAt - 1n } });
    await eventually(() => handled.includes('/jobs/bad@1'), 15_000, () => JSON.stringify(deliveries));
    const replayed = await client.describeConsumerGroup('jobs');
    assert.equal(replayed.parkedCount, 0n);
    assert.deepEqual(replayed.parked, []);
  });

  it('sends a member that asks for batches several deliveries per message, each stream in order, and one per message to a member that does not', async () => {
    const streams = Array.from({ length: 12 }, (_, i) => `/batch/s${i}`);
    await client.createStream({ stream: '/batch', createParents: true }, READY);
    for (const stream of streams) await client.createStream({ stream });
    for (let round = 1; round <= 3; round++) await appendRound(streams, round);
    const settings = { partitions: 1, maxInFlight: 100 };
    await client.createConsumerGroup({ name: 'batched', selector: { stream: '/batch' }, settings });
    await client.createConsumerGroup({ name: 'single', selector: { stream: '/batch' }, settings });

    /** Joins with a raw Consume call, acks each message's deliveries once it arrived, until it has every entry of the /batch/s* streams. */
    async function drain(group: string, maxDeliveriesPerMessage: number | undefined) {
      const call = client.raw.consume({ group, memberName: group, ...(maxDeliveriesPerMessage === undefined ? {} : { maxDeliveriesPerMessage }) });
      const messageSizes: number[] = [];
      const versions = new Map<string, bigint[]>();
      let memberId = '';
      let handled = 0;
      try {
        for await (const response of call as AsyncIterable<ConsumeResponse>) {
          const message = response.message;
          if (message?.$case === 'joined') memberId = message.value.memberId;
          const deliveries = message?.$case === 'delivery' ? [message.value] : message?.$case === 'deliveries' ? message.value.deliveries : [];
          if (deliveries.length === 0) continue;
          messageSizes.push(deliveries.length);
          // One unacked entry per stream: a message never holds two of one stream.
          assert.equal(new Set(deliveries.map((d) => d.entry?.stream)).size, deliveries.length);
          for (const { entry } of deliveries) {
            if (!entry?.stream.startsWith('/batch/s')) continue;
            versions.set(entry.stream, [...(versions.get(entry.stream) ?? []), entry.version]);
            handled++;
          }
          await client.ack({ group, memberId, positions: deliveries.map((d) => d.entry?.position ?? 0n) });
          if (handled === streams.length * 4) break;
        }
      } finally {
        call.cancel();
      }
      // Each stream's creation (version 0), then its three appends.
      for (const stream of streams) assert.deepEqual(versions.get(stream), [0n, 1n, 2n, 3n], stream);
      return messageSizes;
    }

    const batched = await drain('batched', 50);
    // The first page read hands one entry of every stream out at once: in one message.
    assert.ok(batched.some((n) => n >= streams.length), `messages of ${batched.join(', ')} deliveries`);
    assert.ok(batched.every((n) => n <= 50));
    const single = await drain('single', undefined);
    assert.ok(single.every((n) => n === 1), `messages of ${single.join(', ')} deliveries`);
    assert.ok(single.length >= streams.length * 4);
  });

  it('acks "everything delivered to me up to position P" of a partition, and nothing of the others', async () => {
    const streams = Array.from({ length: 8 }, (_, i) => `/upto/s${i}`);
    await client.createStream({ stream: '/upto', createParents: true }, READY);
    for (const stream of streams) await client.createStream({ stream });
    await client.createConsumerGroup({ name: 'upto', selector: { stream: '/upto' }, settings: { partitions: 2, maxInFlight: 100, ackWaitMs: 60_000 } });
    const call = client.raw.consume({ group: 'upto', memberName: 'upto' });
    try {
      let memberId = '';
      const delivered: Array<{ partition: number; position: bigint; stream: string }> = [];
      for await (const response of call as AsyncIterable<ConsumeResponse>) {
        const message = response.message;
        if (message?.$case === 'joined') memberId = message.value.memberId;
        if (message?.$case === 'delivery' && message.value.entry) {
          delivered.push({ partition: message.value.partition, position: message.value.entry.position, stream: message.value.entry.stream });
        }
        // Every stream's creation entry is in flight (one per stream at a time).
        if (delivered.filter((d) => d.stream.startsWith('/upto/s')).length === streams.length) break;
      }
      const inPartition = (p: number) => delivered.filter((d) => d.partition === p);
      assert.ok(inPartition(0).length > 1 && inPartition(1).length > 0, 'entries in both partitions');
      // Up to the second-newest of partition 0: all of it but its newest; partition 1 untouched.
      const zero = inPartition(0).map((d) => d.position).sort((a, b) => (a < b ? -1 : 1));
      const limit = zero[zero.length - 2] ?? 0n;
      const answer = await client.ack({ group: 'upto', memberId, positions: [], upTo: [{ partition: 0, position: limit }, { partition: 0, position: 1n }] });
      assert.equal(answer.acked, zero.length - 1);
      // What the member holds now: the newest of partition 0, and all of partition 1.
      const again = await client.ack({ group: 'upto', memberId, positions: zero });
      assert.deepEqual([again.acked, again.ignored], [1, zero.length - 1]);
      const one = await client.ack({ group: 'upto', memberId, positions: inPartition(1).map((d) => d.position) });
      assert.deepEqual([one.acked, one.ignored], [inPartition(1).length, 0]);
    } finally {
      call.cancel();
    }
  });

  it('refuses bad management calls with the statuses the proto names', async () => {
    await client.createStream({ stream: '/a', createParents: true }, READY);
    await client.createConsumerGroup({ name: 'g', selector: { stream: '/a' } });
    await assert.rejects(client.createConsumerGroup({ name: 'g', selector: { stream: '/a' } }), AlreadyExistsError);
    await assert.rejects(client.createConsumerGroup({ name: 'h', selector: { stream: '/missing' } }), NotFoundError);
    await assert.rejects(client.describeConsumerGroup('nope'), NotFoundError);
    await assert.rejects(client.deleteConsumerGroup('nope'), NotFoundError);
    const invalid = await client.createConsumerGroup({ name: 'bad name', selector: { stream: '/a' }, settings: { partitions: 5000, ackWaitMs: 1 } }).catch((e: unknown) => e);
    assert.ok(invalid instanceof InvalidArgumentError);
    assert.deepEqual(invalid.violations.map((v) => v.field).sort(), ['name', 'settings.ack_wait_ms', 'settings.partitions']);
    const unchangeable = await client.updateConsumerGroup({ name: 'g', settings: { partitions: 3 } }).catch((e: unknown) => e);
    assert.ok(unchangeable instanceof InvalidArgumentError);
    const updated = await client.updateConsumerGroup({ name: 'g', settings: { maxInFlight: 7 } });
    assert.equal(updated.group?.settings?.maxInFlight, 7);
    assert.deepEqual((await client.listConsumerGroups()).groups.map((g) => g.name), ['g']);
    await client.deleteConsumerGroup('g');
    assert.deepEqual((await client.listConsumerGroups()).groups, []);
    // Consuming an unknown group ends the member with NOT_FOUND (not retried).
    const member = client.consume('g', async () => undefined);
    await assert.rejects(member.done, NotFoundError);
  });

  it('answers FAILED_PRECONDITION (CONSUMER_GROUPS_UNAVAILABLE) on a store that keeps no groups', async () => {
    const dataDir = tempDir();
    // The embedded store without its group state: what a store that keeps none would be.
    const withoutGroups = () =>
      new Proxy(new SqliteStore({ dataDir }), { get: (target, key) => (key === 'groups' ? undefined : Reflect.get(target, key, target) as unknown) });
    const bare = await startTestServer({ dataDir }, withoutGroups);
    const bareClient = connect(bare.address);
    try {
      await bareClient.createStream({ stream: '/a', createParents: true }, READY);
      const refused = await bareClient.createConsumerGroup({ name: 'g', selector: { stream: '/a' } }).catch((e: unknown) => e);
      assert.ok(refused instanceof FailedPreconditionError);
      assert.equal(refused.reason, 'CONSUMER_GROUPS_UNAVAILABLE');
      await assert.rejects(bareClient.listConsumerGroups(), FailedPreconditionError);
      await assert.rejects(bareClient.consume('g', async () => undefined).done, FailedPreconditionError);
    } finally {
      bareClient.close();
      await bare.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  /**
   * Runs `body` with the suite's server on a data folder of its own, which `restart` stops and
   * starts again on; the suite's usual server comes back after.
   */
  async function onDataFolder(body: (restart: () => Promise<void>) => Promise<void>): Promise<void> {
    const dataDir = tempDir();
    const start = async () => {
      client.close();
      await server.stop();
      server = await startTestServer({ dataDir });
      client = connect(server.address);
    };
    await start();
    try {
      await body(start);
    } finally {
      await Promise.all(consumers.splice(0).map((c) => c.stop()));
      client.close();
      await server.stop();
      server = await startTestServer();
      client = connect(server.address);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('after a server restart, delivers again only what was not acked: not what was acked after an older entry still in flight', async () => {
    let release: () => void = () => undefined;
    const slowHandled = new Promise<void>((resolve) => (release = resolve));
    let member: GroupConsumer | undefined;
    try {
      await onDataFolder(async (restart) => {
        await client.createStream({ stream: '/o/slow', createParents: true }, READY);
        await client.createStream({ stream: '/o/fast' });
        await client.createConsumerGroup({ name: 'o', selector: { stream: '/o' }, settings: { partitions: 1 } });
        // The slow stream's entry comes first in the feed and is never acked by this member.
        await client.append({ stream: '/o/slow', events: [jsonEvent('e', { slow: true })] });
        for (let i = 0; i < 3; i++) await client.append({ stream: '/o/fast', events: [jsonEvent('e', { i })] });
        const before: string[] = [];
        member = client.consume('o', async (entry) => {
          before.push(`${entry.stream}@${entry.version}`);
          if (entry.stream === '/o/slow' && entry.version === 1n) await slowHandled;
        }, { concurrency: 4 });
        // Everything handled, and acked but /o/slow@1: the partition's position waits before it.
        await eventually(async () => {
          const [partition] = (await client.describeConsumerGroup('o')).partitions;
          assert.ok(before.includes('/o/fast@3'), before.join(' '));
          assert.equal(partition?.lagEntries, 1n, 'one entry not done');
          assert.equal(partition?.inFlight, 1);
        });
        await restart();

        const after: string[] = [];
        consumers.push(client.consume('o', async (entry) => void after.push(`${entry.stream}@${entry.version}`)));
        await client.append({ stream: '/o/fast', events: [jsonEvent('e', { i: 3 })] }, READY);
        await eventually(() => after.includes('/o/fast@4') && after.includes('/o/slow@1'));
        // Not /o/fast@1..3 again: they were acked, after /o/slow@1.
        assert.deepEqual(after.sort(), ['/o/fast@4', '/o/slow@1']);
      });
    } finally {
      release();
      await member?.stop().catch(() => undefined);
    }
  });

  it('carries on from the stored positions after a server restart, and a reset replays', async () => {
    await onDataFolder(async (restart) => {
      await client.createStream({ stream: '/r/x', createParents: true }, READY);
      await client.createConsumerGroup({ name: 'r', selector: { stream: '/r/x' }, settings: { partitions: 1 } });
      const seen: string[] = [];
      const member = client.consume('r', async (entry) => void seen.push(`${entry.stream}@${entry.version}`));
      for (let i = 0; i < 3; i++) await client.append({ stream: '/r/x', events: [jsonEvent('e', { i })] });
      await eventually(() => seen.length === 4);
      await member.stop();
      await restart();

      await client.append({ stream: '/r/x', events: [jsonEvent('e', { i: 3 })] }, READY);
      consumers.push(client.consume('r', async (entry) => void seen.push(`${entry.stream}@${entry.version}`)));
      await eventually(() => seen.length === 5);
      assert.deepEqual(seen, ['/r/x@0', '/r/x@1', '/r/x@2', '/r/x@3', '/r/x@4']);

      await client.resetConsumerGroup({ name: 'r', to: { $case: 'afterPosition', value: 0n } });
      await eventually(() => seen.length === 10);
      assert.deepEqual(seen.slice(5), ['/r/x@0', '/r/x@1', '/r/x@2', '/r/x@3', '/r/x@4']);
    });
  });
});
