import assert from 'node:assert/strict';
import fs from 'node:fs';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { tempDir } from '../helpers/server';
import { runFeedConformance } from './feed-conformance';
import { runGroupsConformance } from './groups-conformance';
import { runStoreConformance, type StoreFactory } from './store-conformance';

const dirs = new Map<object, string>();

const sqliteFactory: StoreFactory = {
  async create() {
    const dir = tempDir('eh-sqlite-');
    const store = new SqliteStore({ dataDir: dir });
    dirs.set(store, dir);
    return store;
  },
  async reopen(store) {
    return new SqliteStore({ dataDir: dirs.get(store) ?? '' });
  },
  async dispose(store) {
    await store.close();
    fs.rmSync(dirs.get(store) ?? '', { recursive: true, force: true });
    dirs.delete(store);
  },
};
runStoreConformance('sqlite', sqliteFactory);
runFeedConformance('sqlite', sqliteFactory);
runGroupsConformance('sqlite', sqliteFactory);

describe('sqlite store: read statements per page size', () => {
  it('pages alike for more page sizes than it keeps statements for (limit written in, or bound past them)', async () => {
    const dir = tempDir('eh-sqlite-');
    const store = new SqliteStore({ dataDir: dir });
    try {
      const at = new Date(1_700_000_000_000);
      await store.init(Buffer.from('root'), at);
      await store.createStream({ stream: '/r', parent: '/', recordedAt: at, startedPayload: Buffer.from('s'), childCreatedPayload: () => Buffer.from('c') });
      for (let i = 1; i <= 10; i++) await store.append({ stream: '/r', payload: () => Buffer.from(`e${i}`), recordedAt: at });
      // 100 sizes each way: the first 64 get statements of their own, the rest use the bound one.
      for (let limit = 1; limit <= 100; limit++) {
        const forward = await store.read('/r', { fromVersion: 2n, direction: 'forward', limit, maxBytes: 1 << 20 });
        const expected = Array.from({ length: Math.min(limit, 9) }, (_, i) => BigInt(2 + i));
        assert.deepEqual(forward.entries.map((e) => e.version), expected, `forward, limit ${limit}`);
        assert.equal(forward.more, limit < 9, `forward more, limit ${limit}`);
        const backward = await store.read('/r', { fromVersion: 8n, direction: 'backward', limit, maxBytes: 1 << 20 });
        const expectedBack = Array.from({ length: Math.min(limit, 9) }, (_, i) => BigInt(8 - i));
        assert.deepEqual(backward.entries.map((e) => e.version), expectedBack, `backward, limit ${limit}`);
        assert.equal(backward.more, limit < 9, `backward more, limit ${limit}`);
      }
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The group commit runs a group without a savepoint per write, and again with them when a write
 * fails. No write of the API fails after it has written (they check first), so this reaches the
 * store's queue directly: a write that inserts a stream and then throws, among writes that succeed.
 */
describe('sqlite store: a write that fails after writing, in a group', () => {
  type Internals = {
    write(apply: () => unknown): Promise<unknown>;
    statements: { insertStream: { run(path: string, parent: bigint | null, head: bigint, at: bigint): unknown } };
  };

  it('undoes only that write: its neighbours in the group commit, and later groups too', async () => {
    const dir = tempDir('eh-sqlite-');
    const store = new SqliteStore({ dataDir: dir });
    try {
      const at = new Date(1_700_000_000_000);
      await store.init(Buffer.from('root'), at);
      await store.createStream({ stream: '/g', parent: '/', recordedAt: at, startedPayload: Buffer.from('s'), childCreatedPayload: () => Buffer.from('c') });
      const internals = store as unknown as Internals;
      const halfWrite = () =>
        internals.write(() => {
          internals.statements.insertStream.run('/half-written', null, 0n, 0n);
          throw new Error('failed after writing');
        });
      const group = () => [
        store.append({ stream: '/g', payload: () => Buffer.from('before'), recordedAt: at }),
        halfWrite(),
        store.append({ stream: '/g', payload: () => Buffer.from('after'), recordedAt: at }),
      ];
      // Queued in one turn of the event loop: one group. Twice: the second group starts with savepoints.
      for (const round of [1, 2]) {
        const outcomes = await Promise.allSettled(group());
        assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled'], `round ${round}`);
        assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /failed after writing/);
        assert.equal(await store.describe('/half-written'), undefined, `round ${round}`);
      }
      // Alone in its group, and the groups after it.
      await assert.rejects(halfWrite(), /failed after writing/);
      await store.append({ stream: '/g', payload: () => Buffer.from('last'), recordedAt: at });
      assert.equal(await store.describe('/half-written'), undefined);
      const page = await store.read('/g', { fromVersion: 1n, direction: 'forward', limit: 10, maxBytes: 1 << 20 });
      assert.deepEqual(page.entries.map((e) => [e.version, Buffer.from(e.payload).toString()]), [
        [1n, 'before'], [2n, 'after'], [3n, 'before'], [4n, 'after'], [5n, 'last'],
      ]);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
