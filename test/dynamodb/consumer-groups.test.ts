import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, jsonEvent, type EventHorizon, type FeedEntry, type GroupConsumer } from '../../clients/ts/src';
import { CHECKPOINT_INTERVAL_MS } from '../../src/groups/consumer-groups';
import { partitionOf } from '../../src/groups/partition-hash';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { eventually } from '../helpers/eventually';
import { checkGroupOrder, type Handling } from '../helpers/group-order';
import { spawnServer, type ServerProcess } from '../helpers/process';
import { startTestServer, type TestServer } from '../helpers/server';

/** Short leases (the defaults are 15 s and 5 s), so that partitions move within seconds. */
const LEASE_MS = 2000;
const RENEW_MS = 500;
const ACK_WAIT_MS = 1500;
const PARTITIONS = 8;
const MAX_IN_FLIGHT = 10;
const STREAMS = 40;
/** How much later than its checkpoint interval a server's ack may reach the store: the ack's way and the save's. */
const SAVE_SLACK_MS = 500;

/** A member of the group in this process, connected to one server, recording what it handles and its assignments. */
class Member {
  readonly consumer: GroupConsumer;
  partitions: number[] = [];

  constructor(
    readonly name: string,
    readonly client: EventHorizon,
    handlings: Handling[],
  ) {
    this.consumer = client.consume(
      'g',
      async (entry: FeedEntry) => {
        const handling: Handling = { member: name, stream: entry.stream, version: entry.version, start: performance.now(), end: undefined };
        handlings.push(handling);
        await sleep(2);
        handling.end = performance.now();
      },
      {
        concurrency: 4,
        memberName: name,
        reconnectBackoff: { initialMs: 50, maxMs: 200 },
        onEvent: (event) => {
          if (event.kind === 'assignment') this.partitions = event.partitions;
        },
      },
    );
    this.consumer.done.catch(() => undefined);
  }

  /** Leaves; bounded, since its server may be gone (then its acks cannot go anywhere). */
  async stop(): Promise<void> {
    await Promise.race([this.consumer.stop().catch(() => undefined), sleep(3000)]);
    this.client.close();
  }
}

