import assert from 'node:assert/strict';
import { orderRound } from '../../src/store/dynamodb/feed-indexer';

const records = (...labels: string[]) =>
  labels.map((label) => {
    const [stream = '', version = ''] = label.split('@');
    return { stream, version: BigInt(version) };
  });
const labels = (list: Array<{ stream: string; version: bigint }>) => list.map(({ stream, version }) => `${stream}@${version}`);

/**
 * How the DynamoDB feed indexer orders the records of one round: each stream in version order,
 * once. The records of one group-committed transaction come from DynamoDB Streams in any order,
 * and a read may end between them.
 */
describe('DynamoDB feed indexer: ordering a round (orderRound)', () => {
  it('sorts each stream by version, drops what is indexed, and holds back what follows a gap', () => {
    const known = new Map([['/a', 4n]]);
    const round = orderRound(records('/a@6', '/a@5', '/a@3', '/a@8', '/b@0', '/b@1'), (s) => known.get(s), new Set());
    assert.deepEqual(labels(round.indexed), ['/a@5', '/a@6', '/b@0', '/b@1']);
    assert.deepEqual(labels(round.pending), ['/a@8']);
  });

  it('lets a stream it knows nothing of wait a round: an earlier version of the same transaction may come next', () => {
    const indexed = new Map<string, bigint>();
    const unsure = new Set<string>();
    // Round 1 ends between the two entries of /t's transaction: version 8 came first.
    const first = orderRound(records('/t@8'), (s) => indexed.get(s), unsure);
    assert.deepEqual(labels(first.indexed), [], 'not indexed yet: version 7 may be on its way');
    // Round 2: the held-back entry first, then what was read.
    const second = orderRound([...first.pending, ...records('/t@7')], (s) => indexed.get(s), unsure);
    assert.deepEqual(labels(second.indexed), ['/t@7', '/t@8'], 'both, in version order: none lost');
    assert.deepEqual(second.pending, []);
  });

  it('indexes such a stream after the round when nothing earlier came (its earlier versions were indexed long ago)', () => {
    const unsure = new Set<string>();
    const first = orderRound(records('/old@41'), () => undefined, unsure);
    const second = orderRound(first.pending, () => undefined, unsure);
    assert.deepEqual(labels(second.indexed), ['/old@41']);
    assert.equal(unsure.size, 0);
  });

  it('indexes a new stream at once: version 0 has nothing before it', () => {
    const round = orderRound(records('/new@1', '/new@0'), () => undefined, new Set());
    assert.deepEqual(labels(round.indexed), ['/new@0', '/new@1']);
  });
});
