import assert from 'node:assert/strict';
import { PendingEntries, WaitingEntries, type Waitable } from '../../src/groups/waiting-entries';

interface TestWork extends Waitable {
  entry: { stream: string; position: bigint };
}

/** A small deterministic generator (mulberry32), so that a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('consumer groups: a partition\'s waiting and pending entries', () => {
  it('takes what a scan in position order skipping busy streams would take, through reads, acks, redeliveries and parking', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const waiting = new WaitingEntries<TestWork>();
      const pending = new PendingEntries<TestWork>();
      // The model: every waiting entry in position order, scanned.
      let model: TestWork[] = [];
      const busy = new Set<string>();
      const inFlight: TestWork[] = [];
      let position = 0n;
      for (let step = 0; step < 3000; step++) {
        const roll = next();
        if (roll < 0.35) {
          const work: TestWork = { entry: { stream: `s${Math.floor(next() * 12)}`, position: ++position } };
          waiting.push(work);
          pending.push(work);
          model.push(work);
        } else if (roll < 0.7) {
          const expected = model.find((w) => !busy.has(w.entry.stream));
          const taken = waiting.take((stream) => busy.has(stream));
          assert.equal(taken, expected, `seed ${seed} step ${step}`);
          if (!taken) continue;
          model = model.filter((w) => w !== taken);
          busy.add(taken.entry.stream);
          inFlight.push(taken);
        } else if (inFlight.length > 0) {
          const work = inFlight.splice(Math.floor(next() * inFlight.length), 1)[0];
          assert.ok(work);
          busy.delete(work.entry.stream);
          if (roll < 0.85) {
            pending.finish(work); // acked or parked
          } else {
            // Its ack wait ended: back first of its stream.
            waiting.putBack(work);
            model.push(work);
            model.sort((a, b) => (a.entry.position < b.entry.position ? -1 : 1));
          }
          waiting.wake(work.entry.stream);
        }
        assert.equal(waiting.length, model.length);
        const notDone = [...model, ...inFlight].sort((a, b) => (a.entry.position < b.entry.position ? -1 : 1))[0];
        assert.equal(pending.oldest(), notDone, `seed ${seed} step ${step}: oldest`);
      }
    }
  });

  it('drops the waiting entries but keeps those in flight as the oldest', () => {
    const waiting = new WaitingEntries<TestWork>();
    const pending = new PendingEntries<TestWork>();
    const works = [1n, 2n, 3n].map((position): TestWork => ({ entry: { stream: '/a', position } }));
    for (const work of works) {
      waiting.push(work);
      pending.push(work);
    }
    const first = waiting.take(() => false);
    assert.equal(first, works[0]);
    waiting.clear();
    pending.retain((work) => work === first);
    assert.equal(waiting.length, 0);
    assert.equal(waiting.take(() => false), undefined);
    assert.equal(pending.oldest(), first);
  });
});
