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
  TransactionCanceledException,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  InvalidArgumentError,
  ParentNotFoundError,
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '../errors';
import type {
  AppendCommand,
  AppendResult,
  CreateStreamCommand,
  CreateStreamResult,
  EventStore,
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
  itemTooLarge,
  MAX_ITEM_BYTES,
  readEntryItem,
  type EntryItem,
  type Item,
} from './items';
import { KeyTable } from './key-table';
import { KeyedQueue } from './keyed-queue';
import { RequestMeter } from './request-meter';
import { StreamCache, StreamState } from './stream-cache';
import { ChildAttr, EntryAttr, SnapshotAttr, checkTables, createTables, tableNames, type TableNames } from './tables';

/** How to reach DynamoDB. Credentials come from the standard AWS chain unless given. */
export interface DynamoDbConnection {
  /** Endpoint URL, e.g. http://127.0.0.1:8000 for DynamoDB Local; the region's endpoint when unset. */
  endpoint?: string;
  /** AWS region; the standard chain (AWS_REGION, profile) when unset. */
  region?: string;
  /** Explicit credentials (tests against DynamoDB Local); the standard chain when unset. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

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

/**
 * The DynamoDB store, for several replicas sharing the same tables.
 *
 * - events: one item per entry (partition `s` = stream, sort `v` = version). An append is one
 *   conditional PutItem at the cached head + 1; the head and the request ids of the newest
 *   entries are cached per stream (see StreamState), so the steady state costs one write request.
 * - children: one item per child (partition `s` = parent, sort `c` = child path), written in the
 *   CreateStream transaction, for ListChildren and child counts.
 * - snapshots: one item per perspective (partition `s`, sort `c`), replaced only by newer ones.
 */
export class DynamoDbStore implements EventStore {
  readonly features = { sharedWithOtherProcesses: true };
  /** Requests and capacity units used so far (tests and benchmarks read it). */
  readonly meter = new RequestMeter();
  private readonly client: DynamoDBClient;
  private readonly tables: TableNames;
  private readonly cache: StreamCache;
  private readonly writes = new KeyedQueue();
  private readonly window: number;
  private readonly keys: KeyTable;
  private closed = false;

  constructor(private readonly options: DynamoDbStoreOptions) {
    this.client = createDynamoDbClient(options);
    this.meter.attach(this.client);
    this.tables = tableNames(options.tablePrefix);
    this.window = options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW;
    this.cache = new StreamCache(options.maxCachedStreams ?? DEFAULT_MAX_CACHED_STREAMS);
    this.keys = new KeyTable(this.client, this.tables.keys, (request) => this.call(request));
  }

  async init(rootPayload: Uint8Array, recordedAt: Date): Promise<void> {
    if (this.options.createTables) await createTables(this.client, this.tables);
    else await checkTables(this.client, this.tables);
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
    // Through the parent's queue: its `child-created` entry takes the parent's next version.
    return this.writes.run(command.parent, () => this.createNow(command));
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return this.writes.run(command.stream, () => this.appendNow(command));
  }

