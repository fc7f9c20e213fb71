import assert from 'node:assert/strict';
import { actionMatches, permissionsOf } from '../../src/auth/actions';
import { assignPartitions, serverShare } from '../../src/groups/assignment';
import { fnv1a32, partitionOf } from '../../src/groups/partition-hash';

const API = '/eventhorizon.v1.EventHorizon/';

describe('consumer groups: partition hash, assignment, permissions', () => {
  it('hashes stream paths with FNV-1a 32 (published test vectors): the function must never change', () => {
    const bytes = (text: string) => Buffer.from(text, 'utf8');
    assert.equal(fnv1a32(bytes('')), 0x811c9dc5);
    assert.equal(fnv1a32(bytes('a')), 0xe40c292c);
    assert.equal(fnv1a32(bytes('foobar')), 0xbf9cf968);
    // Pinned partitions of real paths: a change here moves streams between partitions.
    const paths = ['/orders/1', '/orders/2', '/tenants/acme/ø'];
    assert.deepEqual(paths.map((path) => partitionOf(path, 16)), [3, 6, 8]);
    assert.deepEqual(paths.map((path) => partitionOf(path, 1024)), [627, 6, 216]);
  });

  it('spreads partitions evenly and keeps them where they are when it can', () => {
    const one = assignPartitions(8, ['a'], new Map());
    assert.deepEqual([...one.values()], Array(8).fill('a'));
    const two = assignPartitions(8, ['a', 'b'], one);
    const count = (map: Map<number, string>, member: string) => [...map.values()].filter((m) => m === member).length;
    assert.equal(count(two, 'a'), 4);
    assert.equal(count(two, 'b'), 4);
    // a kept 4 of its own; b got the rest.
    const three = assignPartitions(8, ['a', 'b', 'c'], two);
    assert.deepEqual([count(three, 'a'), count(three, 'b'), count(three, 'c')], [3, 3, 2]);
    for (const [partition, member] of three) if (member !== 'c') assert.equal(two.get(partition), member, `partition ${partition} moved needlessly`);
    // b leaves: its partitions go to the others, nothing else moves.
    const after = assignPartitions(8, ['a', 'c'], new Map([...three].filter(([, m]) => m !== 'b')));
    assert.deepEqual([count(after, 'a'), count(after, 'c')], [4, 4]);
    for (const [partition, member] of three) if (member !== 'b') assert.equal(after.get(partition), member);
    assert.equal(assignPartitions(4, [], one).size, 0);
    // Across servers: only the partitions held here are spread.
    const held = assignPartitions([1, 5, 6], ['a', 'b'], new Map([[5, 'b']]));
    assert.deepEqual([...held.keys()].sort(), [1, 5, 6]);
    assert.equal(held.get(5), 'b');
  });

  it("gives each server its members' share of the partitions, the same whichever server computes it", () => {
    const servers = [
      { serverId: 'b', members: 1 },
      { serverId: 'a', members: 2 },
      { serverId: 'c', members: 0 },
    ];
    // 16 over 3 members: 6, 5, 5; server a has the first two (by id), b the third.
    assert.deepEqual(['a', 'b', 'c'].map((id) => serverShare(16, id, servers)), [11, 5, 0]);
    assert.deepEqual(['a', 'b'].map((id) => serverShare(16, id, [...servers].reverse())), [11, 5]);
    // More members than partitions: some get none; the shares still add up.
    const many = [{ serverId: 'x', members: 3 }, { serverId: 'y', members: 3 }];
    assert.deepEqual(['x', 'y'].map((id) => serverShare(4, id, many)), [3, 1]);
    assert.equal(serverShare(4, 'x', []), 0);
  });

  it('needs consumer-group actions of their own for management, which "stream:*" does not grant', () => {
    assert.deepEqual(permissionsOf(`${API}CreateConsumerGroup`, { name: 'g', selector: { stream: '/orders' } }), [
      { action: 'consumer-group:manage', resource: '/$consumer-groups/g' },
      { action: 'stream:read', resource: '/orders' },
    ]);
    for (const method of ['UpdateConsumerGroup', 'DeleteConsumerGroup', 'ResetConsumerGroup']) {
      assert.deepEqual(permissionsOf(`${API}${method}`, { name: 'g' }), [{ action: 'consumer-group:manage', resource: '/$consumer-groups/g' }]);
    }
    assert.deepEqual(permissionsOf(`${API}DescribeConsumerGroup`, { name: 'g' }), [{ action: 'consumer-group:describe', resource: '/$consumer-groups/g' }]);
    assert.deepEqual(permissionsOf(`${API}ListConsumerGroups`, {}), [{ action: 'consumer-group:describe', resource: '/$consumer-groups' }]);
    // Consume and Ack: a known key; the handler checks stream:read on the group's streams.
    assert.deepEqual(permissionsOf(`${API}Consume`, { group: 'g' }), []);
    assert.deepEqual(permissionsOf(`${API}Ack`, { group: 'g' }), []);
    assert.equal(permissionsOf(`${API}NoSuchMethod`, {}), undefined);
    assert.equal(actionMatches('stream:*', 'consumer-group:manage'), false);
    assert.equal(actionMatches('stream:*', 'consumer-group:describe'), false);
    assert.equal(actionMatches('consumer-group:*', 'consumer-group:manage'), true);
    assert.equal(actionMatches('*', 'consumer-group:manage'), true);
  });
});
