import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CallAbandonedError, StoreUnavailableError } from '../../core/errors';
import type { CallSignal } from '../../core/call-signal';
import type {
  AppendCommand,
  BackgroundLog,
  AppendResult,
  CreateStreamCommand,
  CreateStreamResult,
  EventStore,
  FeedPage,
  FeedQuery,
  Position,
  PutSnapshotOptions,
  PutSnapshotResult,
  ReadPage,
  ReadQuery,
  SnapshotRecord,
  StoreBackground,
  StoreFeatures,
  StreamInfo,
  StreamKeys,
  WrappedKey,
} from '../port';
import { Appends } from './appends';
import { storeFailure } from './aws-errors';
import type { DynamoDbContext } from './context';
import { DynamoDbConsumerGroups } from './consumer-groups';
import { Creates } from './creates';
import { FeedIndexer } from './feed-indexer';
import { FeedReads } from './feed-reads';
import { backendRefusedSize, entryItem, MAX_PAYLOAD_BYTES, type EntryItem } from './items';
import { KeyTable } from './key-table';
import { KeyedQueue } from './keyed-queue';
import { Reads } from './reads';
import { RequestMeter } from './request-meter';
import { fenceShredded } from './shred-fence';
import { Snapshots } from './snapshots';
import { StreamHeads } from './stream-heads';
import { checkTables, createTables, EntryAttr, tableNames, type TableNames } from './tables';

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
  /** Prefix of the six table names (default "eventhorizon-"). */
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
  /** A serving replica contends for the feed indexer's lease (default true; see background()). */
  feedIndexer?: boolean;
  /** The indexer's settings (FeedIndexerSettings; defaults DEFAULT_INDEXER_SETTINGS). */
  feedLeaseMs?: number;
  feedPollIntervalMs?: number;
  feedBatchSize?: number;
}

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
 * - snapshots: one item per perspective (partition `s`, sort `c`), replaced only by newer ones;
 *   also the consumer groups' state, under partition keys starting with "$" (consumer-groups.ts).
 * - keys: streams' wrapped data keys (see KeyTable).
 * - feed: the feed's pages and its indexer's state, written by the indexer (feed-indexer.ts),
 *   which reads the events table's DynamoDB stream.
 * - chunks: the payloads of entries and snapshots too large for their own item, in slices
 *   written in one transaction with that item (see chunks.ts).
 *
 * Each replica writes a stream's entries one write at a time (KeyedQueue); appends and creates
 * that gather meanwhile share the next write, a transaction (group commit).
 *
 * This class is the entry point; each concern has its module: appends.ts and creates.ts (both
 * written by the one loop of group-commit.ts), reads.ts (pages through query-pages.ts),
 * snapshots.ts, chunks.ts (payloads larger than one item), shred-fence.ts, key-table.ts, and
 * stream-heads.ts (the stream cache).
 */
