import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type TransactWriteItem,
  TransactionCanceledException,
  type Put,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { LRUCache } from 'lru-cache';
import {
  CallAbandonedError,
  InvalidArgumentError,
  ParentNotFoundError,
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  StreamShreddedError,
  WrongExpectedVersionError,
} from '../errors';
import type {
  AppendCommand,
  AppendResult,
  CreateStreamCommand,
  CreateStreamResult,
  EventStore,
  PayloadAt,
  PutSnapshotOptions,
  PutSnapshotResult,
  ReadPage,
  ReadQuery,
  SnapshotRecord,
  StoredEntry,
  StreamInfo,
  StreamKeys,
  Version,
  WrappedKey,
} from '../port';
import { cancellationReasons, storeFailure } from './aws-errors';
import {
  bigintOf,
  checkItemSize,
  entryItem,
  entryKey,
  itemSize,
  itemTooLarge,
  MAX_ITEM_BYTES,
  readEntryItem,
  type EntryItem,
  type Item,
} from './items';
import { KeyTable } from './key-table';
import { KeyedQueue } from './keyed-queue';
import { RequestMeter } from './request-meter';
import { StreamState, type EntryMeta } from './stream-cache';
import { ChildAttr, EntryAttr, SnapshotAttr, checkTables, createTables, tableNames, type TableNames } from './tables';

/** How to reach DynamoDB. Credentials come from the standard AWS chain unless given. */
export interface DynamoDbConnection {
  /** Endpoint URL, e.g. http://127.0.0.1:8000 for DynamoDB Local; the region's endpoint when unset. */
  endpoint?: string;
  /** AWS region; the standard chain (AWS_REGION, profile) when unset. */
  region?: string;
  /** Explicit credentials (tests against DynamoDB Local); the standard chain when unset. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** SDK attempts per request, the first included (default 5; fault tests lower it). */
  maxAttempts?: number;
  /** Longest wait for one request's answer before the SDK gives up on it (default 10 s). */
  requestTimeoutMs?: number;
}

/** How to build a DynamoDbStore: the connection, the tables and the replica's caches. */
export interface DynamoDbStoreOptions extends DynamoDbConnection {
  /** Prefix of the four table names (default "eventhorizon-"). */
  tablePrefix: string;
  /** Create missing tables at start-up (development); otherwise only check them. */
  createTables: boolean;
  /**
   * The idempotency window: a retried request id is recognised while its original is among this
   * many newest entries of its stream (default 100).
   */
  idempotencyWindow?: number;
  /** Streams whose head this replica remembers (default 10,000; least recently used go first). */
  maxCachedStreams?: number;
}

/** Write attempts for one append or create under contention from other replicas. */
const MAX_WRITE_ATTEMPTS = 30;
const DEFAULT_IDEMPOTENCY_WINDOW = 100;
const DEFAULT_MAX_CACHED_STREAMS = 10_000;
/** Longest wait for a health ping's answer: past it, DynamoDB counts as unreachable. */
const PING_TIMEOUT_MS = 3_000;

/**
 * The DynamoDB store, for several replicas sharing the same tables.
 *
 * - events: one item per entry (partition `s` = stream, sort `v` = version). An append is one
 *   conditional PutItem at the cached head + 1; the head and the request ids of the newest
 *   entries are cached per stream (see StreamState), so the steady state costs one write request.
 * - children: one item per child (partition `s` = parent, sort `c` = child path), written in the
 *   CreateStream transaction, for ListChildren and child counts.
 * - snapshots: one item per perspective (partition `s`, sort `c`), replaced only by newer ones.
 * - keys: streams' wrapped data keys (see KeyTable).
 *
 * Each replica writes a stream's entries one write at a time (KeyedQueue); appends and creates
 * that gather meanwhile share the next write, a transaction (group commit).
 */
export class DynamoDbStore implements EventStore {
  readonly features = { sharedWithOtherProcesses: true };
  /** Requests and capacity units used so far (tests and benchmarks read it). */
  readonly meter = new RequestMeter();
  private readonly client: DynamoDBClient;
  private readonly tables: TableNames;
  /** What this replica knows of the streams it used most recently. */
  private readonly cache: LRUCache<string, StreamState>;
  private readonly writes = new KeyedQueue();
  private readonly window: number;
  private readonly keys: KeyTable;
  /** The tables' creation or check, once. */
  private opened: Promise<void> | undefined;
  /** Appends waiting for their stream's next write, by stream. */
  private readonly pendingAppends = new Map<string, PendingAppend[]>();
  /** Creates waiting for their parent's next transaction, by parent. */
  private readonly pendingCreates = new Map<string, PendingCreate[]>();
  private closed = false;

  constructor(private readonly options: DynamoDbStoreOptions) {
    this.client = createDynamoDbClient(options);
    this.meter.attach(this.client);
    this.tables = tableNames(options.tablePrefix);
    this.window = options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW;
    this.cache = new LRUCache({ max: options.maxCachedStreams ?? DEFAULT_MAX_CACHED_STREAMS });
    this.keys = new KeyTable(this.client, this.tables.keys, (request) => this.call(request));
  }

  open(): Promise<void> {
    // After close, as every other method: the memoized promise would say it is open.
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    this.opened ??= this.prepareTables().catch((error: unknown) => {
      // A failed attempt is not remembered: the next call tries again.
      this.opened = undefined;
      throw error;
    });
    return this.opened;
  }

