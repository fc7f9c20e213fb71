import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { LRUCache } from 'lru-cache';
import type { BackgroundLog, Position } from '../port';
import { createDynamoDbClient, type DynamoDbConnection } from './dynamodb-store';
import {
  FEED_ENTRY_ATTRIBUTES,
  isFeedEntryImage,
  marksJson,
  pageItems,
  PAGES,
  pendingJson,
  readPageItem,
  readStateItem,
  stateItem,
  stateKey,
  type IndexRecord,
  type ShardMark,
  type StateItem,
} from './feed-pages';
import { RequestMeter } from './request-meter';
import { entryKey, type Item } from './items';
import { backfillJson, eventsStreamOf, EntryAttr, FeedAttr, tableNames, type BackfillMark, type TableNames } from './tables';

/** Where the indexer reports what it does: a message and its fields (the server's log). */
export type IndexerLog = BackgroundLog;

/** Settings of the feed indexer (docs/dynamodb.md, "The feed"). */
export interface FeedIndexerSettings {
  /** How long a lease lasts without renewal: a dead holder is replaced after about this long. */
  leaseMs: number;
  /** Wait between two reads of the stream's shards when the last one found nothing. */
  pollIntervalMs: number;
  /** Most entries indexed per write (one transaction: the pages and the state). */
  batchSize: number;
}

export const DEFAULT_INDEXER_SETTINGS: FeedIndexerSettings = { leaseMs: 10_000, pollIntervalMs: 250, batchSize: 1000 };

export interface FeedIndexerOptions extends DynamoDbConnection, Partial<FeedIndexerSettings> {
  tablePrefix: string;
  /** This contender's id in the lease item (default: host, pid and a random suffix). */
  holderId?: string;
  log?: IndexerLog;
  /** Test hook: runs after a batch was read and before its pages are written. */
  beforeWrite?(entries: number): Promise<void>;
  /**
   * This contender runs the feed's backfill (`eventhorizon dynamodb backfill-feed`): it takes the
   * lease only while a backfill is marked in the state, runs it, and stops indexing once it is
   * done. Other contenders do not take the lease while a backfill is marked.
   */
  backfill?: boolean;
  /**
   * How long the backfill reads the stream at least after its scan ended, before it hands over
   * (default 10 s): a write's stream record becomes readable within this (see docs/dynamodb.md).
   */
  backfillSettleMs?: number;
}

/** How a backfill run ended (FeedIndexer.runBackfill). */
export interface BackfillOutcome {
  /** False: no backfill was marked, nothing was done. */
  ran: boolean;
  /** Streams and entries the scan indexed (this run and the runs it resumed). */
  streams: number;
  entries: number;
  /** Entries then indexed from the stream by this run. */
  fromStream: number;
}

/** What a running backfill has done so far, for its progress line. */
export interface BackfillProgress {
  phase: 'waiting' | 'scan' | 'stream';
  streams: number;
  entries: number;
  fromStream: number;
}

/** A shard of the events table's stream, as DescribeStream lists it. */
interface ShardInfo {
  id: string;
  parent?: string;
}

/** This process's read position in a shard: ahead of its mark until the next write. */
interface Cursor extends ShardMark {
  iterator?: string;
}

/** What the holder knows it holds: the lease's epoch and the state as last written. */
interface Held {
  epoch: bigint;
  next: Position;
  marks: Map<string, ShardMark>;
  pending: IndexRecord[];
  /** When this holder last wrote (its lease then runs for leaseMs from that moment). */
  wroteAt: number;
  /** The backfill marked in the state as last written. */
  backfill?: BackfillMark;
}

/** What the indexer has done, for tests, benchmarks and logs. */
export interface IndexerStats {
  entries: number;
  pages: number;
  writes: number;
  takeovers: number;
}

/** Refresh the shard list at least this often (new shards appear when old ones close). */
const SHARD_REFRESH_MS = 10_000;
/** Pages read at takeover to learn the newest indexed version of recently written streams. */
const SEED_PAGES = 50;
/** Streams whose newest indexed version the holder remembers. */
const REMEMBERED_STREAMS = 100_000;
/** Default of FeedIndexerOptions.backfillSettleMs. */
const BACKFILL_SETTLE_MS = 10_000;

