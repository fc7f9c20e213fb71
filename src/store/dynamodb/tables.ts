import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTableCommand,
  waitUntilTableExists,
  type AttributeDefinition,
  type DynamoDBClient,
  type KeySchemaElement,
  type ScalarAttributeType,
  UpdateItemCommand,
  ConditionalCheckFailedException,
} from '@aws-sdk/client-dynamodb';
import type { Item } from './items';

/**
 * The DynamoDB tables and their attribute names. Names are one or two letters because DynamoDB
 * bills attribute names as part of every item's size.
 */

/** Attributes of an events item: one entry of one stream. */
export const EntryAttr = {
  /** Stream path (partition key, string). */
  stream: 's',
  /** Entry version (sort key, number). */
  version: 'v',
  /** The codec's output: header + maybe-compressed bytes (binary). */
  payload: 'p',
  /** Recorded time, epoch milliseconds (number). */
  recordedAt: 't',
  /** Request id of the append, when the client gave one (string). */
  requestId: 'r',
  /** Payload bytes of the stream's entries 0..v, so Describe reads bytes stored from the head item. */
  bytesThrough: 'b',
  /**
   * Set (true) on the shred fence: the entry ShredStream writes past the head, without payload.
   * No append can follow it, because every append's PutItem targets head + 1 on condition that
   * no item is there (see DynamoDbStore.fenceShredded).
   */
  shredded: 'x',
  /**
   * Set only on an entry whose payload did not fit its item (no `p` then): how many chunk items
   * hold it, in the chunks table, written in the same transaction (number).
   */
  chunks: 'n',
  /** With `n`: the payload's size in bytes, so that reads bound pages without fetching it (number). */
  size: 'z',
} as const;

/** Attributes of a snapshots item: one perspective of one stream. */
export const SnapshotAttr = {
  stream: 's',
  /** Perspective (sort key, string). */
  perspective: 'c',
  version: 'v',
  payload: 'p',
  contentType: 'm',
  storedAt: 't',
  /** As on entries: set when the payload is in chunk items instead of `p` (number). */
  chunks: 'n',
  /** With `n`: the payload's size in bytes (number). */
  size: 'z',
  /**
   * With `n`: a random id of this write, part of its chunks' key, so that a snapshot replacing
   * another never writes over chunks a reader of the older one may still be fetching (string).
   */
  writeId: 'w',
} as const;

/**
 * Attributes of the consumer-group items, kept in the snapshots table under partition keys that
 * no stream path can take (see consumer-groups.ts); the key attributes are the snapshots' `s`
 * and `c`.
 */
export const GroupAttr = {
  /** Definition: subtree, event types, settings, start position (JSON string). */
  definition: 'd',
  /** Definition and partition: revision, compared by every update (number). */
  revision: 'r',
  /** Definition: creation time; parked entry: when it was parked (epoch ms, number). */
  createdAt: 't',
  /** Definition: the incarnation, a random id whose keys hold the group's state (string). */
  incarnation: 'i',
  /** Definition: set (true) while a group of more than 99 partitions is being created. */
  creating: 'w',
  /** Partition: its position; parked entry: the entry's position (number). */
  position: 'q',
  /** Partition: the id of the server holding its lease (string; absent when free). */
  owner: 'o',
  /** Partition: lease expiry; server record: record expiry (epoch ms of the writer's clock, number). */
  expiresAt: 'x',
  /** Partition: what is done past its position (binary, partition-progress.ts; absent: nothing known). */
  progress: 'g',
  /** Server record: its live members of the group (number). */
  members: 'n',
  /** Server record: its members and held partitions, for Describe on other servers (JSON string). */
  view: 'j',
  /** Parked entry: stream path (string). */
  stream: 'a',
  /** Parked entry: version (number). */
  version: 'v',
  /** Parked entry: deliveries (number). */
  deliveries: 'k',
  /** Parked entry: "max-deliveries" or "denied" (string). */
  reason: 'y',
} as const;

/**
 * Attributes of a chunks item: one slice of a payload too large for its own item (an entry's or a
 * snapshot's), written in the same transaction as the item that names it. Kept out of the events
 * and snapshots tables so that their queries (and a DynamoDB Streams consumer of the events table)
 * only ever see entries and snapshots.
 */