export class DynamoDbStore implements EventStore {
  readonly features: StoreFeatures;
  /** Consumer groups' state, in the snapshots table (consumer-groups.ts). */
  readonly groups: DynamoDbConsumerGroups;
  /** Requests and capacity units used so far (tests and benchmarks read it). */
  readonly meter = new RequestMeter();
  private readonly client: DynamoDBClient;
  private readonly tables: TableNames;
  private readonly context: DynamoDbContext;
  /** What this replica knows of the streams it used most recently. */
  private readonly heads: StreamHeads;
  /** Each stream's writes, one at a time: appends, creates of its children, its shred fence. */
  private readonly writes = new KeyedQueue();
  private readonly appends: Appends;
  private readonly creates: Creates;
  private readonly reads: Reads;
  private readonly feed: FeedReads;
  private readonly snapshots: Snapshots;
  private readonly keys: KeyTable;
  /** The tables' creation or check, once. */
  private opened: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: DynamoDbStoreOptions) {
    this.client = createDynamoDbClient(options);
    this.meter.attach(this.client);
    this.tables = tableNames(options.tablePrefix);
    this.context = { client: this.client, tables: this.tables, call: (request, signal) => this.call(request, signal) };
    const window = options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW;
    this.features = {
      sharedWithOtherProcesses: true,
      idempotencyWindow: { kind: 'entries', count: window },
      // Larger payloads are split over several items, written in one transaction (chunks.ts).
      maxPayloadBytes: MAX_PAYLOAD_BYTES,
      // The shred fence: a page that reaches it is refused on every replica (see Reads).
      readsRefusedAfterShred: true,
      // A read's signal aborts the SDK's request and its retries.
      abandonedReadsStop: true,
    };
    this.heads = new StreamHeads(this.context, window, options.maxCachedStreams ?? DEFAULT_MAX_CACHED_STREAMS);
    this.appends = new Appends(this.context, this.heads, this.writes);
    this.creates = new Creates(this.context, this.heads, this.writes);
    this.reads = new Reads(this.context, this.heads);
    this.feed = new FeedReads(this.context);
    this.keys = new KeyTable(this.client, this.tables.keys, (request) => this.call(request));
    this.snapshots = new Snapshots(this.context, this.heads, this.keys);
    this.groups = new DynamoDbConsumerGroups(this.context, () => this.open());
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
    return this.creates.createStream(command);
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return this.appends.append(command);
  }

  read(stream: string, query: ReadQuery): Promise<ReadPage> {
    return this.reads.read(stream, query);
  }

  /**
   * The feed indexer's contender, for a serving replica: one replica of the deployment holds the
   * lease and indexes the events table's stream into the feed table (feed-indexer.ts).
   */
  background(log: BackgroundLog): StoreBackground | undefined {
    const { options } = this;
    if (options.feedIndexer === false) return undefined;
    return new FeedIndexer({
      ...options,
      ...(options.feedLeaseMs !== undefined ? { leaseMs: options.feedLeaseMs } : {}),
      ...(options.feedPollIntervalMs !== undefined ? { pollIntervalMs: options.feedPollIntervalMs } : {}),
      ...(options.feedBatchSize !== undefined ? { batchSize: options.feedBatchSize } : {}),
      log,
    });
  }

  /**
   * The feed as indexed from the events table's DynamoDB stream by the deployment's one indexer
   * (feed-indexer.ts): an entry is in it once indexed, usually well under a second after its
   * commit, and forever (see feed-reads.ts).
   */
  readFeed(query: FeedQuery): Promise<FeedPage> {
    return this.feed.readFeed(query);
  }

  feedHead(): Promise<Position> {
    return this.feed.feedHead();
  }

  describe(stream: string): Promise<StreamInfo | undefined> {
    return this.reads.describe(stream);
  }

  listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]> {
    return this.reads.listChildren(stream, after, limit);
  }

  putSnapshot(stream: string, snapshot: SnapshotRecord, options?: PutSnapshotOptions): Promise<PutSnapshotResult> {
    return this.snapshots.putSnapshot(stream, snapshot, options);
  }

  getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined> {
    return this.snapshots.getSnapshot(stream, perspective);
  }

  deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    return this.snapshots.deleteSnapshot(stream, perspective);
  }

  listPerspectives(stream: string): Promise<string[]> {
    return this.snapshots.listPerspectives(stream);
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
    await this.writes.run(stream, () => fenceShredded(this.context, this.heads, stream, shreddedAt));
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

  /**
   * Runs one SDK call, turning throttling, 5xx and network failures (after the SDK's retries)
   * into StoreUnavailableError and DynamoDB's item-size refusal into LimitExceededError.
   */
  private async call<T>(request: () => Promise<T>, signal?: CallSignal): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    try {
      return await request();
    } catch (error) {
      if (signal?.aborted) throw new CallAbandonedError();
      if (error instanceof Error && error.name === 'ValidationException' && /item size|payload size/i.test(error.message)) {
        // Our estimate said it fits (an item, a transaction), DynamoDB says not: report the limit all the same.
        throw backendRefusedSize();
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