/**
 * The feed indexer of the DynamoDB store: one per deployment, elected among the replicas.
 *
 * Every replica runs a contender. The holder of the lease (the state item of the feed table:
 * holder, epoch, expiry) reads every shard of the events table's DynamoDB stream, parents before
 * children, and turns each round of records into one write: a TransactWriteItems of the feed
 * page items (positions next, next + 1, ...) and an update of the state item (next position,
 * each shard's last sequence number, held-back entries, lease expiry), on condition that the
 * state still names this holder, its epoch and the next position it read, and that the lease has
 * not expired by the holder's clock. A takeover bumps the epoch, so a deposed holder's write fails
 * whole: no page is written twice, and the checkpoint moves with the pages it covers. Killing the
 * holder loses nothing: the next holder, after the lease expired, resumes at the checkpoint.
 *
 * Each stream's entries are indexed in version order: a round's entries of one stream are sorted
 * by version, an entry below the stream's newest indexed version is a duplicate and dropped, and
 * one past a gap waits (in the state item) until the gap is filled.
 *
 * A backfill (tables written before the feed existed, docs/dynamodb.md) runs through the same
 * lease and writes: while the state marks one, only a contender with the `backfill` option takes
 * the lease. It scans the events table (scanRound: a Scan page per write, the page's last key in
 * the mark), then reads the stream like any holder but knowing every stream's newest indexed
 * version (`complete`), and removes the mark in the write of the round that hands over.
 */
export class FeedIndexer {
  readonly holderId: string;
  /** Requests of this indexer, to DynamoDB and to its stream. */
  readonly meter = new RequestMeter();
  readonly stats: IndexerStats = { entries: 0, pages: 0, writes: 0, takeovers: 0 };
  private readonly settings: FeedIndexerSettings;
  private readonly client: DynamoDBClient;
  private readonly streams: DynamoDBStreamsClient;
  private readonly tables: TableNames;
  private readonly log: IndexerLog;
  private held: Held | undefined;
  private streamArn: string | undefined;
  private shards: ShardInfo[] = [];
  private shardsReadAt = 0;
  private cursors = new Map<string, Cursor>();
  /** Newest indexed version of the streams indexed lately. */
  private readonly indexed = new LRUCache<string, bigint>({ max: REMEMBERED_STREAMS });
  /** Streams not in `indexed` whose entries wait a round (orderRound). */
  private readonly unsure = new Set<string>();
  private running: Promise<void> | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private wake: AbortController = new AbortController();
  private waiters: Array<{ since: number; resolve: () => void }> = [];
  /**
   * During a backfill's stream phase: the newest indexed version of every stream in the feed
   * (all of it was written by the backfill), so that each duplicate of a scanned entry is dropped.
   */
  private complete: Map<string, bigint> | undefined;
  /** A live contender logged that a backfill is pending (once per wait). */
  private toldBackfillPending = false;
  /** A backfill contender's end: resolved once the mark is gone (or was never there). */
  private backfillEnded: { resolve: (outcome: BackfillOutcome) => void; reject: (error: Error) => void } | undefined;
  private fromStream = 0;

  constructor(private readonly options: FeedIndexerOptions) {
    this.settings = {
      leaseMs: options.leaseMs ?? DEFAULT_INDEXER_SETTINGS.leaseMs,
      pollIntervalMs: options.pollIntervalMs ?? DEFAULT_INDEXER_SETTINGS.pollIntervalMs,
      batchSize: options.batchSize ?? DEFAULT_INDEXER_SETTINGS.batchSize,
    };
    this.holderId = options.holderId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.client = createDynamoDbClient(options);
    this.meter.attach(this.client);
    this.streams = new DynamoDBStreamsClient({
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts ?? 5,
      requestHandler: { connectionTimeout: 3000, requestTimeout: options.requestTimeoutMs ?? 10_000, throwOnRequestTimeout: true },
    });
    this.meter.attach(this.streams);
    this.tables = tableNames(options.tablePrefix);
    this.log = options.log ?? (() => undefined);
  }

  /** Whether this contender holds the lease now. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** What the backfill run by this contender has done so far (`backfill` option). */
  get backfillProgress(): BackfillProgress {
    const mark = this.held?.backfill;
    return {
      phase: mark?.phase ?? 'waiting',
      streams: mark?.streams ?? 0,
      entries: mark?.entries ?? 0,
      fromStream: this.fromStream,
    };
  }