  private async prepareTables(): Promise<void> {
    if (this.options.createTables) await createTables(this.client, this.tables);
    else await checkTables(this.client, this.tables);
  }

  async init(rootPayload: Uint8Array, recordedAt: Date): Promise<void> {
    await this.open();
    const root: EntryItem = {
      stream: '/',
      version: 0n,
      payload: rootPayload,
      recordedAt,
      bytesThrough: BigInt(rootPayload.byteLength),
    };
    try {
      await this.call(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.tables.events,
            Item: entryItem(root),
            ConditionExpression: 'attribute_not_exists(#v)',
            ExpressionAttributeNames: { '#v': EntryAttr.version },
          }),
        ),
      );
    } catch (error) {
      // Another replica, or an earlier start, wrote the root: nothing to do.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  createStream(command: CreateStreamCommand): Promise<CreateStreamResult> {
    const { stream, recordedAt } = command;
    const started: EntryItem = {
      stream,
      version: 0n,
      payload: command.startedPayload,
      recordedAt,
      bytesThrough: BigInt(command.startedPayload.byteLength),
    };
    const initial: EntryItem | undefined = command.initialPayload && {
      stream,
      version: 1n,
      payload: command.initialPayload,
      recordedAt,
      bytesThrough: started.bytesThrough + BigInt(command.initialPayload.byteLength),
    };
    const childItems = [entryItem(started), ...(initial ? [entryItem(initial)] : [])];
    try {
      for (const item of childItems) checkItemSize(item);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const waiting = this.pendingCreates.get(command.parent) ?? [];
      waiting.push({ command, started, ...(initial ? { initial } : {}), childItems, resolve, reject });
      this.pendingCreates.set(command.parent, waiting);
      // Through the parent's queue: the `child-created` entries take the parent's next versions.
      void this.writes.run(command.parent, () => this.createPending(command.parent));
    });
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      const waiting = this.pendingAppends.get(command.stream) ?? [];
      waiting.push({ command, resolve, reject });
      this.pendingAppends.set(command.stream, waiting);
      void this.writes.run(command.stream, () => this.appendPending(command.stream));
    });
  }

  /**
   * A page and the head version as of one moment, so that a client reading the latest entry and
   * appending with expected_version = head_version never writes after an entry it has not seen.
   * Entries never change once written, so a page stays a true answer after it was read; only its
   * end can go stale. Hence: a forward page that reached the head, and a backward page that began
   * below `fromVersion`, start at the head as it was when read (no second request); any other page
   * ends before the head, and the head read after it agrees with it, except an empty forward page
   * whose head has since reached `fromVersion`, which is read again up to that head.
   */
  async read(stream: string, query: ReadQuery): Promise<ReadPage> {
    let page = await this.readRange(stream, query);
    if (query.direction === 'forward') {
      const last = page.entries[page.entries.length - 1];
      if (last && !page.more) return { ...page, headVersion: last.version };
    } else {
      // Versions have no gaps: the newest entry at or below `fromVersion`, when below it, is the head.
      const first = page.entries[0];
      if (first && first.version < query.fromVersion) return { ...page, headVersion: first.version };
    }
    const headVersion = await this.headVersion(stream);
    if (headVersion === undefined) throw new StreamNotFoundError(stream);
    if (query.direction === 'forward' && page.entries.length === 0 && headVersion >= query.fromVersion) {
      page = await this.readRange(stream, query, headVersion);
    }
    return { ...page, headVersion };
  }

  /** One page of entries, in the query's direction; forwards up to `upTo` (inclusive) when given. */
  private async readRange(
    stream: string,
    query: ReadQuery,
    upTo?: Version,
  ): Promise<{ entries: StoredEntry[]; more: boolean }> {
    const forward = query.direction === 'forward';
    const bounded = forward && upTo !== undefined;
    const entries: StoredEntry[] = [];
    let bytes = 0;
    let more = false;
    let startKey: Item | undefined;
    collect: do {
      const page = await this.call(
        () =>
          this.client.send(
            new QueryCommand({
              TableName: this.tables.events,
              KeyConditionExpression: bounded
                ? '#s = :s AND #v BETWEEN :v AND :to'
                : `#s = :s AND #v ${forward ? '>=' : '<='} :v`,
              ExpressionAttributeNames: { '#s': EntryAttr.stream, '#v': EntryAttr.version },
              ExpressionAttributeValues: {
                ':s': { S: stream },
                ':v': { N: query.fromVersion.toString() },
                ...(bounded ? { ':to': { N: upTo.toString() } } : {}),
              },
              ScanIndexForward: forward,
              // A just-acknowledged append must be visible to the next read, on any replica.
              ConsistentRead: true,
              // One more than asked tells whether more exist; DynamoDB may stop earlier at 1 MB.
              Limit: query.limit + 1 - entries.length,
              ExclusiveStartKey: startKey,
              ReturnConsumedCapacity: 'TOTAL',
            }),
            // A caller that gave up stops the SDK's retries too.
            query.signal ? { abortSignal: query.signal } : {},
          ),
        query.signal,
      );
      for (const raw of page.Items ?? []) {
        const entry = readEntryItem(raw);
        // The shred fence: this replica may still hold the stream's keys (cached), but the page
        // reaches past the shred, so nothing of it is served any more.
        if (entry.shredded) throw new StreamShreddedError(stream);
        if (
          entries.length === query.limit ||
          (entries.length > 0 && bytes + entry.payload.byteLength > query.maxBytes)
        ) {
          more = true;
          break collect;
        }
        bytes += entry.payload.byteLength;
        entries.push({ version: entry.version, recordedAt: entry.recordedAt, payload: entry.payload });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return { entries, more };
  }

  async describe(stream: string): Promise<StreamInfo | undefined> {
    const [head, first, childCount] = await Promise.all([
      this.headItem(stream),
      this.call(() =>
        this.client.send(
          new GetItemCommand({
            TableName: this.tables.events,
            Key: entryKey(stream, 0n),
            ConsistentRead: true,
            ProjectionExpression: '#t',
            ExpressionAttributeNames: { '#t': EntryAttr.recordedAt },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      ),
      this.countChildren(stream),
    ]);
    if (!head) return undefined;
    const createdAt = first.Item ? new Date(Number(bigintOf(first.Item, EntryAttr.recordedAt))) : head.recordedAt;
    return { path: stream, headVersion: entryHead(head), createdAt, childCount, bytesStored: head.bytesThrough };
  }

  async listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]> {
    const [exists, children] = await Promise.all([
      this.exists(stream),
      this.queryAll(
        {
          TableName: this.tables.children,
          KeyConditionExpression: after === undefined ? '#s = :s' : '#s = :s AND #c > :after',
          ExpressionAttributeNames: { '#s': ChildAttr.parent, '#c': ChildAttr.child },
          ExpressionAttributeValues: {
            ':s': { S: stream },
            ...(after === undefined ? {} : { ':after': { S: after } }),
          },
          ProjectionExpression: '#c',
          ConsistentRead: true,
        },
        limit,
      ),
    ]);
    if (!exists) throw new StreamNotFoundError(stream);
    return children.map((item) => item[ChildAttr.child]?.S ?? '');
  }

  async putSnapshot(stream: string, snapshot: SnapshotRecord, options: PutSnapshotOptions = {}): Promise<PutSnapshotResult> {
    const cached = this.cache.get(stream)?.head.version;
    // Heads only grow: a cached head at or past the snapshot settles it without a read.
    const head = cached !== undefined && cached >= snapshot.version ? cached : await this.headVersion(stream);
    if (head === undefined) throw new StreamNotFoundError(stream);
    if (snapshot.version > head) throw new SnapshotAheadOfStreamError(stream, snapshot.version, head);
    const item: Item = {
      [SnapshotAttr.stream]: { S: stream },
      [SnapshotAttr.perspective]: { S: snapshot.perspective },
      [SnapshotAttr.version]: { N: snapshot.version.toString() },
      [SnapshotAttr.payload]: { B: snapshot.payload },
      [SnapshotAttr.contentType]: { S: snapshot.contentType },
      [SnapshotAttr.storedAt]: { N: String(snapshot.storedAt.getTime()) },
    };
    checkItemSize(item, 'data');
    const put: Put = {
      TableName: this.tables.snapshots,
      Item: item,
      // Newer-only, decided by DynamoDB: two replicas storing at once cannot go backwards.
      ConditionExpression: 'attribute_not_exists(#v) OR #v < :v',
      ExpressionAttributeNames: { '#v': SnapshotAttr.version },
      ExpressionAttributeValues: { ':v': { N: snapshot.version.toString() } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    };
    const stored: PutSnapshotResult = { stored: true, storedVersion: snapshot.version };
    const notStored = (old: Item | undefined): PutSnapshotResult => ({
      stored: false,
      storedVersion: old ? bigintOf(old, SnapshotAttr.version) : snapshot.version,
    });
    if (options.sealed) return this.putSealedSnapshot(stream, put, stored, notStored);
    try {
      await this.call(() => this.client.send(new PutItemCommand({ ...put, ReturnConsumedCapacity: 'TOTAL' })));
      return stored;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return notStored(error.Item);
    }
  }

  /**
   * A sealed snapshot: its Put and a check that the stream's shred marker is absent, in one
   * transaction. This replica's keys may be cached from before a shred made elsewhere; the marker
   * is written before ShredStream returns, so once it has, no replica stores a snapshot nobody
   * could read. Snapshots are rare next to appends: the transaction's cost (about twice the write
   * units, plus 2 for the check) is paid only here, never on the append path.
   */
  private async putSealedSnapshot(
    stream: string,
    put: Put,
    stored: PutSnapshotResult,
    notStored: (old: Item | undefined) => PutSnapshotResult,
  ): Promise<PutSnapshotResult> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.transact([this.keys.notShredded(stream), { Put: put }]);
        return stored;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [marker, snapshot] = cancellationReasons(error) ?? [];
        if (marker?.code === 'condition') throw new StreamShreddedError(stream);
        if (snapshot?.code === 'condition') return notStored(snapshot.item);
        if (marker?.code === 'validation' || snapshot?.code === 'validation') {
          throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
        }
        // A conflict with another transaction on the same items (a rival snapshot, a shred), or
        // no reasons given: try again, and the next answer says which.
        await backoff(attempt);
      }
    }
    throw new StoreUnavailableError(`snapshots of ${stream} are too contended right now; retry later`);
  }

  async getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined> {
    const [exists, found] = await Promise.all([
      this.exists(stream),
      this.call(() =>
        this.client.send(
          new GetItemCommand({
            TableName: this.tables.snapshots,
            Key: snapshotKey(stream, perspective),
            ConsistentRead: true,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      ),
    ]);
    if (!exists) throw new StreamNotFoundError(stream);
    const item = found.Item;
    if (!item) return undefined;
    return {
      perspective,
      version: bigintOf(item, SnapshotAttr.version),
      payload: item[SnapshotAttr.payload]?.B ?? new Uint8Array(0),
      contentType: item[SnapshotAttr.contentType]?.S ?? '',
      storedAt: new Date(Number(bigintOf(item, SnapshotAttr.storedAt))),
    };
  }

  async deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    if (!(await this.exists(stream))) throw new StreamNotFoundError(stream);
    const result = await this.call(() =>
      this.client.send(
        new DeleteItemCommand({
          TableName: this.tables.snapshots,
          Key: snapshotKey(stream, perspective),
          ReturnValues: 'ALL_OLD',
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
    return result.Attributes !== undefined;
  }

  async listPerspectives(stream: string): Promise<string[]> {
    const [exists, items] = await Promise.all([
      this.exists(stream),
      this.queryAll(
        {
          TableName: this.tables.snapshots,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': SnapshotAttr.stream, '#c': SnapshotAttr.perspective },
          ExpressionAttributeValues: { ':s': { S: stream } },
          ProjectionExpression: '#c',
          ConsistentRead: true,
        },
        Number.MAX_SAFE_INTEGER,
      ),
    ]);
    if (!exists) throw new StreamNotFoundError(stream);
    return items.map((item) => item[SnapshotAttr.perspective]?.S ?? '');
  }

  getStreamKeys(stream: string): Promise<StreamKeys> {
    return this.keys.get(stream);
  }

  addStreamKey(stream: string, key: WrappedKey): Promise<boolean> {
    return this.keys.add(stream, key);
  }

  rewrapStreamKey(
    stream: string,
    dekVersion: number,
    expectedKekId: string,
    kekId: string,
    wrapped: Uint8Array,
  ): Promise<boolean> {
    return this.keys.rewrap(stream, dekVersion, expectedKekId, kekId, wrapped);
  }

  /**
   * Marks the keys shredded (no key can be added), fences the stream's entries (no append can be
   * acknowledged by any replica from then on, see fenceShredded), then deletes the keys.
   */
  async shredStreamKeys(stream: string, shreddedAt: Date): Promise<void> {
    await this.keys.markShredded(stream, shreddedAt);
    await this.writes.run(stream, () => this.fenceShredded(stream, shreddedAt));
    await this.keys.deleteKeys(stream);
  }

  listStreamKeys(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>> {
    return this.keys.list(after, limit);
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      // Bounded as a whole, SDK retries included: health must turn NOT_SERVING while DynamoDB
      // does not answer, not after several request timeouts.
      await this.client.send(new DescribeTableCommand({ TableName: this.tables.events }), {
        abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS),
      });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  // ---- appends ------------------------------------------------------------------------------

  /**
   * Writes the appends waiting on one stream. Runs in the stream's queue, so appends arriving
   * while a write is in flight gather: alone, an append is one PutItem (the steady state); several
   * go together in one transaction (group commit, as the embedded store does), which costs twice
   * the write units per entry but one round trip for up to 100 entries.
   */
  private async appendPending(stream: string): Promise<void> {
    const waiting = this.pendingAppends.get(stream);
    if (!waiting || waiting.length === 0) return;
    const batch = takeAppendBatch(waiting);
    if (waiting.length === 0) this.pendingAppends.delete(stream);
    const [only] = batch;
    if (batch.length === 1 && only) {
      await this.appendNow(only.command).then(only.resolve, only.reject);
      return;
    }
    try {
      await this.appendBatch(stream, batch);
    } catch (error) {
      for (const append of batch) append.reject(error);
    }
  }

  /** Appends a batch (no expected versions, distinct request ids) in one transaction. */
  private async appendBatch(stream: string, batch: PendingAppend[]): Promise<void> {
    const state = await this.streamState(stream);
    if (!state) {
      for (const append of batch) append.reject(new StreamNotFoundError(stream));
      return;
    }
    let remaining = batch;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && remaining.length > 0; attempt++) {
      remaining = remaining.filter((append) => {
        const earlier = append.command.requestId === undefined ? undefined : state.find(append.command.requestId);
        if (earlier) append.resolve({ ...earlier, deduplicated: true });
        else if (append.command.signal?.aborted) append.reject(new CallAbandonedError());
        else return true;
        return false;
      });
      if (state.head.shredded) {
        for (const append of remaining) append.reject(new StreamShreddedError(stream));
        return;
      }
      const entries = nextEntries(
        stream,
        state.head,
        remaining.map(({ command }) => command),
      );
      const fits = withoutFirstTooLarge(remaining, entries);
      if (fits) {
        remaining = fits;
        attempt--;
        continue;
      }
      if (remaining.length === 0) return;
      // A transaction carries at most 4 MB: what does not fit goes back to the front of the queue.
      let bytes = 0;
      const fitting = entries.findIndex(
        (entry, i) => (bytes += itemSize(entryItem(entry))) > MAX_TRANSACTION_BYTES && i > 0,
      );
      if (fitting > 0) {
        this.requeueAppends(stream, remaining.slice(fitting));
        remaining = remaining.slice(0, fitting);
        entries.length = fitting;
      }
      try {
        await this.transact(
          entries.map((entry) => ({
            Put: {
              TableName: this.tables.events,
              Item: entryItem(entry),
              ConditionExpression: 'attribute_not_exists(#v)',
              ExpressionAttributeNames: { '#v': EntryAttr.version },
            },
          })),
        );
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = cancellationReasons(error);
        if (reasons?.some((r) => r.code === 'validation') || reasons?.every((r) => r.code === 'other')) {
          throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
        }
        // Another replica took some of these versions, or transactions conflicted: learn the
        // entries written meanwhile (their request ids too) and try again.
        await this.catchUp(stream, state);
        if (attempt > 0) await backoff(attempt);
        continue;
      }
      remaining.forEach((append, i) => {
        const entry = entries[i]!;
        state.advance(entry);
        append.resolve({ version: entry.version, recordedAt: entry.recordedAt, deduplicated: false });
      });
      return;
    }
    for (const append of remaining) {
      append.reject(new StoreUnavailableError(`stream ${stream} is too contended right now; retry later`));
    }
  }

  /** One transaction of a group commit. */
  private async transact(items: TransactWriteItem[]): Promise<void> {
    await this.call(() =>
      this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: items,
          // Makes the SDK's own retries of this attempt idempotent (DynamoDB keeps it 10 minutes).
          ClientRequestToken: randomUUID(),
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
  }

  /** Puts appends back at the front of their stream's queue, for its next write. */
  private requeueAppends(stream: string, appends: PendingAppend[]): void {
    const waiting = this.pendingAppends.get(stream) ?? [];
    waiting.unshift(...appends);
    this.pendingAppends.set(stream, waiting);
    void this.writes.run(stream, () => this.appendPending(stream));
  }

  private async appendNow(command: AppendCommand): Promise<AppendResult> {
    const { stream, requestId, expectedVersion } = command;
    const state = await this.streamState(stream);
    if (!state) throw new StreamNotFoundError(stream);

    /** Whether the state was just brought up to DynamoDB's head (no need to ask again). */
    let current = false;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const earlier = requestId === undefined ? undefined : state.find(requestId);
      if (earlier) return { ...earlier, deduplicated: true };
      // The head is the shred fence (learnt from a failed write or a catch-up): nothing follows it.
      if (state.head.shredded) throw new StreamShreddedError(stream);
      // Checked before each write is sent, never during one: the outcome of a write in flight
      // must be learnt, or this replica's view of the stream's head would go stale.
      if (command.signal?.aborted) throw new CallAbandonedError();
      if (expectedVersion !== undefined && expectedVersion !== state.head.version) {
        // The cache may be behind: only DynamoDB can tell a conflict (or a retry of ours) apart.
        if (!current) await this.catchUp(stream, state);
        const committed = requestId === undefined ? undefined : state.find(requestId);
        if (committed) return { ...committed, deduplicated: true };
        if (state.head.shredded) throw new StreamShreddedError(stream);
        if (expectedVersion !== state.head.version) {
          throw new WrongExpectedVersionError(stream, expectedVersion, state.head.version);
        }
      }

      const [entry] = nextEntries(stream, state.head, [command]) as [EntryItem];
      const { version } = entry;
      const item = entryItem(entry);
      checkItemSize(item);
      try {
        await this.call(() =>
          this.client.send(
            new PutItemCommand({
              TableName: this.tables.events,
              Item: item,
              ConditionExpression: 'attribute_not_exists(#v)',
              ExpressionAttributeNames: { '#v': EntryAttr.version },
              // On conflict, DynamoDB shows what is there: no extra read to learn the new head.
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        state.advance(entry);
        return { version, recordedAt: command.recordedAt, deduplicated: false };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const found = error.Item ? readEntryItem(error.Item) : undefined;
        if (found && sameWrite(found, entry)) {
          // Our own write, committed by an SDK retry after a lost response.
          state.advance(found);
          return { version, recordedAt: command.recordedAt, deduplicated: false };
        }
        if (found) state.advance(found);
        await this.catchUp(stream, state);
        current = true;
        // The next attempt has the fresh head; back off only when another replica keeps winning.
        if (attempt > 0) await backoff(attempt);
      }
    }
    throw new StoreUnavailableError(`stream ${stream} is too contended right now; retry later`);
  }

  /**
   * Writes the shred fence: an entry without payload at head + 1. Every append (and every
   * CreateStream's entry in its parent) is a conditional write of head + 1 that fails when an item
   * is there, so a replica whose cached head is older runs into the fence, learns it, and refuses
   * with StreamShreddedError; the fence costs the append path nothing. Entries committed before
   * the fence were written before the shred; none can be committed after it.
   */
  private async fenceShredded(stream: string, shreddedAt: Date): Promise<void> {
    const state = await this.streamState(stream);
    // Keys of a path that holds no stream (keys are written just before a create): nothing to fence.
    if (!state) return;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (state.head.shredded) return;
      const fence: EntryItem = {
        stream,
        version: state.head.version + 1n,
        payload: new Uint8Array(0),
        recordedAt: shreddedAt,
        bytesThrough: state.head.bytesThrough,
        shredded: true,
      };
      try {
        await this.call(() =>
          this.client.send(
            new PutItemCommand({
              TableName: this.tables.events,
              Item: entryItem(fence),
              ConditionExpression: 'attribute_not_exists(#v)',
              ExpressionAttributeNames: { '#v': EntryAttr.version },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        state.advance(fence);
        return;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // Another replica appended (or fenced) first: learn its entries and go after them.
        const found = error.Item ? readEntryItem(error.Item) : undefined;
        if (found && found.version === state.head.version + 1n) state.advance(found);
        await this.catchUp(stream, state);
        if (attempt > 0) await backoff(attempt);
      }
    }
    throw new StoreUnavailableError(`stream ${stream} is too contended right now; retry later`);
  }

  // ---- create -------------------------------------------------------------------------------

  /**
   * Writes the creates waiting under one parent, as many as fit one transaction. Runs in the
   * parent's queue: while one transaction is in flight the next creates gather, so many
   * concurrent creates under one parent cost few round trips (group commit).
   */
  private async createPending(parent: string): Promise<void> {
    const waiting = this.pendingCreates.get(parent);
    if (!waiting || waiting.length === 0) return;
    const batch = takeBatch(waiting);
    if (waiting.length === 0) this.pendingCreates.delete(parent);
    try {
      await this.createBatch(parent, batch);
    } catch (error) {
      for (const create of batch) create.reject(error);
    }
  }

  /** Creates a batch of children of one parent in one transaction, settling each create. */
  private async createBatch(parent: string, batch: PendingCreate[]): Promise<void> {
    const parentState = await this.streamState(parent);
    if (!parentState) {
      for (const create of batch) create.reject(new ParentNotFoundError(create.command.stream, parent));
      return;
    }
    let remaining = batch;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && remaining.length > 0; attempt++) {
      if (parentState.head.shredded) {
        for (const create of remaining) create.reject(new StreamShreddedError(parent));
        return;
      }
      // Each child's `child-created` entry takes the parent's next version, in batch order.
      const parentEntries = nextEntries(
        parent,
        parentState.head,
        remaining.map(({ command }) => ({ payload: command.childCreatedPayload, recordedAt: command.recordedAt })),
      );
      const fits = withoutFirstTooLarge(remaining, parentEntries);
      if (fits) {
        remaining = fits;
        attempt--;
        continue;
      }

      const notThere = {
        ConditionExpression: 'attribute_not_exists(#v)',
        ExpressionAttributeNames: { '#v': EntryAttr.version },
      };
      /** Which create each transaction item belongs to, and whether it is the parent's entry. */
      const owners: Array<{ create: number; part: 'parent' | 'child' | 'link' }> = [];
      const items = remaining.flatMap((create, i) => {
        owners.push({ create: i, part: 'parent' });
        create.childItems.forEach(() => owners.push({ create: i, part: 'child' }));
        owners.push({ create: i, part: 'link' });
        return [
          {
            Put: {
              TableName: this.tables.events,
              Item: entryItem(parentEntries[i]!),
              ...notThere,
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
            },
          },
          ...create.childItems.map((Item) => ({ Put: { TableName: this.tables.events, Item, ...notThere } })),
          {
            Put: {
              TableName: this.tables.children,
              Item: { [ChildAttr.parent]: { S: parent }, [ChildAttr.child]: { S: create.command.stream } },
            },
          },
        ];
      });
      try {
        await this.transact(items);
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        remaining = await this.afterCancelledCreate(error, parent, parentState, remaining, owners);
        if (attempt > 0) await backoff(attempt);
        continue;
      }
      remaining.forEach((create, i) => {
        const parentEntry = parentEntries[i]!;
        parentState.advance(parentEntry);
        const childState = new StreamState(create.started, this.window);
        if (create.initial) childState.advance(create.initial);
        this.cache.set(create.command.stream, childState);
        create.resolve({ headVersion: create.initial ? 1n : 0n, parentVersion: parentEntry.version });
      });
      return;
    }
    for (const create of remaining) {
      create.reject(new StoreUnavailableError(`stream ${parent} is too contended right now; retry later`));
    }
  }

  /**
   * Decides what a cancelled CreateStream transaction means: rejects the creates that cannot
   * succeed (the child exists, the request is invalid), refreshes the parent's head, and returns
   * the creates to try again.
   */
  private async afterCancelledCreate(
    error: TransactionCanceledException,
    parent: string,
    parentState: StreamState,
    creates: PendingCreate[],
    owners: Array<{ create: number; part: 'parent' | 'child' | 'link' }>,
  ): Promise<PendingCreate[]> {
    const reasons = cancellationReasons(error);
    const failed = new Set<number>();
    if (!reasons) {
      // DynamoDB may leave the reasons out: find out by reading.
      const existing = await Promise.all(creates.map((create) => this.exists(create.command.stream)));
      existing.forEach((exists, i) => exists && failed.add(i));
    } else {
      if (reasons.some((r) => r.code === 'validation')) {
        const invalid = new InvalidArgumentError([
          { field: 'stream', description: 'was refused by the storage backend' },
        ]);
        for (const create of creates) create.reject(invalid);
        return [];
      }
      if (reasons.every((r) => r.code === 'other')) {
        const refused = new StoreUnavailableError('the storage backend refused the write; retry later', {
          cause: error,
        });
        for (const create of creates) create.reject(refused);
        return [];
      }
      reasons.forEach((reason, index) => {
        const owner = owners[index];
        if (owner?.part === 'child' && reason.code === 'condition') failed.add(owner.create);
      });
      // The first parent entry tells where the parent's head went, when another writer got there.
      const first = reasons[0];
      if (first?.code === 'condition' && first.item) {
        const found = readEntryItem(first.item);
        if (found.version === parentState.head.version + 1n) parentState.advance(found);
      }
    }
    for (const index of failed) creates[index]?.reject(new StreamAlreadyExistsError(creates[index]!.command.stream));
    // The parent may have moved on (another replica appended or created), or transactions conflicted.
    await this.catchUp(parent, parentState);
    return creates.filter((_, i) => !failed.has(i));
  }

  // ---- heads and the stream cache -----------------------------------------------------------

  /** The cached state of a stream, loading its newest entries when not cached; undefined if missing. */
  private async streamState(stream: string): Promise<StreamState | undefined> {
    const cached = this.cache.get(stream);
    if (cached) return cached;
    const newest = await this.queryAll(
      {
        TableName: this.tables.events,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
        ExpressionAttributeValues: { ':s': { S: stream } },
        ProjectionExpression: ENTRY_META_PROJECTION,
        ScanIndexForward: false,
        ConsistentRead: true,
      },
      this.window,
    );
    const [head, ...older] = newest.map((item) => readEntryMeta(stream, item));
    if (!head) return undefined;
    const state = new StreamState(head, this.window);
    for (const entry of older) state.prependOlder(entry);
    this.cache.set(stream, state);
    return state;
  }

  /**
   * Brings a cached stream state up to DynamoDB's head, learning every entry in between (their
   * request ids keep the idempotency window whole). Too far behind, it reloads the newest.
   */
  private async catchUp(stream: string, state: StreamState): Promise<void> {
    const newer = await this.queryAll(
      {
        TableName: this.tables.events,
        KeyConditionExpression: '#s = :s AND #v > :v',
        ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
        ExpressionAttributeValues: { ':s': { S: stream }, ':v': { N: state.head.version.toString() } },
        ProjectionExpression: ENTRY_META_PROJECTION,
        ConsistentRead: true,
      },
      this.window + 1,
    );
    if (newer.length > this.window) {
      const reloaded = await this.queryAll(
        {
          TableName: this.tables.events,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
          ExpressionAttributeValues: { ':s': { S: stream } },
          ProjectionExpression: ENTRY_META_PROJECTION,
          ScanIndexForward: false,
          ConsistentRead: true,
        },
        this.window,
      );
      const entries = reloaded.map((item) => readEntryMeta(stream, item)).reverse();
      // Rebuild in place: callers hold this state object.
      const fresh = entries[0];
      if (!fresh) return;
      state.resetTo(fresh);
      for (const entry of entries.slice(1)) state.advance(entry);
      return;
    }
    for (const item of newer) state.advance(readEntryMeta(stream, item));
  }

  /** The newest entry of a stream (one consistent Query of one item), or undefined. */
  private async headItem(stream: string): Promise<EntryItem | undefined> {
    const page = await this.call(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.tables.events,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
          ExpressionAttributeValues: { ':s': { S: stream } },
          ProjectionExpression: ENTRY_META_PROJECTION,
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: 1,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
    const item = page.Items?.[0];
    return item && readEntryMeta(stream, item);
  }

  private async headVersion(stream: string): Promise<Version | undefined> {
    const head = await this.headItem(stream);
    return head && entryHead(head);
  }

  /** Whether a stream exists: free when cached (streams are never deleted), else one Query. */
  private async exists(stream: string): Promise<boolean> {
    return this.cache.get(stream) !== undefined || (await this.headItem(stream)) !== undefined;
  }

  private async countChildren(stream: string): Promise<bigint> {
    let count = 0n;
    let startKey: Item | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tables.children,
            KeyConditionExpression: '#s = :s',
            ExpressionAttributeNames: { '#s': ChildAttr.parent },
            ExpressionAttributeValues: { ':s': { S: stream } },
            Select: 'COUNT',
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      count += BigInt(page.Count ?? 0);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return count;
  }

  /** Up to `max` items of a Query, following DynamoDB's 1 MB pages. */
  private async queryAll(input: QueryCommandInput, max: number): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            ...input,
            Limit: Math.min(max - items.length, 1000),
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey && items.length < max);
    return items.slice(0, max);
  }

  /**
   * Runs one SDK call, turning throttling, 5xx and network failures (after the SDK's retries)
   * into StoreUnavailableError and DynamoDB's item-size refusal into LimitExceededError.
   */
  private async call<T>(request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    try {
      return await request();
    } catch (error) {
      if (signal?.aborted) throw new CallAbandonedError();
      if (error instanceof Error && error.name === 'ValidationException' && /item size/i.test(error.message)) {
        // Our estimate said it fits, DynamoDB says not: report the limit all the same.
        throw itemTooLarge(MAX_ITEM_BYTES + 1);
      }
      throw storeFailure(error);
    }
  }
}

/** Builds the SDK client: standard retries with backoff, bounded time per request. */
export function createDynamoDbClient(connection: DynamoDbConnection): DynamoDBClient {
  return new DynamoDBClient({
    ...(connection.endpoint ? { endpoint: connection.endpoint } : {}),
    ...(connection.region ? { region: connection.region } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    maxAttempts: connection.maxAttempts ?? 5,
    requestHandler: {
      connectionTimeout: 3000,
      requestTimeout: connection.requestTimeoutMs ?? 10_000,
      // Without it the SDK only logs a warning when the time is up and keeps waiting: a request
      // that DynamoDB (or the network) never answers would hang its caller forever.
      throwOnRequestTimeout: true,
    },
  });
}

/** What one entry about to be written is made of, before its version is known. */
interface EntryToWrite {
  payload: PayloadAt;
  recordedAt: Date;
  requestId?: string;
}

/** Entries at the versions after `head`, in order, each payload built for its own version. */
function nextEntries(stream: string, head: EntryMeta, writes: EntryToWrite[]): EntryItem[] {
  let previous = head;
  return writes.map((write) => {
    const version = previous.version + 1n;
    const payload = write.payload(version);
    const entry: EntryItem = {
      stream,
      version,
      payload,
      recordedAt: write.recordedAt,
      bytesThrough: previous.bytesThrough + BigInt(payload.byteLength),
      ...(write.requestId !== undefined ? { requestId: write.requestId } : {}),
    };
    previous = entry;
    return entry;
  });
}

/**
 * When one of a batch's entries (entry i belongs to waiting request i) exceeds the item limit:
 * rejects that request and returns the others, whose entries must be numbered again. Undefined
 * when all fit.
 */
function withoutFirstTooLarge<T extends { reject(error: unknown): void }>(waiting: T[], entries: EntryItem[]): T[] | undefined {
  for (const [index, entry] of entries.entries()) {
    const size = itemSize(entryItem(entry));
    if (size > MAX_ITEM_BYTES) {
      waiting[index]?.reject(itemTooLarge(size));
      return waiting.filter((_, i) => i !== index);
    }
  }
  return undefined;
}

/** An Append waiting for its stream's next write. */
interface PendingAppend {
  command: AppendCommand;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/**
 * Takes the appends of the next write off the front of the queue: an append with an expected
 * version goes alone (it is decided against the head before it); others go together, as many as
 * fit one transaction, each request id once (its retry then finds the first committed).
 */
function takeAppendBatch(waiting: PendingAppend[]): PendingAppend[] {
  const first = waiting.shift();
  if (!first) return [];
  const batch = [first];
  if (first.command.expectedVersion !== undefined) return batch;
  const requestIds = new Set(first.command.requestId === undefined ? [] : [first.command.requestId]);
  // Payload sizes are known only once versions are assigned: appendBatch trims to 4 MB then.
  const maxEntries = MAX_APPENDS_PER_TRANSACTION;
  for (let i = 0; i < waiting.length && batch.length < maxEntries;) {
    const next = waiting[i]!;
    if (next.command.expectedVersion !== undefined) break;
    const requestId = next.command.requestId;
    if (requestId !== undefined && requestIds.has(requestId)) {
      i++;
      continue;
    }
    if (requestId !== undefined) requestIds.add(requestId);
    batch.push(next);
    waiting.splice(i, 1);
  }
  return batch;
}

/** A CreateStream waiting for its parent's next transaction. */
interface PendingCreate {
  command: CreateStreamCommand;
  /** The child's entry 0, and entry 1 with initial events. */
  started: EntryItem;
  initial?: EntryItem;
  childItems: Item[];
  resolve(result: CreateStreamResult): void;
  reject(error: unknown): void;
}

/** TransactWriteItems takes at most 100 items and 4 MB; leave room for the parents' entries. */
const MAX_TRANSACTION_ITEMS = 100;
const MAX_TRANSACTION_BYTES = 3 * 1024 * 1024;
/** Appends in one group commit: more waiting ones go in the next. */
const MAX_APPENDS_PER_TRANSACTION = 50;

/**
 * Takes the creates of the next transaction off the front of the queue: as many as fit its item
 * and size limits, each child path once (a transaction cannot write one item twice).
 */
function takeBatch(waiting: PendingCreate[]): PendingCreate[] {
  const batch: PendingCreate[] = [];
  const paths = new Set<string>();
  let items = 0;
  let bytes = 0;
  for (let i = 0; i < waiting.length;) {
    const create = waiting[i]!;
    const size = create.childItems.reduce((sum, item) => sum + itemSize(item), 0) + 2048;
    const count = create.childItems.length + 2;
    const fits =
      batch.length === 0 || (items + count <= MAX_TRANSACTION_ITEMS && bytes + size <= MAX_TRANSACTION_BYTES);
    if (!fits) break;
    if (paths.has(create.command.stream)) {
      i++; // the same path again: the next transaction decides it
      continue;
    }
    paths.add(create.command.stream);
    batch.push(create);
    waiting.splice(i, 1);
    items += count;
    bytes += size;
  }
  return batch;
}

/** Everything of an entry item but its payload: what the stream cache needs. */
const ENTRY_META_NAMES = {
  '#v': EntryAttr.version,
  '#t': EntryAttr.recordedAt,
  '#r': EntryAttr.requestId,
  '#b': EntryAttr.bytesThrough,
  '#x': EntryAttr.shredded,
};
const ENTRY_META_PROJECTION = '#v, #t, #r, #b, #x';

function readEntryMeta(stream: string, item: Item): EntryItem {
  return readEntryItem({ ...item, [EntryAttr.stream]: { S: stream }, [EntryAttr.payload]: { B: new Uint8Array(0) } });
}

/**
 * The version of the stream's newest entry, given its newest item: the shred fence is not an
 * entry (it only stops appends), so a shredded stream keeps the head it had, as on every store.
 */
function entryHead(newest: EntryMeta): Version {
  return newest.shredded ? newest.version - 1n : newest.version;
}

function snapshotKey(stream: string, perspective: string): Item {
  return { [SnapshotAttr.stream]: { S: stream }, [SnapshotAttr.perspective]: { S: perspective } };
}

/** Whether a stored entry is exactly the one this attempt tried to write. */
function sameWrite(found: EntryItem, attempted: EntryItem): boolean {
  return (
    found.requestId === attempted.requestId &&
    found.recordedAt.getTime() === attempted.recordedAt.getTime() &&
    Buffer.from(found.payload).equals(Buffer.from(attempted.payload))
  );
}

/** Full jitter: a random wait up to an exponentially growing cap (10 ms, 20 ms, ... 1 s). */
function backoff(attempt: number): Promise<void> {
  const cap = Math.min(1000, 10 * 2 ** attempt);
  return sleep(Math.random() * cap);
}
