import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  CallAbandonedError,
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  StreamShreddedError,
  ParentNotFoundError,
  WrongExpectedVersionError,
} from '../../core/errors';
import type {
  AppendCommand,
  AppendResult,
  CreateStreamCommand,
  ConsumerGroupStore,
  CreateStreamResult,
  EventStore,
  FeedEntry,
  FeedPage,
  FeedQuery,
  Position,
  PutSnapshotResult,
  ReadPage,
  ReadQuery,
  SnapshotRecord,
  StoreFeatures,
  StreamInfo,
  StreamKeys,
  WrappedKey,
} from '../port';
import { SqliteConsumerGroups } from './consumer-groups';
import { upgradeFeed, type UpgradeLog } from './feed-upgrade';
import { SCHEMA, upgradeGroupPartitions } from './schema';
import { StreamReads } from './stream-reads';
import { WalSync } from './wal-sync';

export interface SqliteStoreOptions {
  /** Folder of the database file; created when missing. ":memory:" keeps everything in memory. */
  dataDir: string;
  /** Where the start-up upgrade of an older database reports its progress. */
  log?: UpgradeLog;
}

interface StreamRow {
  id: bigint;
  head: bigint;
}

interface KeyRow {
  stream: string;
  dek_version: bigint;
  kek_id: string;
  wrapped: Buffer;
  created_at: bigint;
}

/**
 * A feed row as `readFeed` fetches it: an array (better-sqlite3's `raw` mode), not an object, as
 * the stream reads fetch theirs (stream-reads.ts): 0.3-0.9 µs less per row, of about 3.5.
 */
type RawFeedRow = [position: bigint, path: string, version: bigint, recordedAt: bigint, payload: Buffer];

/**
 * Positions one feed read looks through at most. A subtree that is a small part of the feed
 * would otherwise have a read scan the whole feed to fill one page; the page says how far it got
 * (FeedPage.reached) and the next read goes on from there.
 */
const FEED_SCAN_POSITIONS = 10_000n;

/** What one write of a group came to. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A write waiting for the next group commit. */
interface PendingWrite {
  apply: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The embedded store: one SQLite database in WAL mode. An acknowledged write has been fsynced:
 * it survives `kill -9` and power loss.
 *
 * Writes are group-committed: every write requested while the event loop is busy joins a queue,
 * and the queue is applied in one transaction on the next turn of the loop. One failing append
 * does not undo its neighbours: a group in which a write fails runs again with each write in its
 * own savepoint (flush).
 *
 * The fsync does not block the event loop: SQLite commits with `synchronous=NORMAL` and WalSync
 * fsyncs the WAL on the thread pool, then the writes are acknowledged. Commits made while an
 * fsync runs share the next one. (With `synchronous=FULL` the loop stood still for every fsync,
 * 2-9 ms here, and took no requests meanwhile, so groups stayed small.) Reads wait until what
 * they saw is durable, so that nobody sees an entry that a crash could take back.
 */
export class SqliteStore implements EventStore {
  readonly features: StoreFeatures = {
    sharedWithOtherProcesses: false,
    // Request ids are kept with their entries and looked up by index: recognised for good.
    idempotencyWindow: { kind: 'unbounded' },
    readsRefusedAfterShred: false,
    abandonedReadsStop: false,
  };
  readonly groups: ConsumerGroupStore;
  private readonly db: Database.Database;
  private readonly statements;
  private readonly transactions;
  /** Makes commits durable off the event loop; undefined for an in-memory database. */
  private readonly walSync: WalSync | undefined;
  private readonly streamReads: StreamReads;
  /**
   * The position of the next entry written, read at the start of each group commit (under the
   * write lock: another process may have written since) and given in commit order.
   */
  private nextPosition = 0n;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** Whether the next group takes a savepoint per write from the start (flush). */
  private savepointsNext = false;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    const file = options.dataDir === ':memory:' ? ':memory:' : databaseFile(options.dataDir);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL: commits do not fsync; WalSync does it, off the event loop, before any acknowledgement.
    this.db.pragma(file === ':memory:' ? 'synchronous = FULL' : 'synchronous = NORMAL');
    this.walSync = file === ':memory:' ? undefined : new WalSync(`${file}-wal`);
    this.db.pragma('foreign_keys = ON');
    this.db.defaultSafeIntegers(true);
    this.db.exec(SCHEMA);
    upgradeFeed(this.db, options.log);
    upgradeGroupPartitions(this.db);
    this.statements = this.prepare();
    this.streamReads = new StreamReads(this.db);
    this.transactions = this.prepareTransactions();
    this.groups = new SqliteConsumerGroups(this.db, (apply) => this.write(apply), () => this.ensureOpen());
  }