  async read(stream: string, query: ReadQuery): Promise<ReadPage> {
    const forward = query.direction === 'forward';
    const entries: StoredEntry[] = [];
    let bytes = 0;
    let more = false;
    let startKey: Item | undefined;
    collect: do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.tables.events,
            KeyConditionExpression: `#s = :s AND #v ${forward ? '>=' : '<='} :v`,
            ExpressionAttributeNames: { '#s': EntryAttr.stream, '#v': EntryAttr.version },
            ExpressionAttributeValues: { ':s': { S: stream }, ':v': { N: query.fromVersion.toString() } },
            ScanIndexForward: forward,
            // A just-acknowledged append must be visible to the next read, on any replica.
            ConsistentRead: true,
            // One more than asked tells whether more exist; DynamoDB may stop earlier at 1 MB.
            Limit: query.limit + 1 - entries.length,
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      for (const raw of page.Items ?? []) {
        const entry = readEntryItem(raw);
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

    const last = entries[entries.length - 1];
    // Forwards to the end, the last entry read is the head: no second request needed.
    const headVersion = forward && !more && last ? last.version : await this.headVersion(stream);
    if (headVersion === undefined) throw new StreamNotFoundError(stream);
    return { entries, more, headVersion };
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
    return { path: stream, headVersion: head.version, createdAt, childCount, bytesStored: head.bytesThrough };
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

  async putSnapshot(stream: string, snapshot: SnapshotRecord): Promise<PutSnapshotResult> {
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
    try {
      await this.call(() =>
        this.client.send(
          new PutItemCommand({
            TableName: this.tables.snapshots,
            Item: item,
            // Newer-only, decided by DynamoDB: two replicas storing at once cannot go backwards.
            ConditionExpression: 'attribute_not_exists(#v) OR #v < :v',
            ExpressionAttributeNames: { '#v': SnapshotAttr.version },
            ExpressionAttributeValues: { ':v': { N: snapshot.version.toString() } },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      return { stored: true, storedVersion: snapshot.version };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const storedVersion = error.Item ? bigintOf(error.Item, SnapshotAttr.version) : snapshot.version;
      return { stored: false, storedVersion };
    }
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

  shredStreamKeys(stream: string, shreddedAt: Date): Promise<void> {
    return this.keys.shred(stream, shreddedAt);
  }

  listStreamKeys(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>> {
    return this.keys.list(after, limit);
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.client.send(new DescribeTableCommand({ TableName: this.tables.events }));
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

  private async appendNow(command: AppendCommand): Promise<AppendResult> {
    const { stream, requestId, expectedVersion } = command;
    const state = await this.streamState(stream);
    if (!state) throw new StreamNotFoundError(stream);

    /** Whether the state was just brought up to DynamoDB's head (no need to ask again). */
    let current = false;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const earlier = requestId === undefined ? undefined : state.find(requestId);
      if (earlier) return { ...earlier, deduplicated: true };
      if (expectedVersion !== undefined && expectedVersion !== state.head.version) {
        // The cache may be behind: only DynamoDB can tell a conflict (or a retry of ours) apart.
        if (!current) await this.catchUp(stream, state);
        const committed = requestId === undefined ? undefined : state.find(requestId);
        if (committed) return { ...committed, deduplicated: true };
        if (expectedVersion !== state.head.version) {
          throw new WrongExpectedVersionError(stream, expectedVersion, state.head.version);
        }
      }

      const version = state.head.version + 1n;
      const payload = command.payload(version);
      const entry: EntryItem = {
        stream,
        version,
        payload,
        recordedAt: command.recordedAt,
        bytesThrough: state.head.bytesThrough + BigInt(payload.byteLength),
        ...(requestId !== undefined ? { requestId } : {}),
      };
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

  // ---- create -------------------------------------------------------------------------------

  private async createNow(command: CreateStreamCommand): Promise<CreateStreamResult> {
    const { stream, parent, recordedAt } = command;
    const parentState = await this.streamState(parent);
    if (!parentState) throw new ParentNotFoundError(stream, parent);

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
    for (const item of childItems) checkItemSize(item);
    const childLink: Item = { [ChildAttr.parent]: { S: parent }, [ChildAttr.child]: { S: stream } };

    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const parentVersion = parentState.head.version + 1n;
      const payload = command.childCreatedPayload(parentVersion);
      const childCreated: EntryItem = {
        stream: parent,
        version: parentVersion,
        payload,
        recordedAt,
        bytesThrough: parentState.head.bytesThrough + BigInt(payload.byteLength),
      };
      const parentItem = entryItem(childCreated);
      checkItemSize(parentItem);
      const notThere = {
        ConditionExpression: 'attribute_not_exists(#v)',
        ExpressionAttributeNames: { '#v': EntryAttr.version },
      };
      try {
        await this.call(() =>
          this.client.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                {
                  Put: {
                    TableName: this.tables.events,
                    Item: parentItem,
                    ...notThere,
                    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                  },
                },
                ...childItems.map((Item) => ({ Put: { TableName: this.tables.events, Item, ...notThere } })),
                { Put: { TableName: this.tables.children, Item: childLink } },
              ],
              // Makes the SDK's own retries of this attempt idempotent (DynamoDB keeps it 10 minutes).
              ClientRequestToken: randomUUID(),
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        await this.afterCancelledCreate(error, command, parentState, childItems.length);
        if (attempt > 0) await backoff(attempt);
        continue;
      }
      parentState.advance(childCreated);
      const childState = new StreamState(started, this.window);
      if (initial) childState.advance(initial);
      this.cache.set(stream, childState);
      return { headVersion: initial ? 1n : 0n, parentVersion };
    }
    throw new StoreUnavailableError(`stream ${parent} is too contended right now; retry later`);
  }

  /**
   * Decides what a cancelled CreateStream transaction means: throws when it cannot succeed, and
   * returns (after refreshing the parent's head) when it should be tried again.
   */
  private async afterCancelledCreate(
    error: TransactionCanceledException,
    command: CreateStreamCommand,
    parentState: StreamState,
    childItemCount: number,
  ): Promise<void> {
    const reasons = cancellationReasons(error);
    if (!reasons) {
      // DynamoDB may leave the reasons out: find out by reading.
      if (await this.exists(command.stream)) throw new StreamAlreadyExistsError(command.stream);
      await this.catchUp(command.parent, parentState);
      return;
    }
    const childReasons = reasons.slice(1, 1 + childItemCount);
    if (childReasons.some((r) => r.code === 'condition')) throw new StreamAlreadyExistsError(command.stream);
    if (reasons.some((r) => r.code === 'validation')) {
      throw new InvalidArgumentError([{ field: 'stream', description: 'was refused by the storage backend' }]);
    }
    if (
      reasons.every(
        (r) => r.code !== 'condition' && r.code !== 'conflict' && r.code !== 'throttled' && r.code !== 'none',
      )
    ) {
      throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
    }
    const parentReason = reasons[0];
    if (parentReason?.code === 'condition' && parentReason.item) {
      const found = readEntryItem(parentReason.item);
      if (found.version === parentState.head.version + 1n) parentState.advance(found);
    }
    // The parent moved on (another replica appended or created), or a transaction conflicted.
    await this.catchUp(command.parent, parentState);
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
    return (await this.headItem(stream))?.version;
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
  private async call<T>(request: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    try {
      return await request();
    } catch (error) {
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
    maxAttempts: 5,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 },
  });
}

/** Everything of an entry item but its payload: what the stream cache needs. */
const ENTRY_META_NAMES = {
  '#v': EntryAttr.version,
  '#t': EntryAttr.recordedAt,
  '#r': EntryAttr.requestId,
  '#b': EntryAttr.bytesThrough,
};
const ENTRY_META_PROJECTION = '#v, #t, #r, #b';

function readEntryMeta(stream: string, item: Item): EntryItem {
  return readEntryItem({ ...item, [EntryAttr.stream]: { S: stream }, [EntryAttr.payload]: { B: new Uint8Array(0) } });
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