export const ChunkAttr = {
  /** What the chunk belongs to (partition key, string): see chunks.ts, entryChunkOwner. */
  owner: 'k',
  /** The chunk's index, 0, 1, ... (sort key, number). */
  index: 'i',
  /** The chunk's bytes (binary). */
  bytes: 'p',
} as const;

/** Attributes of a children item: one child of one stream, written with the child's entry 0. */
export const ChildAttr = {
  /** The parent's path (partition key). */
  parent: 's',
  /** The child's path (sort key): a Query lists children in byte order. */
  child: 'c',
} as const;

/** Attributes of a keys item: one wrapped data key of a stream, or its shredded marker. */
export const KeyAttr = {
  /** Partition key: one fixed bucket, so streams list in path order (string). */
  bucket: 'b',
  /** Sort key: path + NUL + "#" (marker) or "k" + zero-padded DEK version (string). */
  sortKey: 'c',
  stream: 's',
  dekVersion: 'v',
  kekId: 'i',
  wrapped: 'w',
  createdAt: 't',
  shreddedAt: 'x',
} as const;

/**
 * Attributes of a feed item: a page of the feed (partition `k` = "p"), or the indexer's state
 * (partition `k` = "i"). See feed-pages.ts and feed-indexer.ts.
 */
export const FeedAttr = {
  /** Partition key: "p" for pages, "i" for the indexer's state (string). */
  kind: 'k',
  /** Sort key: a page's last position; 0 for the state item (number). */
  position: 'n',
  /** A page's first position (number): its records hold positions first..last, one each. */
  first: 'f',
  /** A page's index records, encoded (binary, see feed-pages.ts). */
  records: 'r',
  /** State: the lease holder's id, "" when released (string). */
  holder: 'h',
  /** State: the lease's epoch, bumped by every takeover (number): the fence of page writes. */
  epoch: 'e',
  /** State: the lease's expiry, epoch milliseconds of the holder's clock (number). */
  expiresAt: 'x',
  /** State: the next position to assign (number). */
  next: 'q',
  /** State: per shard of the events table's stream, the last sequence number indexed (JSON string). */
  shards: 'c',
  /** State: entries read but held back until their stream's earlier versions are indexed (JSON string). */
  pending: 'w',
  /**
   * State: the backfill of entries written before the feed existed, while one is pending or
   * running (JSON string, BackfillMark); absent otherwise. Only a backfill contender holds the
   * lease while it is there.
   */
  backfill: 'b',
} as const;

/** Partition of the feed's pages. */
export const PAGES = 'p';
/** Partition of the indexer's state item. */
export const STATE = 'i';

/** The key of the indexer's state item. */
export function stateKey(): Item {
  return { [FeedAttr.kind]: { S: STATE }, [FeedAttr.position]: { N: '0' } };
}

/**
 * A backfill of the feed (docs/dynamodb.md, "Tables written before the feed existed"), as the
 * state item records it.
 *
 * - `scan`: the events table is scanned in key order, each Scan page indexed in one write with
 *   the page's last key (`after`), so a re-run resumes after it; no `after`: not started yet.
 * - `stream`: the scan is done (at `scanEndedAt`); the table's DynamoDB stream is read from its
 *   oldest record, dropping every version at or below the newest one indexed of its stream.
 */
export interface BackfillMark {
  phase: 'scan' | 'stream';
  /** The key of the last events item scanned. */
  after?: { stream: string; version: bigint };
  /** Streams scanned so far (entries of version 0 indexed). */
  streams: number;
  /** Entries indexed by the scan so far. */
  entries: number;
  /** When the scan ended (epoch ms of the backfill's clock). */
  scanEndedAt?: number;
}

/** The mark of a backfill not started yet. */
export const BACKFILL_PENDING: BackfillMark = { phase: 'scan', streams: 0, entries: 0 };

export function backfillJson(mark: BackfillMark): string {
  const { after, ...rest } = mark;
  return JSON.stringify({ ...rest, ...(after ? { after: [after.stream, after.version.toString()] } : {}) });
}

export function readBackfillJson(json: string): BackfillMark {
  const raw = JSON.parse(json) as Omit<BackfillMark, 'after'> & { after?: [string, string] };
  const { after, ...rest } = raw;
  return { ...rest, ...(after ? { after: { stream: after[0], version: BigInt(after[1]) } } : {}) };
}