describe('DynamoDB: consumer groups across two servers (members on different servers)', function () {
  this.timeout(180_000);
  let local: DynamoDbLocal;

  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  it("spreads partitions over both servers; a stopped server's go to the other, a killed one's after the lease and the ack wait; never one stream on two members at once", async () => {
    const prefix = freshTablePrefix();
    const settings = { groupLeaseMs: LEASE_MS, groupLeaseRenewMs: RENEW_MS, pollMaxIntervalMs: 200 };
    // The first server runs the feed's indexer; the others only serve.
    const first: TestServer = await startTestServer(settings, () => localStore(local, prefix));
    let second: TestServer | undefined = await startTestServer(settings, () => localStore(local, prefix, { feedIndexer: false }));
    let third: ServerProcess | undefined;
    const writer = connect(first.address);
    const members: Member[] = [];
    const handlings: Handling[] = [];
    let appending = true;
    let writers: Promise<void> = Promise.resolve();
    try {
      const streams = Array.from({ length: STREAMS }, (_, i) => `/g/s${i}`);
      await writer.createStream({ stream: '/g', createParents: true }, { waitForReady: true });
      for (const stream of streams) await writer.createStream({ stream });
      await writer.createConsumerGroup({ name: 'g', selector: { stream: '/g' }, settings: { partitions: PARTITIONS, ackWaitMs: ACK_WAIT_MS, maxInFlight: MAX_IN_FLIGHT } });
      writers = (async () => {
        for (let n = 0; appending; n++) {
          await writer.append({ stream: streams[n % STREAMS] ?? '/g/s0', events: [jsonEvent('n', { n })] });
          await sleep(5);
        }
      })();

      const onFirst = new Member('on-first', connect(first.address), handlings);
      const onSecond = new Member('on-second', connect(second.address), handlings);
      members.push(onFirst, onSecond);
      const handledBy = (member: Member) => handlings.filter((h) => h.member === member.name && h.end !== undefined).length;
      // Spread: half the partitions each, none on both, and both members at work.
      await eventually(
        () => onFirst.partitions.length === PARTITIONS / 2 && onSecond.partitions.length === PARTITIONS / 2 && handledBy(onFirst) > 0 && handledBy(onSecond) > 0,
        30_000,
        () => `first ${onFirst.partitions.join(',')} (${handledBy(onFirst)}), second ${onSecond.partitions.join(',')} (${handledBy(onSecond)})`,
      );
      assert.equal(new Set([...onFirst.partitions, ...onSecond.partitions]).size, PARTITIONS);
      // Each server's gauge says what it holds.
      const heldOn = async (server: TestServer) => {
        const metrics = await (await fetch(`http://${server.server.metricsAddress}/metrics`)).text();
        return Number(/eventhorizon_consumer_group_partitions_held\{group="g"\} (\d+)/.exec(metrics)?.[1] ?? -1);
      };
      const secondServer = second;
      await eventually(async () => assert.deepEqual([await heldOn(first), await heldOn(secondServer)], [PARTITIONS / 2, PARTITIONS / 2]));
      // Describe on either server shows the whole group: both members, each with its server and
      // partitions, and every partition with the server and member holding it.
      for (const server of [first, secondServer]) {
        await eventually(async () => {
          const described = await connect(server.address).describeConsumerGroup('g');
          const byName = new Map(described.members.map((m) => [m.memberName, m]));
          assert.deepEqual([...byName.keys()].sort(), ['on-first', 'on-second']);
          assert.deepEqual(byName.get('on-first')?.partitions, [...onFirst.partitions].sort((a, b) => a - b));
          assert.deepEqual(byName.get('on-second')?.partitions, [...onSecond.partitions].sort((a, b) => a - b));
          assert.notEqual(byName.get('on-first')?.serverId, byName.get('on-second')?.serverId);
          for (const partition of described.partitions) {
            const owner = onFirst.partitions.includes(partition.partition) ? byName.get('on-first') : byName.get('on-second');
            assert.equal(partition.memberId, owner?.memberId, `partition ${partition.partition}`);
            assert.equal(partition.serverId, owner?.serverId, `partition ${partition.partition}`);
          }
        }, 10_000);
      }

      /** Milliseconds from `since` until the first member handled an entry of each of `partitions`. */
      const deliveredAgain = (partitions: number[], since: number) => {
        let last = 0;
        for (const partition of partitions) {
          const first = handlings.find((h) => h.member === onFirst.name && h.start > since && partitionOf(h.stream, PARTITIONS) === partition);
          if (!first) return undefined;
          last = Math.max(last, first.start - since);
        }
        return last;
      };

      // The second server stops: its partitions go to the first.
      const fromSecond = onSecond.partitions;
      const stoppedAt = performance.now();
      await second.stop();
      second = undefined;
      await eventually(() => onFirst.partitions.length === PARTITIONS, 30_000, () => `first holds ${onFirst.partitions.join(',')}`);
      const afterStop = performance.now() - stoppedAt;
      await eventually(() => deliveredAgain(fromSecond, stoppedAt) !== undefined, 30_000, () => 'the stopped server\'s partitions are not delivered again');
      const deliveredAfterStop = deliveredAgain(fromSecond, stoppedAt) ?? 0;
      await onSecond.stop();

      // A third server, in a process of its own, gets half; then it is killed.
      third = await spawnServer({
        EH_STORE: 'dynamodb',
        EH_DYNAMODB_ENDPOINT: local.endpoint,
        EH_DYNAMODB_REGION: local.connection.region ?? 'us-east-1',
        EH_DYNAMODB_TABLE_PREFIX: prefix,
        EH_DYNAMODB_FEED_INDEXER: 'false',
        EH_GROUP_LEASE: `${LEASE_MS}ms`,
        EH_GROUP_LEASE_RENEW: `${RENEW_MS}ms`,
        EH_POLL_MAX_INTERVAL: '200ms',
        AWS_ACCESS_KEY_ID: local.connection.credentials?.accessKeyId ?? '',
        AWS_SECRET_ACCESS_KEY: local.connection.credentials?.secretAccessKey ?? '',
        NODE_NO_WARNINGS: '1',
      });
      const onThird = new Member('on-third', connect(third.address), handlings);
      members.push(onThird);
      await eventually(
        () => onFirst.partitions.length === PARTITIONS / 2 && onThird.partitions.length === PARTITIONS / 2 && handledBy(onThird) > 0,
        30_000,
        () => `first ${onFirst.partitions.join(',')}, third ${onThird.partitions.join(',')} (${handledBy(onThird)})`,
      );
      const fromThird = onThird.partitions;
      const killedAt = performance.now();
      third.child.kill('SIGKILL');
      await third.exited;
      await eventually(() => onFirst.partitions.length === PARTITIONS, 30_000, () => `first holds ${onFirst.partitions.join(',')}`);
      const afterKill = performance.now() - killedAt;
      await eventually(() => deliveredAgain(fromThird, killedAt) !== undefined, 30_000, () => 'the killed server\'s partitions are not delivered again');
      const deliveredAfterKill = deliveredAgain(fromThird, killedAt) ?? 0;
      appending = false;
      await writers;

      // Every entry of the subtree handled.
      const expected = new Map<string, bigint>();
      const lastInPartition = new Map<number, bigint>();
      for (let after = 0n; ; ) {
        const page = await writer.readFeed({ selector: { stream: '/g' }, afterPosition: after, limit: 1000 });
        for (const entry of page.entries) {
          expected.set(`${entry.stream}@${entry.version}`, entry.position);
          lastInPartition.set(partitionOf(entry.stream, PARTITIONS), entry.position);
        }
        after = page.nextAfterPosition;
        if (!page.more) break;
      }
      const handled = () => new Set(handlings.filter((h) => h.end !== undefined).map((h) => `${h.stream}@${h.version}`));
      await eventually(() => handled().size === expected.size, 60_000, () => `handled ${handled().size} of ${expected.size}`);
      assert.deepEqual([...handled()].sort(), [...expected.keys()].sort());

      // Each stream in version order (a redelivery repeats a version), never on two members at
      // once; each member has a server of its own. The stop and the third server's arrival move
      // partitions exactly (position and progress saved); the kill may repeat what the third
      // server's member acked since that server's last save.
      const { redelivered, replayed } = checkGroupOrder(handlings, {
        serverOf: (member) => member,
        killedMembers: new Map(),
        killedServers: new Map([[onThird.name, killedAt]]),
        saveLagMs: CHECKPOINT_INTERVAL_MS + SAVE_SLACK_MS,
      });
      // Redeliveries only of what the stopped and the killed server had in flight.
      assert.ok(redelivered.length <= 2 * MAX_IN_FLIGHT, `${redelivered.length} duplicates`);

      // DescribeConsumerGroup on the first server: every partition's stored position past its last entry.
      await eventually(async () => {
        const described = await writer.describeConsumerGroup('g');
        for (const partition of described.partitions) {
          assert.ok(partition.position >= (lastInPartition.get(partition.partition) ?? 0n), `partition ${partition.partition} at ${partition.position}`);
        }
      }, 30_000);
      console.log(
        `      ${expected.size} entries; after a stop: partitions assigned again in ${Math.round(afterStop)} ms, delivered in ${Math.round(deliveredAfterStop)} ms; ` +
          `after a kill: ${Math.round(afterKill)} ms, ${Math.round(deliveredAfterKill)} ms (lease ${LEASE_MS} ms, renew ${RENEW_MS} ms, ack wait ${ACK_WAIT_MS} ms); ${redelivered.length} handled twice, ${replayed} again after the kill`,
      );
    } finally {
      appending = false;
      await writers.catch(() => undefined);
      await Promise.all(members.map((m) => m.stop()));
      writer.close();
      third?.child.kill('SIGKILL');
      await second?.stop();
      await first.stop();
    }
  });
});
