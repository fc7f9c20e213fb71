import assert from 'node:assert/strict';
import {
  ConflictError,
  connect,
  eventData,
  jsonEvent,
  jsonSnapshots,
  Reader,
  type EventHorizon,
  type ReadModel,
} from '../../../clients/ts/src';
import { startTestServer, type TestServer } from '../../helpers/server';

interface Tally {
  total: number;
}

/** A read model that sums `added` events and counts how many events it was given. */
function tallyModel(perspective = 'tally:v1'): ReadModel<Tally> & { applied: number } {
  const model = {
    perspective,
    handles: ['added'] as const,
    applied: 0,
    initialState: (): Tally => ({ total: 0 }),
    apply(state: Tally, event: { data: Buffer }): Tally {
      model.applied += 1;
      return { total: state.total + eventData<{ amount: number }>(event).amount };
    },
    ...jsonSnapshots<Tally>(),
  };
  return model;
}

describe('TypeScript client: Reader', () => {
  let server: TestServer;
  let client: EventHorizon;

  before(async () => {
    server = await startTestServer();
    client = connect(server.address);
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  it('loads from its snapshot plus only the entries after it, and stores newer snapshots', async () => {
    await client.createStream({ stream: '/tally-snap' });
    for (let n = 1; n <= 5; n += 1) {
      await client.append({ stream: '/tally-snap', events: [jsonEvent('added', { amount: n }), jsonEvent('noted', {})] });
    }
    const first = tallyModel();
    const reader = new Reader(client, '/tally-snap', first, { snapshotEvery: 3 });
    await reader.load();
    assert.deepEqual(reader.state, { total: 15 });
    assert.equal(reader.version, 5n);
    assert.equal(first.applied, 5, 'only handled event types are applied');
    const stored = await client.getSnapshot({ stream: '/tally-snap', perspective: 'tally:v1' });
    assert.equal(stored.snapshot?.version, 5n);
    assert.deepEqual(JSON.parse(Buffer.from(stored.snapshot?.data ?? []).toString()), { total: 15 });

    await client.append({ stream: '/tally-snap', events: [jsonEvent('added', { amount: 100 })] });
    const second = tallyModel();
    const fresh = new Reader(client, '/tally-snap', second, { snapshotEvery: 3 });
    await fresh.load();
    assert.deepEqual(fresh.state, { total: 115 });
    assert.equal(fresh.version, 6n);
    assert.equal(second.applied, 1, 'entries before the snapshot were not folded again');
  });

  it('pages through many entries after the snapshot', async () => {
    await client.createStream({ stream: '/tally-many' });
    for (let n = 1; n <= 250; n += 1) {
      await client.append({ stream: '/tally-many', events: [jsonEvent('added', { amount: 1 })] });
    }
    const reader = new Reader(client, '/tally-many', tallyModel(), { snapshotEvery: 0 });
    await reader.load();
    assert.deepEqual(reader.state, { total: 250 });
    assert.equal(reader.version, 250n);
  });

  it('loads from a 3 MiB snapshot with over 1 MiB of entries after it, reading the rest with Read', async () => {
    const padding = 'x'.repeat(3 * 1024 * 1024 - 64);
    // A snapshot near max_snapshot_bytes: its total on one line, then padding.
    const model: ReadModel<Tally> = {
      ...tallyModel('big:v1'),
      encode: (state) => Buffer.from(`${JSON.stringify(state)}\n${padding}`),
      decode: (data) => JSON.parse(Buffer.from(data).toString().split('\n')[0] ?? '') as Tally,
    };
    await client.createStream({ stream: '/tally-big' });
    await client.append({ stream: '/tally-big', events: [jsonEvent('added', { amount: 5 })] });
    await client.putSnapshot({ stream: '/tally-big', perspective: 'big:v1', version: 1n, data: Buffer.from(model.encode({ total: 5 })) });
    for (let n = 0; n < 3; n += 1) {
      await client.append({ stream: '/tally-big', events: [jsonEvent('added', { amount: 1, pad: 'y'.repeat(400_000) })] });
    }
    const reader = new Reader(client, '/tally-big', model, { snapshotEvery: 0 });
    await reader.load();
    assert.deepEqual(reader.state, { total: 8 });
    assert.equal(reader.version, 4n);
  });

  it('stays live after start() and lets callers wait for a version', async () => {
    await client.createStream({ stream: '/tally-live' });
    await client.append({ stream: '/tally-live', events: [jsonEvent('added', { amount: 2 })] });
    const reader = new Reader(client, '/tally-live', tallyModel(), { snapshotEvery: 2 });
    await reader.start();
    try {
      assert.ok(reader.caughtUp);
      assert.deepEqual(reader.state, { total: 2 });
      // load() stored a snapshot at 1; two live entries later another one is due.
      await client.append({ stream: '/tally-live', events: [jsonEvent('added', { amount: 3 })] });
      const written = await client.append({ stream: '/tally-live', events: [jsonEvent('added', { amount: 4 })] });
      await reader.waitForVersion(written.cursor?.version ?? -1n);
      assert.deepEqual(reader.state, { total: 9 });
    } finally {
      await reader.stop();
    }
    const stored = await client.getSnapshot({ stream: '/tally-live', perspective: 'tally:v1' });
    assert.equal(stored.snapshot?.version, 3n, 'a snapshot was stored while live');
  });

  it('transactWrite re-reads and decides again after a conflict', async () => {
    await client.createStream({ stream: '/tally-tx' });
    const reader = new Reader(client, '/tally-tx', tallyModel(), { snapshotEvery: 0 });
    const seenTotals: number[] = [];
    const result = await reader.transactWrite(async (state) => {
      seenTotals.push(state.total);
      if (seenTotals.length === 1) {
        // Another writer gets in between this decision and its append.
        await client.append({ stream: '/tally-tx', events: [jsonEvent('added', { amount: 10 })] });
      }
      // Cap the total at 15: the decision depends on the state, so a stale one would be wrong.
      return [jsonEvent('added', { amount: Math.min(10, 15 - state.total) })];
    });
    assert.deepEqual(seenTotals, [0, 10]);
    assert.equal(result.attempts, 2);
    assert.equal(result.written, true);
    assert.equal(result.version, 2n);
    await reader.refresh();
    assert.deepEqual(reader.state, { total: 15 });
  });

  it('transactWrite gives up with ConflictError after maxAttempts', async () => {
    await client.createStream({ stream: '/tally-busy' });
    const reader = new Reader(client, '/tally-busy', tallyModel(), { snapshotEvery: 0 });
    let decisions = 0;
    await assert.rejects(
      reader.transactWrite(
        async () => {
          decisions += 1;
          await client.append({ stream: '/tally-busy', events: [jsonEvent('added', { amount: 1 })] });
          return [jsonEvent('added', { amount: 1 })];
        },
        { maxAttempts: 3 },
      ),
      (error: unknown) => error instanceof ConflictError && error.actualVersion === 3n,
    );
    assert.equal(decisions, 3);
  });

  it('transactWrite writes nothing when the decision is empty', async () => {
    await client.createStream({ stream: '/tally-noop' });
    const reader = new Reader(client, '/tally-noop', tallyModel());
    const result = await reader.transactWrite(() => []);
    assert.deepEqual(result, { written: false, version: 0n, attempts: 1 });
  });
});
