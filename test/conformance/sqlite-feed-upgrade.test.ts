import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { tempDir } from '../helpers/server';

/** The entries table as databases written before the feed have it: no position column. */
const OLD_SCHEMA = `
CREATE TABLE streams (
  id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, parent_id INTEGER REFERENCES streams (id),
  head INTEGER NOT NULL, created_at INTEGER NOT NULL, child_count INTEGER NOT NULL DEFAULT 0,
  bytes_stored INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE entries (
  stream_id INTEGER NOT NULL REFERENCES streams (id), version INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL, request_id TEXT, payload BLOB NOT NULL,
  PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
`;

/** An old database: streams "/" and "/a" and "/b", entries at the given times (ms). */
function writeOldDatabase(dir: string, entries: Array<[stream: 'root' | 'a' | 'b', version: number, at: number]>): void {
  const db = new Database(path.join(dir, 'eventhorizon.sqlite'));
  db.exec(OLD_SCHEMA);
  db.exec(`INSERT INTO streams (id, path, parent_id, head, created_at) VALUES (1, '/', NULL, 0, 0), (2, '/a', 1, 0, 0), (3, '/b', 1, 0, 0)`);
  const ids = { root: 1, a: 2, b: 3 };
  const insert = db.prepare('INSERT INTO entries (stream_id, version, recorded_at, payload) VALUES (?, ?, ?, ?)');
  for (const [stream, version, at] of entries) insert.run(ids[stream], version, at, Buffer.from(`${stream}@${version}`));
  db.exec(`UPDATE streams SET head = (SELECT MAX(version) FROM entries WHERE stream_id = streams.id)`);
  db.close();
}

async function feedLabels(store: SqliteStore): Promise<string[]> {
  const page = await store.readFeed({ after: 0n, subtree: { path: '/', descendants: true }, limit: 1000, maxBytes: 1 << 20 });
  return page.entries.map((entry) => Buffer.from(entry.payload).toString());
}

describe('sqlite store: upgrading a database written before the feed', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('eh-feed-upgrade-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('numbers the old entries in commit order at start-up, each stream in version order, and logs progress', async () => {
    writeOldDatabase(dir, [
      ['root', 0, 100],
      ['root', 1, 200],
      ['a', 0, 200],
      ['root', 2, 300],
      ['b', 0, 300],
      ['a', 1, 400],
      ['b', 1, 350],
      // The clock went back: a@2 is still after a@1.
      ['a', 2, 390],
      ['b', 2, 500],
    ]);
    const logged: string[] = [];
    const store = new SqliteStore({ dataDir: dir, log: (message) => logged.push(message) });
    try {
      assert.deepEqual(await feedLabels(store), ['root@0', 'root@1', 'a@0', 'root@2', 'b@0', 'b@1', 'a@1', 'a@2', 'b@2']);
      assert.ok(logged.some((message) => /upgrad/.test(message)), `logged: ${logged.join(' | ')}`);
      assert.ok(logged.some((message) => /done/.test(message)));
      // New entries come after the old ones.
      await store.append({ stream: '/a', payload: () => Buffer.from('a@3'), recordedAt: new Date(1) });
      assert.deepEqual((await feedLabels(store)).slice(-2), ['b@2', 'a@3']);
    } finally {
      await store.close();
    }
    // A second start has nothing to upgrade and keeps the positions.
    const logged2: string[] = [];
    const again = new SqliteStore({ dataDir: dir, log: (message) => logged2.push(message) });
    try {
      assert.deepEqual(logged2, []);
      assert.equal((await feedLabels(again)).length, 10);
    } finally {
      await again.close();
    }
  });

  it('carries on after a crash part-way: positions given stay, the rest are numbered after them', async () => {
    writeOldDatabase(dir, [
      ['root', 0, 100],
      ['a', 0, 200],
      ['a', 1, 300],
      ['b', 0, 400],
      ['b', 1, 500],
    ]);
    // What a crash after the first batch leaves: the column, and the first entries numbered.
    const db = new Database(path.join(dir, 'eventhorizon.sqlite'));
    db.exec('ALTER TABLE entries ADD COLUMN position INTEGER');
    db.exec(`UPDATE entries SET position = 1 WHERE stream_id = 1 AND version = 0`);
    db.exec(`UPDATE entries SET position = 2 WHERE stream_id = 2 AND version = 0`);
    db.close();
    const store = new SqliteStore({ dataDir: dir });
    try {
      const page = await store.readFeed({ after: 0n, subtree: { path: '/', descendants: true }, limit: 100, maxBytes: 1 << 20 });
      assert.deepEqual(
        page.entries.map((entry) => [entry.position, Buffer.from(entry.payload).toString()]),
        [
          [1n, 'root@0'],
          [2n, 'a@0'],
          [3n, 'a@1'],
          [4n, 'b@0'],
          [5n, 'b@1'],
        ],
      );
    } finally {
      await store.close();
    }
  });
});

