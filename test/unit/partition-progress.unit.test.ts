import assert from 'node:assert/strict';
import { FeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { CorruptDataError } from '../../src/core/errors';
import { PartitionState, type Work } from '../../src/groups/consumer-groups';
import { decodePartitionProgress, encodePartitionProgress } from '../../src/store/partition-progress';

/** An entry the reader took, at a position. */
function work(position: bigint): Work {
  return { entry: FeedEntry.fromPartial({ stream: `/s/${position}`, position }), partition: 0, deliveries: 0 };
}

describe("consumer groups: a partition's progress past its position", () => {
  it('stores every entry read and not done, up to how far the reader got', () => {
    const state = new PartitionState(0, 10n, 1n);
    state.startAt(10n, undefined);
    assert.equal(state.progress(), undefined, 'nothing read');
    const taken = [12n, 15n, 20n].map(work);
    for (const w of taken) state.add(w);
    state.readTo(25n);
    state.finish(taken[0] as Work);
    state.finish(taken[2] as Work);
    // The runtime moves the position to just before the oldest entry not done.
    state.position = 14n;
    assert.deepEqual(state.progress(), { through: 25n, notDone: [15n] });
    state.finish(taken[1] as Work);
    state.position = 25n;
    assert.equal(state.progress(), undefined, 'everything read is done');
  });

  it('stores at most 500 not-done positions, and claims done no further than just before the first one left out', () => {
    const state = new PartitionState(0, 0n, 1n);
    state.startAt(0n, undefined);
    const taken = Array.from({ length: 600 }, (_, i) => work(BigInt(2 * i + 1)));
    for (const w of taken) state.add(w);
    state.readTo(5000n);
    const progress = state.progress();
    assert.equal(progress?.notDone.length, 500);
    assert.deepEqual(progress?.notDone.slice(0, 3), [1n, 3n, 5n]);
    // The 501st not-done entry is at 1001: everything before it and not listed is done, nothing after is claimed.
    assert.equal(progress?.through, 1000n);
  });

  it('skips what the previous holder stored as done, keeps what it did not read yet, and forgets it once read past', () => {
    const state = new PartitionState(0, 0n, 1n);
    state.startAt(10n, { through: 100n, notDone: [50n, 70n] });
    assert.deepEqual([20n, 50n, 70n, 100n, 101n].map((p) => state.doneBefore(p)), [true, false, false, true, false]);
    // The reader got to 60 and took the one not done there.
    state.add(work(50n));
    state.readTo(60n);
    assert.deepEqual(state.progress(), { through: 100n, notDone: [50n, 70n] });
    state.readTo(100n);
    assert.equal(state.doneBefore(20n), false, 'forgotten once read past');
    assert.deepEqual(state.progress(), { through: 100n, notDone: [50n] });
  });

  it('is stored as deltas past the position it was saved with, ignored beside another position, and refuses what it cannot have written', () => {
    const position = 2n ** 62n;
    const progress = { through: position + 1_000_000n, notDone: [position + 1n, position + 300n, position + 999_999n] };
    const bytes = encodePartitionProgress(position, progress);
    assert.ok(bytes.byteLength <= 20, `${bytes.byteLength} bytes`);
    assert.deepEqual(decodePartitionProgress(position, bytes), progress);
    // Saved with another position (an older server moved it and left the bytes): not this position's progress.
    assert.equal(decodePartitionProgress(position + 1n, bytes), undefined);
    assert.deepEqual(decodePartitionProgress(5n, encodePartitionProgress(5n, { through: 9n, notDone: [] })), { through: 9n, notDone: [] });
    assert.throws(() => encodePartitionProgress(5n, { through: 9n, notDone: [7n, 6n] }), RangeError);
    assert.throws(() => encodePartitionProgress(5n, { through: 9n, notDone: [10n] }), RangeError);
    assert.throws(() => decodePartitionProgress(5n, Buffer.from([5, 4, 0x80])), CorruptDataError);
    assert.throws(() => decodePartitionProgress(5n, Buffer.from([5, 4, 9])), CorruptDataError);
    assert.throws(() => decodePartitionProgress(5n, Buffer.from([5, 4, 1, 0])), CorruptDataError);
  });
});