  /**
   * Transaction control as prepared statements. better-sqlite3's db.transaction(fn) builds four
   * wrapper functions each time it is called; calling it per write cost more CPU than the
   * inserts themselves (the bench's profile).
   */
  private prepareTransactions() {
    const db = this.db;
    return {
      // IMMEDIATE: the write lock from the start, so that what the group reads (heads, the next
      // position) stays current until it commits, also when another process (the CLI next to a
      // serving server) writes to the same database; it waits for that process's lock (the
      // driver's 5 s busy timeout) rather than fail at its first write.
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT write'),
      release: db.prepare('RELEASE write'),
      rollbackTo: db.prepare('ROLLBACK TO write'),
    };
  }

  private prepare() {
    const db = this.db;
    return {
      streamByPath: db.prepare<[string], StreamRow>('SELECT id, head FROM streams WHERE path = ?'),
      describe: db.prepare<[string], { head: bigint; created_at: bigint; child_count: bigint; bytes_stored: bigint }>(
        'SELECT head, created_at, child_count, bytes_stored FROM streams WHERE path = ?',
      ),
      insertStream: db.prepare<[string, bigint | null, bigint, bigint]>(
        'INSERT INTO streams (path, parent_id, head, created_at) VALUES (?, ?, ?, ?)',
      ),
      advanceHead: db.prepare<[bigint, number, bigint]>(
        'UPDATE streams SET head = ?, bytes_stored = bytes_stored + ? WHERE id = ?',
      ),
      countChild: db.prepare<[bigint]>('UPDATE streams SET child_count = child_count + 1 WHERE id = ?'),
      insertEntry: db.prepare<[bigint, bigint, bigint, string | null, Uint8Array, bigint]>(
        'INSERT INTO entries (stream_id, version, recorded_at, request_id, payload, position) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      // The subtree is the stream itself, or (prefix) the paths under it.
      feed: db
        .prepare<[bigint, bigint, string, number, string, number], RawFeedRow>(
          `SELECT e.position, s.path, e.version, e.recorded_at, e.payload
           FROM entries AS e JOIN streams AS s ON s.id = e.stream_id
           WHERE e.position > ? AND e.position <= ? AND (s.path = ? OR substr(s.path, 1, ?) = ?)
           ORDER BY e.position LIMIT ?`,
        )
        .raw(true),
      entryByRequestId: db.prepare<[bigint, string], { version: bigint; recorded_at: bigint }>(
        'SELECT version, recorded_at FROM entries WHERE stream_id = ? AND request_id = ?',
      ),
      children: db.prepare<[bigint, string, number], { path: string }>(
        'SELECT path FROM streams WHERE parent_id = ? AND path > ? ORDER BY path LIMIT ?',
      ),
      snapshotVersion: db.prepare<[bigint, string], { version: bigint }>(
        'SELECT version FROM snapshots WHERE stream_id = ? AND perspective = ?',
      ),
      upsertSnapshot: db.prepare<[bigint, string, bigint, string, Uint8Array, bigint]>(
        `INSERT INTO snapshots (stream_id, perspective, version, content_type, payload, stored_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (stream_id, perspective) DO UPDATE SET
           version = excluded.version, content_type = excluded.content_type,
           payload = excluded.payload, stored_at = excluded.stored_at`,
      ),
      getSnapshot: db.prepare<
        [bigint, string],
        { version: bigint; content_type: string; payload: Buffer; stored_at: bigint }
      >('SELECT version, content_type, payload, stored_at FROM snapshots WHERE stream_id = ? AND perspective = ?'),
      deleteSnapshot: db.prepare<[bigint, string]>('DELETE FROM snapshots WHERE stream_id = ? AND perspective = ?'),
      perspectives: db.prepare<[bigint], { perspective: string }>(
        'SELECT perspective FROM snapshots WHERE stream_id = ? ORDER BY perspective',
      ),
      keys: db.prepare<[string], KeyRow>(
        'SELECT stream, dek_version, kek_id, wrapped, created_at FROM stream_keys WHERE stream = ? ORDER BY dek_version',
      ),
      feedHead: db.prepare<[], { head: bigint | null }>('SELECT MAX(position) AS head FROM entries'),
      isShredded: db.prepare<[string], { stream: string }>('SELECT stream FROM shredded_streams WHERE stream = ?'),
      insertKey: db.prepare<[string, number, string, Uint8Array, bigint]>(
        'INSERT OR IGNORE INTO stream_keys (stream, dek_version, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      rewrapKey: db.prepare<[string, Uint8Array, string, number, string]>(
        'UPDATE stream_keys SET kek_id = ?, wrapped = ? WHERE stream = ? AND dek_version = ? AND kek_id = ?',
      ),
      deleteKeys: db.prepare<[string]>('DELETE FROM stream_keys WHERE stream = ?'),
      markShredded: db.prepare<[string, bigint]>('INSERT OR IGNORE INTO shredded_streams (stream, shredded_at) VALUES (?, ?)'),
      keysAfter: db.prepare<[string, number], KeyRow>(
        `SELECT stream, dek_version, kek_id, wrapped, created_at FROM stream_keys
         WHERE stream IN (SELECT DISTINCT stream FROM stream_keys WHERE stream > ? ORDER BY stream LIMIT ?)
         ORDER BY stream, dek_version`,
      ),
    };
  }

  /** The constructor already opened the database and applied the schema. */
  async open(): Promise<void> {
    this.ensureOpen();
  }

  async init(rootPayload: Uint8Array, recordedAt: Date): Promise<void> {
    await this.write(() => {
      if (this.statements.streamByPath.get('/')) return;
      const root = this.statements.insertStream.run('/', null, 0n, millis(recordedAt));
      this.statements.insertEntry.run(BigInt(root.lastInsertRowid), 0n, millis(recordedAt), null, rootPayload, this.nextPosition++);
      this.statements.advanceHead.run(0n, rootPayload.byteLength, BigInt(root.lastInsertRowid));
    });
  }

  createStream(command: CreateStreamCommand): Promise<CreateStreamResult> {
    return this.write(() => {
      const s = this.statements;
      if (s.streamByPath.get(command.stream)) throw new StreamAlreadyExistsError(command.stream);
      const parent = s.streamByPath.get(command.parent);
      if (!parent) throw new ParentNotFoundError(command.stream, command.parent);
      // Its `child-created` entry would be written under a key that is gone.
      if (s.isShredded.get(command.parent)) throw new StreamShreddedError(command.parent);
      const at = millis(command.recordedAt);

      const parentVersion = parent.head + 1n;
      const childCreated = command.childCreatedPayload(parentVersion);
      s.insertEntry.run(parent.id, parentVersion, at, null, childCreated, this.nextPosition++);
      s.advanceHead.run(parentVersion, childCreated.byteLength, parent.id);
      s.countChild.run(parent.id);

      const childId = BigInt(s.insertStream.run(command.stream, parent.id, 0n, at).lastInsertRowid);
      s.insertEntry.run(childId, 0n, at, null, command.startedPayload, this.nextPosition++);
      s.advanceHead.run(0n, command.startedPayload.byteLength, childId);
      let headVersion = 0n;
      if (command.initialPayload) {
        headVersion = 1n;
        s.insertEntry.run(childId, 1n, at, null, command.initialPayload, this.nextPosition++);
        s.advanceHead.run(1n, command.initialPayload.byteLength, childId);
      }
      return { headVersion, parentVersion };
    });
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return this.write(() => {
      // The group commit is moments away, but a caller gone meanwhile gets nothing written.
      if (command.signal?.aborted) throw new CallAbandonedError();
      const s = this.statements;
      const stream = s.streamByPath.get(command.stream);
      if (!stream) throw new StreamNotFoundError(command.stream);
      if (command.requestId !== undefined) {
        // Checked before the expected version: the retry of a committed append finds the head
        // moved on, and must still get its original cursor rather than a conflict.
        const earlier = s.entryByRequestId.get(stream.id, command.requestId);
        if (earlier) {
          return { version: earlier.version, recordedAt: new Date(Number(earlier.recorded_at)), deduplicated: true };
        }
      }
      // Checked in the write itself: an append whose keys were fetched before a shred committed
      // meanwhile must not be acknowledged (its entry would be unreadable).
      if (s.isShredded.get(command.stream)) throw new StreamShreddedError(command.stream);
      if (command.expectedVersion !== undefined && command.expectedVersion !== stream.head) {
        throw new WrongExpectedVersionError(command.stream, command.expectedVersion, stream.head);
      }
      const version = stream.head + 1n;
      const payload = command.payload(version);
      s.insertEntry.run(stream.id, version, millis(command.recordedAt), command.requestId ?? null, payload, this.nextPosition++);
      s.advanceHead.run(version, payload.byteLength, stream.id);
      return { version, recordedAt: command.recordedAt, deduplicated: false };
    });
  }

  async read(stream: string, query: ReadQuery): Promise<ReadPage> {
    this.ensureOpen();
    const found = this.mustFind(stream);
    const { entries, more } = this.streamReads.read(found.id, query);
    await this.durable();
    return { entries, more, headVersion: found.head };
  }

  /**
   * Positions are given inside the group commit, under the write lock, and one group's positions
   * follow the last committed one: a read sees every position up to the newest one, or a gap left
   * by a write that failed (rolled back), never a later position without an earlier one.
   */
  async readFeed(query: FeedQuery): Promise<FeedPage> {
    this.ensureOpen();
    const head = this.head();
    const until = query.after + FEED_SCAN_POSITIONS < head ? query.after + FEED_SCAN_POSITIONS : head;
    const { path, descendants } = query.subtree;
    // NUL is in no path: a prefix that matches nothing, for the stream alone.
    const prefix = !descendants ? '\0' : path === '/' ? '/' : `${path}/`;
    // Iterated, not fetched whole: a page stops at its bytes bound without holding every row (a
    // thousand large entries would otherwise be gigabytes at once).
    const rows = this.statements.feed.iterate(query.after, until, path, prefix.length, prefix, query.limit + 1);
    const entries: FeedEntry[] = [];
    let bytes = 0;
    let reached = until;
    let full = false;
    let scanned = 0;
    let lastPosition: bigint | undefined;
    for (const [position, stream, version, recordedAt, payload] of rows) {
      scanned++;
      lastPosition = position;
      // Read with the rest (the filter costs nothing here), so the page bounds stay in SQL's LIMIT.
      if (query.only && !query.only(stream)) continue;
      if (entries.length === query.limit || (entries.length > 0 && bytes + payload.byteLength > query.maxBytes)) {
        // The page is full: it covers the feed up to its last entry.
        reached = entries[entries.length - 1]?.position ?? query.after;
        full = true;
        break;
      }
      bytes += payload.byteLength;
      entries.push({ stream, position, version, recordedAt: new Date(Number(recordedAt)), payload });
    }
    // The LIMIT cut the rows, and `only` left fewer entries than it: the page covers what was read.
    if (!full && scanned > query.limit && lastPosition !== undefined) reached = lastPosition;
    if (reached < query.after) reached = query.after;
    await this.durable();
    return { entries, reached, more: reached < head };
  }

  async feedHead(): Promise<Position> {
    this.ensureOpen();
    const head = this.head();
    await this.durable();
    return head;
  }

  async describe(stream: string): Promise<StreamInfo | undefined> {
    this.ensureOpen();
    const row = this.statements.describe.get(stream);
    await this.durable();
    if (!row) return undefined;
    return {
      path: stream,
      headVersion: row.head,
      createdAt: new Date(Number(row.created_at)),
      childCount: row.child_count,
      bytesStored: row.bytes_stored,
    };
  }

  async listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]> {
    this.ensureOpen();
    const found = this.mustFind(stream);
    const children = this.statements.children.all(found.id, after ?? '', limit).map((row) => row.path);
    await this.durable();
    return children;
  }