describe('sqlite store: two handles on one database (the CLI next to a serving server)', () => {
  it('number their entries in one order, without giving a position twice', async () => {
    const dir = tempDir('eh-feed-two-');
    const server = new SqliteStore({ dataDir: dir });
    const cli = new SqliteStore({ dataDir: dir });
    try {
      const at = new Date(1_700_000_000_000);
      await server.init(Buffer.from('root'), at);
      for (const [store, stream] of [[server, '/s'], [cli, '/c']] as const) {
        await store.createStream({ stream, parent: '/', recordedAt: at, startedPayload: Buffer.from(`${stream}@0`), childCreatedPayload: (v) => Buffer.from(`/@${v}`) });
      }
      // Interleaved group commits of both handles.
      for (let i = 1; i <= 20; i++) {
        await Promise.all([
          server.append({ stream: '/s', payload: (v) => Buffer.from(`/s@${v}`), recordedAt: at }),
          cli.append({ stream: '/c', payload: (v) => Buffer.from(`/c@${v}`), recordedAt: at }),
        ]);
      }
      for (const store of [server, cli]) {
        const page = await store.readFeed({ after: 0n, subtree: { path: '/', descendants: true }, limit: 1000, maxBytes: 1 << 20 });
        assert.equal(page.entries.length, 1 + 2 + 2 + 40);
        const positions = page.entries.map((entry) => entry.position);
        assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : 1)));
        assert.equal(new Set(positions).size, positions.length);
        assert.equal(await store.feedHead(), positions[positions.length - 1]);
      }
    } finally {
      await server.close();
      await cli.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sqlite store: upgrading a database written before partitions kept their progress", () => {
  it('adds the column at start-up: stored positions stay, with no progress, and progress is kept from then on', async () => {
    const dir = tempDir();
    try {
      const first = new SqliteStore({ dataDir: dir });
      const groups = first.groups;
      await groups.createGroup({
        name: 'g',
        subtree: { path: '/', descendants: true },
        eventTypes: [],
        settings: { partitions: 2, ackWaitMs: 30_000, maxDeliveries: 5, maxInFlight: 10 },
        startPosition: 4n,
        createdAt: new Date(),
      });
      await first.close();
      // The table as it was before.
      const db = new Database(path.join(dir, 'eventhorizon.sqlite'));
      db.exec('ALTER TABLE consumer_group_partitions DROP COLUMN progress');
      db.close();

      const upgraded = new SqliteStore({ dataDir: dir });
      try {
        const partitions = await upgraded.groups.getGroupPartitions('g');
        assert.deepEqual(partitions?.map((p) => [p.position, p.progress]), [[4n, undefined], [4n, undefined]]);
        const progress = { through: 9n, notDone: [6n] };
        await upgraded.groups.saveGroupPartitions('g', [{ partition: 1, position: 5n, expectedRevision: 1n, progress }], []);
        assert.deepEqual((await upgraded.groups.getGroupPartitions('g'))?.[1]?.progress, progress);
      } finally {
        await upgraded.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