/** The six table names under a prefix. */
// A type rather than an interface so that Object.values() of it is string[], not any[].
export type TableNames = {
  events: string;
  snapshots: string;
  children: string;
  keys: string;
  feed: string;
  chunks: string;
}

/** Table names for a prefix such as "eventhorizon-" (the default). */
export function tableNames(prefix: string): TableNames {
  return {
    events: `${prefix}events`,
    snapshots: `${prefix}snapshots`,
    children: `${prefix}children`,
    keys: `${prefix}keys`,
    feed: `${prefix}feed`,
    chunks: `${prefix}chunks`,
  };
}

interface TableShape {
  hash: { name: string; type: ScalarAttributeType };
  range: { name: string; type: ScalarAttributeType };
}

const SHAPES: Record<keyof TableNames, TableShape> = {
  events: { hash: { name: EntryAttr.stream, type: 'S' }, range: { name: EntryAttr.version, type: 'N' } },
  snapshots: { hash: { name: SnapshotAttr.stream, type: 'S' }, range: { name: SnapshotAttr.perspective, type: 'S' } },
  children: { hash: { name: ChildAttr.parent, type: 'S' }, range: { name: ChildAttr.child, type: 'S' } },
  keys: { hash: { name: KeyAttr.bucket, type: 'S' }, range: { name: KeyAttr.sortKey, type: 'S' } },
  feed: { hash: { name: FeedAttr.kind, type: 'S' }, range: { name: FeedAttr.position, type: 'N' } },
  chunks: { hash: { name: ChunkAttr.owner, type: 'S' }, range: { name: ChunkAttr.index, type: 'N' } },
};

/**
 * The events table's DynamoDB stream, which the feed indexer reads: new images, because the
 * indexer tells entries from other items (the shred fence) by their attributes.
 */
const EVENTS_STREAM = { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' } as const;
const STREAM_VIEWS = new Set(['NEW_IMAGE', 'NEW_AND_OLD_IMAGES']);

/** The tables are missing or have other keys than this version of Event Horizon needs. */
export class TableSetupError extends Error {}

/** What createTables did. */
export interface TablesCreated {
  /** Tables it created. */
  created: string[];
  /** The events table, when it had no stream (written before the feed existed) and got it. */
  streamEnabled: string[];
  /**
   * Whether the feed now waits for `eventhorizon dynamodb backfill-feed`: set when the stream was
   * enabled and the feed held no position yet (see markBackfillPending).
   */
  backfillPending: boolean;
}

/**
 * Creates the missing tables, billed on demand, and waits until they are active. Tables that
 * already exist are checked, not changed, except one: an events table without its DynamoDB
 * stream (written before the feed existed) gets it, after the feed's state is marked "backfill
 * pending" (markBackfillPending), so that no indexer indexes the stream before the older entries
 * have their positions.
 */
export async function createTables(client: DynamoDBClient, names: TableNames): Promise<TablesCreated> {
  const created: string[] = [];
  const streamEnabled: string[] = [];
  let backfillPending = false;
  for (const kind of Object.keys(SHAPES) as Array<keyof TableNames>) {
    const name = names[kind];
    const shape = SHAPES[kind];
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: attributeDefinitions(shape),
          KeySchema: keySchema(shape),
          ...(kind === 'events' ? { StreamSpecification: EVENTS_STREAM } : {}),
        }),
      );
      created.push(name);
    } catch (error) {
      // Created meanwhile by another replica or an earlier run: the check below judges it.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1, maxDelay: 5 }, { TableName: name });
  }
  // The feed table exists now: mark it before the stream has a record in it.
  if (!created.includes(names.events) && !(await eventsStreamOf(client, names.events))) {
    backfillPending = await markBackfillPending(client, names.feed);
    await client.send(new UpdateTableCommand({ TableName: names.events, StreamSpecification: EVENTS_STREAM }));
    await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1, maxDelay: 5 }, { TableName: names.events });
    streamEnabled.push(names.events);
  }
  await checkTables(client, names);
  return { created, streamEnabled, backfillPending };
}

