import assert from 'node:assert/strict';
import { ConsumerGroupAlreadyExistsError, ConsumerGroupNotFoundError, StoreUnavailableError } from '../../src/core/errors';
import type { ConsumerGroupDefinition, ConsumerGroupStore, EventStore } from '../../src/store/port';
import type { StoreFactory } from './store-conformance';

const at = new Date('2026-01-02T03:04:05.678Z');

function definition(name: string, partitions = 3): ConsumerGroupDefinition {
  return {
    name,
    subtree: { path: '/orders', descendants: true },
    eventTypes: ['order.*'],
    settings: { partitions, ackWaitMs: 30_000, maxDeliveries: 5, maxInFlight: 10 },
    startPosition: 7n,
    createdAt: at,
  };
}

/**
 * The consumer-group part of the storage conformance suite: what the group coordinator relies
 * on (docs/consumer-groups.md), on every store that keeps groups.
 */
export function runGroupsConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}: consumer groups`, function () {
    this.timeout(60_000);
    let store: EventStore;
    let groups: ConsumerGroupStore;

    beforeEach(async () => {
      store = await factory.create();
      await store.init(new Uint8Array(Buffer.from('root')), at);
      assert.ok(store.groups, 'the store keeps consumer groups');
      groups = store.groups;
    });
    afterEach(async () => {
      if (factory.dispose) await factory.dispose(store);
      else await store.close();
    });

    it('creates a group once, with every partition at its start position, and lists it', async () => {
      const created = await groups.createGroup(definition('projector'));
      assert.equal(created.revision, 1n);
      await assert.rejects(groups.createGroup(definition('projector')), ConsumerGroupAlreadyExistsError);
      const got = await groups.getGroup('projector');
      assert.deepEqual(got, { ...definition('projector'), revision: 1n });
      assert.equal(await groups.getGroup('missing'), undefined);
      const partitions = await groups.getGroupPartitions('projector');
      assert.deepEqual(
        partitions.map((p) => [p.partition, p.position, p.revision]),
        [
          [0, 7n, 1n],
          [1, 7n, 1n],
          [2, 7n, 1n],
        ],
      );
      await groups.createGroup(definition('another', 1));
      assert.deepEqual(
        (await groups.listGroups()).map((g) => g.name),
        ['another', 'projector'],
      );
    });

    it('saves a partition only while its revision matches (one writer wins), with its owner and lease', async () => {
      await groups.createGroup(definition('g'));
      const lease = new Date(at.getTime() + 10_000);
      const [first] = await groups.saveGroupPartitions('g', [{ partition: 1, position: 20n, expectedRevision: 1n, owner: 'a', leaseExpiresAt: lease }], []);
      assert.deepEqual(first, { partition: 1, position: 20n, revision: 2n, owner: 'a', leaseExpiresAt: lease });
      // A writer that read revision 1 loses, and nothing of its save is written.
      const [stale, fresh] = await groups.saveGroupPartitions(
        'g',
        [
          { partition: 1, position: 99n, expectedRevision: 1n, owner: 'b' },
          { partition: 2, position: 30n, expectedRevision: 1n },
        ],
        [],
      );
      assert.equal(stale, undefined);
      assert.equal(fresh?.position, 30n);
      const stored = await groups.getGroupPartitions('g');
      assert.deepEqual(
        stored.map((p) => [p.position, p.revision, p.owner]),
        [
          [7n, 1n, undefined],
          [20n, 2n, 'a'],
          [30n, 2n, undefined],
        ],
      );
      await assert.rejects(groups.saveGroupPartitions('missing', [], []), ConsumerGroupNotFoundError);
    });

    it("keeps a partition's progress past its position with it, replaced by each save, gone when a save has none", async () => {
      await groups.createGroup(definition('g'));
      // Positions past 2^53 too, and a long list of not-done positions.
      const far = 2n ** 60n;
      const notDone = Array.from({ length: 300 }, (_, i) => far + 2n + BigInt(i * i));
      const progress = { through: far + 200_000n, notDone };
      const [saved] = await groups.saveGroupPartitions('g', [{ partition: 0, position: far, expectedRevision: 1n, progress }], []);
      assert.deepEqual(saved?.progress, progress);
      assert.deepEqual((await groups.getGroupPartitions('g'))[0]?.progress, progress);
      const [replaced] = await groups.saveGroupPartitions('g', [{ partition: 0, position: far + 5n, expectedRevision: 2n, owner: 'a', leaseExpiresAt: at, progress: { through: far + 9n, notDone: [far + 6n] } }], []);
      assert.deepEqual(replaced?.progress, { through: far + 9n, notDone: [far + 6n] });
      assert.deepEqual((await groups.getGroupPartitions('g'))[0]?.progress, { through: far + 9n, notDone: [far + 6n] });
      await groups.saveGroupPartitions('g', [{ partition: 0, position: far + 10n, expectedRevision: 3n }], []);
      const [cleared] = await groups.getGroupPartitions('g');
      assert.equal(cleared?.position, far + 10n);
      assert.equal(cleared?.progress, undefined);
    });

    it('keeps parked entries in position order, once each, and counts them', async () => {
      await groups.createGroup(definition('g'));
      const parked = (position: bigint) => ({ position, stream: '/orders/1', version: position, deliveries: 5, reason: 'max-deliveries', parkedAt: at });
      await groups.saveGroupPartitions('g', [], [parked(9n), parked(3n)]);
      await groups.saveGroupPartitions('g', [], [parked(3n)]);
      assert.deepEqual(await groups.listParked('g', 0n, 10), [parked(3n), parked(9n)]);
      assert.deepEqual(await groups.listParked('g', 3n, 10), [parked(9n)]);
      assert.equal(await groups.countParked('g'), 2);
    });

    it('updates settings only while the revision matches, and deletes everything of a group', async () => {
      await groups.createGroup(definition('g'));
      const settings = { partitions: 3, ackWaitMs: 1000, maxDeliveries: 2, maxInFlight: 1 };
      const updated = await groups.updateGroupSettings('g', settings, 1n);
      assert.equal(updated?.revision, 2n);
      assert.deepEqual((await groups.getGroup('g'))?.settings, settings);
      assert.equal(await groups.updateGroupSettings('g', settings, 1n), undefined);
      await assert.rejects(groups.updateGroupSettings('missing', settings, 1n), ConsumerGroupNotFoundError);
      await groups.saveGroupPartitions('g', [], [{ position: 1n, stream: '/orders/1', version: 1n, deliveries: 1, reason: 'denied', parkedAt: at }]);

      assert.equal(await groups.deleteGroup('g'), true);
      assert.equal(await groups.deleteGroup('g'), false);
      assert.equal(await groups.getGroup('g'), undefined);
      assert.deepEqual(await groups.getGroupPartitions('g'), []);
      assert.equal(await groups.countParked('g'), 0);
      // The name is free again, with fresh state.
      await groups.createGroup(definition('g', 1));
      assert.deepEqual((await groups.getGroupPartitions('g')).map((p) => p.revision), [1n]);
    });

    it('records the servers of a group (members 0 removes one), and forgets them with the group', async () => {
      await groups.createGroup(definition('g'));
      const later = new Date(at.getTime() + 5000);
      await groups.saveGroupServer('g', { serverId: 'b', members: 2, expiresAt: at });
      await groups.saveGroupServer('g', { serverId: 'a', members: 1, expiresAt: at });
      await groups.saveGroupServer('g', { serverId: 'b', members: 3, expiresAt: later });
      assert.deepEqual(await groups.listGroupServers('g'), [
        { serverId: 'a', members: 1, expiresAt: at },
        { serverId: 'b', members: 3, expiresAt: later },
      ]);
      await groups.saveGroupServer('g', { serverId: 'a', members: 0, expiresAt: later });
      assert.deepEqual((await groups.listGroupServers('g')).map((s) => s.serverId), ['b']);
      await assert.rejects(groups.saveGroupServer('missing', { serverId: 'a', members: 1, expiresAt: at }), ConsumerGroupNotFoundError);
      assert.deepEqual(await groups.listGroupServers('missing'), []);
      await groups.deleteGroup('g');
      await groups.createGroup(definition('g'));
      assert.deepEqual(await groups.listGroupServers('g'), []);
    });

    it('saves more partitions and parked entries than one DynamoDB transaction holds', async () => {
      await groups.createGroup(definition('wide', 150));
      assert.equal((await groups.listGroups()).length, 1);
      const partitions = await groups.getGroupPartitions('wide');
      assert.equal(partitions.length, 150);
      const parked = Array.from({ length: 120 }, (_, i) => ({ position: BigInt(i + 1), stream: `/orders/${i}`, version: 1n, deliveries: 5, reason: 'max-deliveries', parkedAt: at }));
      const updates = partitions.map((p) => ({ partition: p.partition, position: 500n + BigInt(p.partition), expectedRevision: p.partition === 3 ? 9n : 1n }));
      const saved = await groups.saveGroupPartitions('wide', updates, parked);
      assert.equal(saved.filter((p) => p === undefined).length, 1, 'only the partition of a stale revision is refused');
      assert.equal(saved[3], undefined);
      assert.equal(saved[149]?.position, 649n);
      assert.equal(await groups.countParked('wide'), 120);
      const stored = await groups.getGroupPartitions('wide');
      assert.equal(stored[3]?.position, 7n);
      assert.equal(stored[149]?.revision, 2n);
      // A reset to position 15 delivers again what was parked after it: 105 entries leave the list,
      // more than one DynamoDB transaction deletes.
      assert.equal(await groups.unparkAfter('wide', 15n), 105);
      assert.deepEqual((await groups.listParked('wide', 0n, 200)).map((p) => p.position), Array.from({ length: 15 }, (_, i) => BigInt(i + 1)));
      assert.equal(await groups.countParked('wide'), 15);
      assert.equal(await groups.unparkAfter('wide', 15n), 0);
      assert.equal(await groups.unparkAfter('unknown', 0n), 0);
    });

    it('after close, rejects every group method with StoreUnavailableError', async () => {
      await store.close();
      const settings = definition('g').settings;
      const calls: Record<keyof ConsumerGroupStore, () => Promise<unknown>> = {
        createGroup: () => groups.createGroup(definition('g')),
        getGroup: () => groups.getGroup('g'),
        listGroups: () => groups.listGroups(),
        updateGroupSettings: () => groups.updateGroupSettings('g', settings, 1n),
        deleteGroup: () => groups.deleteGroup('g'),
        getGroupPartitions: () => groups.getGroupPartitions('g'),
        saveGroupPartitions: () => groups.saveGroupPartitions('g', [], []),
        listParked: () => groups.listParked('g', 0n, 1),
        countParked: () => groups.countParked('g'),
        unparkAfter: () => groups.unparkAfter('g', 0n),
        saveGroupServer: () => groups.saveGroupServer('g', { serverId: 'a', members: 1, expiresAt: at }),
        listGroupServers: () => groups.listGroupServers('g'),
      };
      for (const [method, call] of Object.entries(calls)) {
        await assert.rejects(call(), StoreUnavailableError, method);
      }
    });

    it('keeps groups and positions across a reopen', async () => {
      await groups.createGroup(definition('g'));
      await groups.saveGroupPartitions('g', [{ partition: 0, position: 42n, expectedRevision: 1n }], []);
      await store.close();
      const reopened = await factory.reopen(store);
      try {
        assert.ok(reopened.groups);
        assert.equal((await reopened.groups.getGroup('g'))?.name, 'g');
        assert.equal((await reopened.groups.getGroupPartitions('g'))[0]?.position, 42n);
      } finally {
        await reopened.close();
      }
    });
  });
}
