import assert from 'node:assert/strict';
import { EntryEventIds } from '../../src/model/event-ids';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('server-generated event ids', () => {
  it('are UUIDv7 carrying the time, distinct within an entry and across entries', () => {
    const now = Date.UTC(2026, 10, 26, 6, 30);
    const seen = new Set<string>();
    for (let entry = 0; entry < 50; entry++) {
      const ids = new EntryEventIds(() => now);
      for (let i = 0; i < 5000; i++) {
        const id = ids.next();
        assert.match(id, UUID_V7);
        assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), now);
        assert.ok(!seen.has(id), `duplicate ${id}`);
        seen.add(id);
      }
    }
  });

  it('draw a new random tail for every entry, across refills of the random pool', () => {
    const tails = new Set<string>();
    // 512 tails per pool: 2000 entries refill it a few times.
    for (let entry = 0; entry < 2000; entry++) tails.add(new EntryEventIds().next().replace(/-/g, '').slice(16));
    assert.equal(tails.size, 2000);
  });

  it('differ only in the counter within an entry (so they compress)', () => {
    const ids = new EntryEventIds();
    const first = ids.next().replace(/-/g, '');
    const second = ids.next().replace(/-/g, '');
    assert.equal(first.slice(0, 13), second.slice(0, 13));
    assert.equal(first.slice(16), second.slice(16));
    assert.equal(parseInt(second.slice(13, 16), 16), parseInt(first.slice(13, 16), 16) + 1);
  });
});