  /**
   * Runs the backfill marked in the feed's state, if any (this contender needs the `backfill`
   * option): waits for the lease (live holders leave it while a backfill is marked), scans the
   * events table, reads the table's stream up to the present, removes the mark and releases the
   * lease. Resumes a backfill that an earlier run left part-way. Resolves with what was done;
   * `ran` false when there was nothing to backfill. Rejects when stopped (stop()) before the end.
   */
  async runBackfill(): Promise<BackfillOutcome> {
    if (this.options.backfill !== true) throw new Error('runBackfill needs a contender with the backfill option');
    const ended = new Promise<BackfillOutcome>((resolve, reject) => (this.backfillEnded = { resolve, reject }));
    this.start();
    try {
      return await ended;
    } finally {
      await this.stop();
    }
  }

  /** Starts contending for the lease, and indexing while holding it. */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops; a holder releases the lease so that another replica takes over at once. */
  stop(): Promise<void> {
    this.stopped ??= this.halt();
    return this.stopped;
  }

  private async halt(): Promise<void> {
    this.stopping = true;
    this.backfillEnded?.reject(new Error('stopped before the backfill ended; run it again to resume'));
    this.backfillEnded = undefined;
    this.wake.abort();
    await this.running;
    if (this.held) await this.release().catch((error: unknown) => this.log('warn', 'could not release the feed lease', { err: error }));
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    this.client.destroy();
    this.streams.destroy();
  }