/**
 * Marks the feed's state "backfill pending" (creating the state item, unleased, when there is
 * none), on condition that the feed holds no position yet: a backfill gives the table's entries
 * the first positions, so it can only start from an empty feed. Returns whether the mark is
 * there (false: the feed held positions, so older entries cannot be put before them).
 */
export async function markBackfillPending(client: DynamoDBClient, feedTable: string): Promise<boolean> {
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: feedTable,
        Key: stateKey(),
        UpdateExpression:
          'SET #b = if_not_exists(#b, :b), #h = if_not_exists(#h, :none), #e = if_not_exists(#e, :zero), ' +
          '#x = if_not_exists(#x, :zero), #q = if_not_exists(#q, :one), #c = if_not_exists(#c, :marks), #w = if_not_exists(#w, :pending)',
        ConditionExpression: 'attribute_not_exists(#q) OR #q = :one',
        ExpressionAttributeNames: {
          '#b': FeedAttr.backfill,
          '#h': FeedAttr.holder,
          '#e': FeedAttr.epoch,
          '#x': FeedAttr.expiresAt,
          '#q': FeedAttr.next,
          '#c': FeedAttr.shards,
          '#w': FeedAttr.pending,
        },
        ExpressionAttributeValues: {
          ':b': { S: backfillJson(BACKFILL_PENDING) },
          ':none': { S: '' },
          ':zero': { N: '0' },
          ':one': { N: '1' },
          ':marks': { S: '{}' },
          ':pending': { S: '[]' },
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Checks that every table exists and has the keys this store writes, and says exactly what is
 * wrong otherwise (start-up fails with that message rather than on the first request).
 */
export async function checkTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  const problems: string[] = [];
  for (const kind of Object.keys(SHAPES) as Array<keyof TableNames>) {
    const name = names[kind];
    const expected = SHAPES[kind];
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
      const keys = Table?.KeySchema ?? [];
      const types = new Map((Table?.AttributeDefinitions ?? []).map((d) => [d.AttributeName, d.AttributeType]));
      const hash = keys.find((k) => k.KeyType === 'HASH')?.AttributeName;
      const range = keys.find((k) => k.KeyType === 'RANGE')?.AttributeName;
      const want = `partition key ${expected.hash.name} (${expected.hash.type}), sort key ${expected.range.name} (${expected.range.type})`;
      if (
        hash !== expected.hash.name ||
        range !== expected.range.name ||
        types.get(hash) !== expected.hash.type ||
        types.get(range) !== expected.range.type
      ) {
        problems.push(`table ${name} has other keys than the ${kind} table needs: ${want}`);
      }
      const stream = Table?.StreamSpecification;
      if (kind === 'events' && !(stream?.StreamEnabled && STREAM_VIEWS.has(stream.StreamViewType ?? ''))) {
        problems.push(`table ${name} has no DynamoDB stream of new images, which the feed is indexed from`);
      }
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
      problems.push(`table ${name} does not exist`);
    }
  }
  if (problems.length > 0) {
    throw new TableSetupError(
      `DynamoDB tables are not ready: ${problems.join('; ')}. Create them with ` +
        '"eventhorizon dynamodb create-tables" (same EH_DYNAMODB_* settings; it also enables the events table\'s ' +
        'stream on a table created before the feed existed), or set EH_DYNAMODB_CREATE_TABLES=true ' +
        'for development.',
    );
  }
}

function attributeDefinitions(shape: TableShape): AttributeDefinition[] {
  return [
    { AttributeName: shape.hash.name, AttributeType: shape.hash.type },
    { AttributeName: shape.range.name, AttributeType: shape.range.type },
  ];
}

function keySchema(shape: TableShape): KeySchemaElement[] {
  return [
    { AttributeName: shape.hash.name, KeyType: 'HASH' },
    { AttributeName: shape.range.name, KeyType: 'RANGE' },
  ];
}

/**
 * The ARN of the events table's stream when it is enabled with new images, else undefined.
 * The feed indexer reads the stream it names.
 */
export async function eventsStreamOf(client: DynamoDBClient, eventsTable: string): Promise<string | undefined> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: eventsTable }));
  const stream = Table?.StreamSpecification;
  if (!stream?.StreamEnabled || !STREAM_VIEWS.has(stream.StreamViewType ?? '')) return undefined;
  return Table?.LatestStreamArn;
}