  putSnapshot(stream: string, snapshot: SnapshotRecord): Promise<PutSnapshotResult> {
    return this.write(() => {
      const s = this.statements;
      const found = this.mustFind(stream);
      // Checked in the write itself, as for appends: a caller holding keys fetched before a shred
      // committed cannot store a snapshot nobody can read.
      if (s.isShredded.get(stream)) throw new StreamShreddedError(stream);
      if (snapshot.version > found.head) throw new SnapshotAheadOfStreamError(stream, snapshot.version, found.head);
      const existing = s.snapshotVersion.get(found.id, snapshot.perspective);
      if (existing && existing.version >= snapshot.version) return { stored: false, storedVersion: existing.version };
      s.upsertSnapshot.run(
        found.id,
        snapshot.perspective,
        snapshot.version,
        snapshot.contentType,
        snapshot.payload,
        millis(snapshot.storedAt),
      );
      return { stored: true, storedVersion: snapshot.version };
    });
  }

  async getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined> {
    this.ensureOpen();
    const found = this.mustFind(stream);
    const row = this.statements.getSnapshot.get(found.id, perspective);
    await this.durable();
    if (!row) return undefined;
    return {
      perspective,
      version: row.version,
      contentType: row.content_type,
      payload: row.payload,
      storedAt: new Date(Number(row.stored_at)),
    };
  }

  deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    return this.write(() => {
      const found = this.mustFind(stream);
      return this.statements.deleteSnapshot.run(found.id, perspective).changes > 0;
    });
  }

  async listPerspectives(stream: string): Promise<string[]> {
    this.ensureOpen();
    const found = this.mustFind(stream);
    const perspectives = this.statements.perspectives.all(found.id).map((row) => row.perspective);
    await this.durable();
    return perspectives;
  }

  async getStreamKeys(stream: string): Promise<StreamKeys> {
    this.ensureOpen();
    const keys = {
      keys: this.statements.keys.all(stream).map(toWrappedKey),
      shredded: this.statements.isShredded.get(stream) !== undefined,
    };
    await this.durable();
    return keys;
  }

  addStreamKey(stream: string, key: WrappedKey): Promise<boolean> {
    return this.write(() => {
      if (this.statements.isShredded.get(stream)) return false;
      const { changes } = this.statements.insertKey.run(stream, key.dekVersion, key.kekId, key.wrapped, millis(key.createdAt));
      return changes > 0;
    });
  }

  rewrapStreamKey(stream: string, dekVersion: number, expectedKekId: string, kekId: string, wrapped: Uint8Array): Promise<boolean> {
    return this.write(() => this.statements.rewrapKey.run(kekId, wrapped, stream, dekVersion, expectedKekId).changes > 0);
  }

  shredStreamKeys(stream: string, shreddedAt: Date): Promise<void> {
    return this.write(() => {
      this.statements.markShredded.run(stream, millis(shreddedAt));
      this.statements.deleteKeys.run(stream);
    });
  }

  async listStreamKeys(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>> {
    this.ensureOpen();
    const grouped = new Map<string, WrappedKey[]>();
    for (const row of this.statements.keysAfter.all(after ?? '', limit)) {
      const keys = grouped.get(row.stream) ?? [];
      keys.push(toWrappedKey(row));
      grouped.set(row.stream, keys);
    }
    await this.durable();
    return [...grouped].map(([stream, keys]) => ({ stream, keys }));
  }

  async ping(): Promise<boolean> {
    return !this.closed && this.db.open;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    this.walSync?.syncNow();
    this.walSync?.close();
    this.db.close();
  }

  /** Resolves once every commit so far is on disk (at once when none is waiting). */
  private durable(): Promise<void> | undefined {
    return this.walSync?.pending ? this.walSync.settled() : undefined;
  }

  /** The newest position committed, by any process. */
  private head(): Position {
    return this.statements.feedHead.get()?.head ?? 0n;
  }

  private mustFind(stream: string): StreamRow {
    const found = this.statements.streamByPath.get(stream);
    if (!found) throw new StreamNotFoundError(stream);
    return found;
  }

  /**
   * After close, every method fails as the DynamoDB store's do (UNAVAILABLE to clients, who may
   * retry elsewhere), not with better-sqlite3's plain "not open" error (INTERNAL).
   */
  private ensureOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
  }

  /** Queues a write for the next group commit. */
  private write<T>(apply: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Applies every queued write in one transaction, acknowledged after the fsync that covers it. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let outcomes: Outcome[] | undefined;
    try {
      if (!this.savepointsNext) outcomes = this.applyWithoutSavepoints(batch);
      // A write failed: the group was rolled back, and runs again with a savepoint per write.
      outcomes ??= this.applyWithSavepoints(batch);
      if (this.db.inTransaction) this.transactions.commit.run();
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing of the group was written.
      if (this.db.inTransaction) this.transactions.rollback.run();
      for (const write of batch) write.reject(error);
      return;
    }
    const acknowledge = (syncError: Error | null) =>
      batch.forEach((write, index) => {
        const outcome = outcomes[index];
        // A failed fsync leaves the group's durability unknown: nobody may take it as written.
        if (syncError) write.reject(syncError);
        else if (outcome?.ok) write.resolve(outcome.value);
        else write.reject(outcome?.error);
      });
    if (this.walSync) this.walSync.afterCommit(acknowledge);
    else acknowledge(null);
  }

  /**
   * Opens the group's transaction: IMMEDIATE (see prepareTransactions), and the next position read
   * under its lock.
   */
  private begin(): void {
    this.transactions.begin.run();
    this.nextPosition = this.head() + 1n;
  }

  /**
   * The group's writes without a savepoint each: two statements fewer per write, a third of the
   * statements of a 1-event append. Most groups have no failing write. When one fails, what it
   * may have written cannot be undone alone: the whole group is rolled back and undefined
   * returned, for the group to run again with savepoints (a write is a function of the database
   * and its command, so it does the same again; the next position is read again too). A group of
   * one write needs no second run: its rollback undoes exactly the write that failed.
   */
  private applyWithoutSavepoints(batch: readonly PendingWrite[]): Outcome[] | undefined {
    this.begin();
    const outcomes: Outcome[] = [];
    for (const write of batch) {
      try {
        outcomes.push({ ok: true, value: write.apply() });
      } catch (error) {
        // (SQLite may have ended the transaction itself, on some I/O errors.)
        if (this.db.inTransaction) this.transactions.rollback.run();
        // Failures come in runs (conflicting writers): the next groups take savepoints from the start.
        this.savepointsNext = true;
        return batch.length === 1 ? [{ ok: false, error }] : undefined;
      }
    }
    return outcomes;
  }

  /** The group's writes, each in its own savepoint: a failing write undoes only itself. */
  private applyWithSavepoints(batch: readonly PendingWrite[]): Outcome[] {
    const tx = this.transactions;
    this.begin();
    const outcomes: Outcome[] = [];
    let failed = false;
    for (const write of batch) {
      tx.savepoint.run();
      try {
        const value = write.apply();
        tx.release.run();
        outcomes.push({ ok: true, value });
      } catch (error) {
        tx.rollbackTo.run();
        tx.release.run();
        outcomes.push({ ok: false, error });
        failed = true;
      }
    }
    // A group without failures: the next one tries without savepoints again.
    this.savepointsNext = failed;
    return outcomes;
  }
}

function databaseFile(dataDir: string): string {
  fs.mkdirSync(dataDir, { recursive: true });
  return path.join(dataDir, 'eventhorizon.sqlite');
}

function toWrappedKey(row: KeyRow): WrappedKey {
  return { dekVersion: Number(row.dek_version), kekId: row.kek_id, wrapped: row.wrapped, createdAt: new Date(Number(row.created_at)) };
}

function millis(date: Date): bigint {
  return BigInt(date.getTime());
}