  /**
   * Resolves once this contender holds the lease and a round that began after the call found
   * nothing new in any shard and held nothing back: every entry committed before the call is in
   * the feed. Rejects after `timeoutMs`.
   */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const since = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.waiters.push({ since, resolve });
          this.wake.abort();
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the feed indexer did not catch up within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let found = false;
      try {
        if (!this.held) await this.contend();
        if (this.held) found = await this.round();
      } catch (error) {
        this.log('warn', 'feed indexer round failed; retrying', { err: error, holder: this.holderId });
        // Whatever was read and not written is read again from the checkpoint.
        this.cursors.clear();
      }
      if (this.stopping) break;
      if (found) continue;
      const wait = this.held ? this.settings.pollIntervalMs : Math.max(this.settings.leaseMs / 4, this.settings.pollIntervalMs);
      await sleep(wait, undefined, { signal: this.wake.signal }).catch(() => undefined);
      if (this.wake.signal.aborted && !this.stopping) this.wake = new AbortController();
    }
  }

  // ---- the lease ----

  /** Takes the lease when nobody holds it or its holder let it expire. */
  private async contend(): Promise<void> {
    const state = await this.readState();
    const now = Date.now();
    const expiresAt = now + this.settings.leaseMs;
    if (this.options.backfill === true && !state?.backfill) {
      // Nothing (more) to backfill: this contender's work is done, the live ones index.
      this.endBackfill(false);
      return;
    }
    if (this.options.backfill !== true && state?.backfill) {
      if (!this.toldBackfillPending) {
        this.log('warn', 'a feed backfill is pending or running: this replica does not index the feed until "eventhorizon dynamodb backfill-feed" has run', {
          holder: this.holderId,
        });
        this.toldBackfillPending = true;
      }
      return;
    }
    this.toldBackfillPending = false;
    if (!state) {
      const created: StateItem = { holder: this.holderId, epoch: 1n, expiresAt, next: 1n, marks: new Map(), pending: [] };
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tables.feed,
            Item: stateItem(created),
            ConditionExpression: 'attribute_not_exists(#k)',
            ExpressionAttributeNames: { '#k': FeedAttr.kind },
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) return;
        throw error;
      }
      await this.hold(created, now);
      return;
    }
    if (state.holder !== '' && state.expiresAt >= now) return;
    const epoch = state.epoch + 1n;
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tables.feed,
          Key: stateKey(),
          UpdateExpression: 'SET #h = :me, #e = :e2, #x = :x',
          ConditionExpression: '#e = :e',
          ExpressionAttributeNames: { '#h': FeedAttr.holder, '#e': FeedAttr.epoch, '#x': FeedAttr.expiresAt },
          ExpressionAttributeValues: {
            ':me': { S: this.holderId },
            ':e2': { N: epoch.toString() },
            ':e': { N: state.epoch.toString() },
            ':x': { N: String(expiresAt) },
          },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) return;
      throw error;
    }
    await this.hold({ ...state, holder: this.holderId, epoch, expiresAt }, now);
  }

  private async hold(state: StateItem, now: number): Promise<void> {
    this.held = {
      epoch: state.epoch,
      next: state.next,
      marks: state.marks,
      pending: state.pending,
      wroteAt: now,
      ...(state.backfill ? { backfill: state.backfill } : {}),
    };
    this.cursors.clear();
    this.shardsReadAt = 0;
    this.stats.takeovers++;
    this.log('info', 'holding the feed indexer lease', { holder: this.holderId, epoch: state.epoch.toString(), next: state.next.toString() });
    await this.seedIndexedVersions();
  }

  /** Learns the newest indexed version of the streams in the last pages (duplicates are dropped by it). */
  private async seedIndexedVersions(): Promise<void> {
    this.indexed.clear();
    this.unsure.clear();
    this.complete = undefined;
    if (this.held?.backfill?.phase === 'stream') {
      await this.seedComplete(this.held);
      return;
    }
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tables.feed,
        KeyConditionExpression: '#k = :p',
        ExpressionAttributeNames: { '#k': FeedAttr.kind },
        ExpressionAttributeValues: { ':p': { S: PAGES } },
        ScanIndexForward: false,
        Limit: SEED_PAGES,
        ConsistentRead: true,
      }),
    );
    for (const item of (Items ?? []).reverse()) {
      for (const record of readPageItem(item).records) this.remember(record);
    }
  }

  /**
   * Reads every page of the feed (all written by the backfill, which began on an empty feed) for
   * the newest indexed version of each stream; renews the lease meanwhile.
   */
  private async seedComplete(held: Held): Promise<void> {
    const complete = new Map<string, bigint>();
    let start: Item | undefined;
    do {
      const { Items, LastEvaluatedKey } = await this.client.send(
        new QueryCommand({
          TableName: this.tables.feed,
          KeyConditionExpression: '#k = :p',
          ExpressionAttributeNames: { '#k': FeedAttr.kind },
          ExpressionAttributeValues: { ':p': { S: PAGES } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of Items ?? []) {
        for (const { stream, version } of readPageItem(item).records) {
          const last = complete.get(stream);
          if (last === undefined || version > last) complete.set(stream, version);
        }
      }
      start = LastEvaluatedKey;
      if (Date.now() - held.wroteAt > this.settings.leaseMs / 3) await this.write(held, [], held.pending, held.backfill);
      if (this.held !== held) throw new Error('lost the feed indexer lease while reading the feed');
    } while (start);
    this.complete = complete;
  }

  private async release(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tables.feed,
          Key: stateKey(),
          UpdateExpression: 'SET #h = :none, #x = :zero',
          ConditionExpression: '#h = :me AND #e = :e',
          ExpressionAttributeNames: { '#h': FeedAttr.holder, '#e': FeedAttr.epoch, '#x': FeedAttr.expiresAt },
          ExpressionAttributeValues: {
            ':none': { S: '' },
            ':zero': { N: '0' },
            ':me': { S: this.holderId },
            ':e': { N: held.epoch.toString() },
          },
        }),
      );
      this.log('info', 'released the feed indexer lease', { holder: this.holderId });
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  private async readState(): Promise<StateItem | undefined> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tables.feed, Key: stateKey(), ConsistentRead: true }));
    return Item ? readStateItem(Item) : undefined;
  }

  // ---- one round ----

  /**
   * Reads what the shards have, in lineage order, and writes it as one batch. Returns whether it
   * filled a batch (the next round then starts at once).
   */
  private async round(): Promise<boolean> {
    const held = this.held;
    if (!held) return false;
    // A backfill contender indexes nothing once its backfill is done (runBackfill stops it).
    if (this.options.backfill === true && !held.backfill) return false;
    if (held.backfill?.phase === 'scan') return this.scanRound(held, held.backfill);
    const started = Date.now();
    if (started - this.shardsReadAt > SHARD_REFRESH_MS) await this.refreshShards(held);
    const read: IndexRecord[] = [];
    let records = 0;
    let finished = false;
    const done = new Set<string>();
    for (const shard of this.shards) {
      if (read.length >= this.settings.batchSize) break;
      const cursor = this.cursorOf(shard.id, held);
      if (cursor.done) {
        done.add(shard.id);
        continue;
      }
      // Lineage: a child is read once its parent is read to its end (or trimmed from the list).
      if (shard.parent !== undefined && !done.has(shard.parent) && this.shards.some((s) => s.id === shard.parent)) continue;
      const got = await this.readShard(shard.id, cursor, this.settings.batchSize - read.length);
      records += got.length;
      for (const record of got) {
        const seq = record.dynamodb?.SequenceNumber;
        if (seq !== undefined) cursor.seq = seq;
        const entry = entryOf(record);
        if (entry) read.push(entry);
      }
      if (cursor.done) {
        done.add(shard.id);
        finished = true;
        this.shardsReadAt = 0;
      }
    }
    const { indexed, pending } = this.order([...held.pending, ...read]);
    const renewDue = Date.now() - held.wroteAt > this.settings.leaseMs / 3;
    // A backfill hands over once a round that began long enough after its scan read the stream
    // up to the present (not a full batch): the stream holds no scanned entry past that point.
    // Entries held back past a gap are waited for a while (the rest of a transaction comes in
    // the next read), then left in the state for the live holder.
    const mark = held.backfill;
    const settle = this.options.backfillSettleMs ?? BACKFILL_SETTLE_MS;
    const scanEndedAt = mark?.scanEndedAt ?? 0;
    const handover =
      mark !== undefined &&
      started >= scanEndedAt + settle &&
      read.length < this.settings.batchSize &&
      (pending.length === 0 || started >= scanEndedAt + 3 * settle);
    if (indexed.length > 0 || pending.length !== held.pending.length || renewDue || finished || handover) {
      if (indexed.length > 0) await this.options.beforeWrite?.(indexed.length);
      await this.write(held, indexed, pending, handover ? undefined : mark);
      if (mark !== undefined && this.held === held) this.fromStream += indexed.length;
      if (handover && this.held === held && !held.backfill) this.endBackfill(true, mark);
    }
    if (records === 0 && pending.length === 0) this.settle(started);
    // A full batch: more is waiting, read on at once. Otherwise wait for the poll interval, so
    // that under load each write carries what came meanwhile (many entries per write).
    return read.length >= this.settings.batchSize;
  }

  /** Lists the stream's shards (following DescribeStream's pages) and drops marks of shards gone. */
  private async refreshShards(held: Held): Promise<void> {
    this.streamArn ??= await eventsStreamOf(this.client, this.tables.events);
    if (!this.streamArn) throw new Error(`table ${this.tables.events} has no stream: run "eventhorizon dynamodb create-tables"`);
    const shards: ShardInfo[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(
        new DescribeStreamCommand({ StreamArn: this.streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) }),
      );
      for (const shard of StreamDescription?.Shards ?? []) {
        if (shard.ShardId) shards.push({ id: shard.ShardId, ...(shard.ParentShardId ? { parent: shard.ParentShardId } : {}) });
      }
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    // Parents before children, whatever order the listing had.
    const known = new Set(shards.map((s) => s.id));
    const ordered: ShardInfo[] = [];
    const placed = new Set<string>();
    const place = (shard: ShardInfo) => {
      if (placed.has(shard.id)) return;
      placed.add(shard.id);
      const parent = shard.parent !== undefined && known.has(shard.parent) ? shards.find((s) => s.id === shard.parent) : undefined;
      if (parent) place(parent);
      ordered.push(shard);
    };
    shards.forEach(place);
    this.shards = ordered;
    this.shardsReadAt = Date.now();
    if (known.size > 0) for (const id of held.marks.keys()) if (!known.has(id)) held.marks.delete(id);
  }

  private cursorOf(shard: string, held: Held): Cursor {
    let cursor = this.cursors.get(shard);
    if (!cursor) {
      cursor = { ...held.marks.get(shard) };
      this.cursors.set(shard, cursor);
    }
    return cursor;
  }

  /** Up to `limit` records of a shard after the cursor; marks the cursor done at a closed shard's end. */
  private async readShard(shard: string, cursor: Cursor, limit: number): Promise<StreamRecord[]> {
    const arn = this.streamArn as string;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!cursor.iterator) {
        try {
          const { ShardIterator } = await this.streams.send(
            new GetShardIteratorCommand({
              StreamArn: arn,
              ShardId: shard,
              ...(cursor.seq ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: cursor.seq } : { ShardIteratorType: 'TRIM_HORIZON' }),
            }),
          );
          if (!ShardIterator) {
            cursor.done = true;
            return [];
          }
          cursor.iterator = ShardIterator;
        } catch (error) {
          if (errorName(error) === 'TrimmedDataAccessException') {
            // The checkpoint is older than the stream's 24 hours: what was between is not in the feed.
            this.log('error', 'stream records were trimmed before they were indexed: entries are missing from the feed (docs/dynamodb.md, "The feed")', { shard });
            delete cursor.seq;
            continue;
          }
          if (errorName(error) === 'ResourceNotFoundException') {
            cursor.done = true;
            return [];
          }
          throw error;
        }
      }
      try {
        const { Records, NextShardIterator } = await this.streams.send(
          new GetRecordsCommand({ ShardIterator: cursor.iterator, Limit: Math.max(1, Math.min(1000, limit)) }),
        );
        if (NextShardIterator) cursor.iterator = NextShardIterator;
        else {
          delete cursor.iterator;
          cursor.done = true;
        }
        return Records ?? [];
      } catch (error) {
        if (errorName(error) === 'ExpiredIteratorException' || errorName(error) === 'TrimmedDataAccessException') {
          delete cursor.iterator;
          continue;
        }
        throw error;
      }
    }
    return [];
  }

  /** Orders a round's entries: see orderRound. */
  private order(records: IndexRecord[]): { indexed: IndexRecord[]; pending: IndexRecord[] } {
    const complete = this.complete;
    // The backfill knows every stream's newest indexed version: a stream it does not know has
    // none, so its entries are indexed from version 0 on.
    if (complete) return orderRound(records, (stream) => complete.get(stream) ?? -1n, this.unsure);
    return orderRound(records, (stream) => this.indexed.get(stream), this.unsure);
  }

  /**
   * One batch of the backfill's scan: a page of the events table after the mark's last key, in
   * key order (each stream's items in version order), its entries indexed in that order, written
   * with the page's last key as the new mark (or the stream phase after the last page).
   */
  private async scanRound(held: Held, mark: BackfillMark): Promise<boolean> {
    if (mark.after === undefined && mark.entries === 0 && held.next !== 1n) {
      throw new Error(`a backfill starts on an empty feed, and this one holds positions up to ${held.next - 1n}`);
    }
    const names = Object.fromEntries(FEED_ENTRY_ATTRIBUTES.map((name, i) => [`#a${i}`, name]));
    const { Items = [], LastEvaluatedKey } = await this.client.send(
      new ScanCommand({
        TableName: this.tables.events,
        ConsistentRead: true,
        Limit: this.settings.batchSize,
        ProjectionExpression: Object.keys(names).join(', '),
        ExpressionAttributeNames: names,
        ...(mark.after ? { ExclusiveStartKey: entryKey(mark.after.stream, mark.after.version) } : {}),
      }),
    );
    const records: IndexRecord[] = [];
    for (const item of Items) {
      if (!isFeedEntryImage(item)) continue;
      const stream = item[EntryAttr.stream]?.S;
      const version = item[EntryAttr.version]?.N;
      if (stream !== undefined && version !== undefined) records.push({ stream, version: BigInt(version) });
    }
    checkScanOrder(records, mark.after);
    const lastKey = LastEvaluatedKey
      ? { stream: LastEvaluatedKey[EntryAttr.stream]?.S ?? '', version: BigInt(LastEvaluatedKey[EntryAttr.version]?.N ?? '0') }
      : undefined;
    const counted = {
      streams: mark.streams + records.filter((record) => record.version === 0n).length,
      entries: mark.entries + records.length,
    };
    const next: BackfillMark = lastKey
      ? { phase: 'scan', after: lastKey, ...counted }
      : { phase: 'stream', ...counted, scanEndedAt: Date.now() };
    if (records.length > 0) await this.options.beforeWrite?.(records.length);
    await this.write(held, records, held.pending, next);
    if (this.held === held && held.backfill?.phase === 'stream' && !this.complete) {
      this.log('info', 'feed backfill: the scan is done; reading the stream up to the present', { streams: next.streams, entries: next.entries });
      // Every page of the feed is the scan's: learn each stream's newest indexed version.
      await this.seedIndexedVersions();
    }
    return lastKey !== undefined;
  }

  private endBackfill(ran: boolean, mark?: BackfillMark): void {
    const ended = this.backfillEnded;
    if (!ended) return;
    this.backfillEnded = undefined;
    ended.resolve({ ran, streams: mark?.streams ?? 0, entries: mark?.entries ?? 0, fromStream: this.fromStream });
  }

  /**
   * Writes a batch: its page items and the state, in one transaction fenced by the lease (or the
   * state alone when there is no entry), with `backfill` as the state's backfill mark (undefined:
   * none; a backfill's holder removes it so). An outcome the answer did not tell (a lost response) is
   * read back from the state.
   */
  private async write(held: Held, indexed: IndexRecord[], pending: IndexRecord[], backfill: BackfillMark | undefined): Promise<void> {
    const next = held.next + BigInt(indexed.length);
    const marks = new Map(held.marks);
    for (const [shard, cursor] of this.cursors) {
      const mark: ShardMark = {};
      if (cursor.seq !== undefined) mark.seq = cursor.seq;
      if (cursor.done) mark.done = true;
      marks.set(shard, mark);
    }
    const now = Date.now();
    // A live holder writes only while no backfill is marked (create-tables may mark one while it
    // holds the lease); a backfill's holder sets the mark as it moves on, or removes it at the end.
    const backfillUpdate = backfill ? ', #b = :b' : held.backfill ? ' REMOVE #b' : '';
    const backfillCondition = held.backfill ? '' : ' AND attribute_not_exists(#b)';
    const update = {
      TableName: this.tables.feed,
      Key: stateKey(),
      UpdateExpression: `SET #x = :x, #q = :q2, #c = :c, #w = :w${backfillUpdate}`,
      ConditionExpression: `#h = :me AND #e = :e AND #q = :q AND #x > :now${backfillCondition}`,
      ExpressionAttributeNames: {
        '#h': FeedAttr.holder,
        '#e': FeedAttr.epoch,
        '#q': FeedAttr.next,
        '#x': FeedAttr.expiresAt,
        '#c': FeedAttr.shards,
        '#w': FeedAttr.pending,
        '#b': FeedAttr.backfill,
      },
      ExpressionAttributeValues: {
        ':me': { S: this.holderId },
        ':e': { N: held.epoch.toString() },
        ':q': { N: held.next.toString() },
        ':q2': { N: next.toString() },
        ':x': { N: String(now + this.settings.leaseMs) },
        // Not past the lease this holder last wrote, by its own clock.
        ':now': { N: String(now) },
        ':c': { S: marksJson(marks) },
        ':w': { S: pendingJson(pending) },
        ...(backfill ? { ':b': { S: backfillJson(backfill) } } : {}),
      },
    };
    const pages = indexed.length > 0 ? pageItems(held.next, indexed) : [];
    try {
      if (pages.length === 0) {
        await this.client.send(new UpdateItemCommand(update));
      } else {
        await this.client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              ...pages.map((Item) => ({
                Put: {
                  TableName: this.tables.feed,
                  Item,
                  ConditionExpression: 'attribute_not_exists(#n)',
                  ExpressionAttributeNames: { '#n': FeedAttr.position },
                },
              })),
              { Update: update },
            ],
            // The SDK's retries of a write that landed are recognised by DynamoDB for 10 minutes.
            ClientRequestToken: randomUUID(),
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
      }
    } catch (error) {
      await this.afterFailedWrite(held, next, error);
      return;
    }
    this.committed(held, next, marks, pending, indexed, pages.length, now, backfill);
  }

  private committed(
    held: Held,
    next: Position,
    marks: Map<string, ShardMark>,
    pending: IndexRecord[],
    indexed: IndexRecord[],
    pages: number,
    now: number,
    backfill: BackfillMark | undefined,
  ): void {
    held.next = next;
    held.marks = marks;
    held.pending = pending;
    held.wroteAt = now;
    if (backfill) held.backfill = backfill;
    else delete held.backfill;
    for (const record of indexed) this.remember(record);
    this.stats.writes++;
    this.stats.entries += indexed.length;
    this.stats.pages += pages;
  }

  /**
   * After a write that failed or whose answer was lost: the state says whether the lease is still
   * ours and whether the write landed; either way the holder carries on from the state as stored.
   */
  private async afterFailedWrite(held: Held, next: Position, error: unknown): Promise<void> {
    const state = await this.readState();
    this.cursors.clear();
    if (!state || state.holder !== this.holderId || state.epoch !== held.epoch) {
      this.held = undefined;
      this.log('warn', 'lost the feed indexer lease', { holder: this.holderId, err: error });
      return;
    }
    if (state.backfill && !held.backfill) {
      // A backfill was marked while this live holder held the lease: leave it to the backfill.
      await this.release();
      return;
    }
    const landed = (next !== held.next && state.next === next) || backfillJsonOf(state.backfill) !== backfillJsonOf(held.backfill);
    held.next = state.next;
    held.marks = state.marks;
    held.pending = state.pending;
    if (state.backfill) held.backfill = state.backfill;
    else delete held.backfill;
    await this.seedIndexedVersions();
    if (landed) {
      held.wroteAt = Date.now();
      return;
    }
    if (state.expiresAt <= Date.now()) {
      // Our own lease ran out (a stalled process): contend again, like anyone.
      this.held = undefined;
      return;
    }
    throw error;
  }

  private remember(record: IndexRecord): void {
    const last = this.indexed.get(record.stream);
    if (last === undefined || record.version > last) this.indexed.set(record.stream, record.version);
    const complete = this.complete;
    if (complete && (complete.get(record.stream) ?? -1n) < record.version) complete.set(record.stream, record.version);
  }

  private settle(started: number): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (waiter.since <= started) waiter.resolve();
      else this.waiters.push(waiter);
    }
  }
}

/** The entry a stream record announces, or undefined for anything else (fence, removal, chunk). */
function entryOf(record: StreamRecord): IndexRecord | undefined {
  if (record.eventName !== 'INSERT') return undefined;
  const image = record.dynamodb?.NewImage;
  if (!isFeedEntryImage(image)) return undefined;
  const stream = record.dynamodb?.Keys?.s?.S;
  const version = record.dynamodb?.Keys?.v?.N;
  if (stream === undefined || version === undefined) return undefined;
  return { stream, version: BigInt(version) };
}

function backfillJsonOf(mark: BackfillMark | undefined): string {
  return mark ? backfillJson(mark) : '';
}

/**
 * Checks the order a Scan gave: each stream's items together and in ascending versions, after
 * the last key of the previous page. Positions are given in this order, so any other would put a
 * stream's entries out of version order in the feed: the batch is refused rather than written.
 */
export function checkScanOrder(records: IndexRecord[], after: { stream: string; version: bigint } | undefined): void {
  const finished = new Set<string>();
  let previous = after;
  for (const record of records) {
    if (previous && record.stream === previous.stream) {
      if (record.version <= previous.version) {
        throw new Error(`the scan gave version ${record.version} of ${record.stream} after version ${previous.version}`);
      }
    } else {
      if (finished.has(record.stream)) throw new Error(`the scan gave entries of ${record.stream} apart from each other`);
      if (previous) finished.add(previous.stream);
    }
    previous = record;
  }
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function isConditionFailure(error: unknown): boolean {
  const name = errorName(error);
  return name === 'ConditionalCheckFailedException' || name === 'TransactionCanceledException';
}

/**
 * Orders a round's entries (held-back ones first, then as read): each stream's in version order,
 * without duplicates; an entry past a gap in its stream is held back (pending). Positions follow
 * the order of reading; within a stream, its slots take its versions in ascending order.
 *
 * A stream whose newest indexed version is unknown (not among the remembered ones: after a
 * takeover, or forgotten) and whose first entry read is past version 0 waits one round first.
 * Its earlier versions may be indexed long ago, or may be in the next round: the entries of one
 * group-committed transaction come in any order, and a read may end between them. Indexing the
 * later version at once would drop the earlier one as a duplicate when it came; after a round,
 * whatever of the transaction there is has been read. `unsure` keeps the streams waiting.
 */
export function orderRound(
  records: IndexRecord[],
  newestIndexed: (stream: string) => bigint | undefined,
  unsure: Set<string>,
): { indexed: IndexRecord[]; pending: IndexRecord[] } {
  const byStream = new Map<string, bigint[]>();
  for (const { stream, version } of records) {
    const versions = byStream.get(stream) ?? [];
    versions.push(version);
    byStream.set(stream, versions);
  }
  const accepted = new Map<string, bigint[]>();
  const pending: IndexRecord[] = [];
  for (const [stream, versions] of byStream) {
    const sorted = [...new Set(versions)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const last = newestIndexed(stream);
    const first = sorted[0];
    if (last === undefined && first !== undefined && first > 0n && !unsure.has(stream)) {
      unsure.add(stream);
      for (const version of sorted) pending.push({ stream, version });
      continue;
    }
    unsure.delete(stream);
    const take: bigint[] = [];
    let expect = last === undefined ? first : last + 1n;
    for (const version of sorted) {
      if (expect === undefined || version < expect) continue; // indexed already: a duplicate
      if (version === expect) {
        take.push(version);
        expect++;
      } else {
        pending.push({ stream, version });
      }
    }
    accepted.set(stream, take);
  }
  const indexed: IndexRecord[] = [];
  for (const { stream } of records) {
    const version = accepted.get(stream)?.shift();
    if (version !== undefined) indexed.push({ stream, version });
  }
  return { indexed, pending };
}
