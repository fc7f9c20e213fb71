import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  type Put,
} from '@aws-sdk/client-dynamodb';
import {
  CorruptDataError,
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamNotFoundError,
  StreamShreddedError,
} from '../../core/errors';
import type { PutSnapshotOptions, PutSnapshotResult, SnapshotRecord } from '../port';
import { cancellationReasons } from './aws-errors';
import { chunkItems, chunkPuts, deleteChunks, readChunks, snapshotChunkOwner } from './chunks';
import type { DynamoDbContext } from './context';
import { transact } from './group-commit';
import type { KeyTable } from './key-table';
import { bigintOf, checkPayloadSize, itemSize, MAX_ITEM_BYTES, splitOf, type Item, type Split } from './items';
import { queryAll } from './query-pages';
import { backoff } from './write-attempts';
import type { StreamHeads } from './stream-heads';
import { SnapshotAttr } from './tables';

/** Attempts of one PutSnapshot against rival writes of the same perspective. */
const MAX_SNAPSHOT_ATTEMPTS = 5;

/** Where a split snapshot's chunks are: the id of the write that stored them, and how many. */
interface SnapshotChunks {
  writeId: string;
  split: Split;
}

/** How one attempt to write a snapshot ended. */
type Attempt =
  | { kind: 'stored' }
  /** The condition failed: `old` is what is stored (none when nothing is). */
  | { kind: 'condition'; old: Item | undefined }
  /** A rival transaction on the same items, or no reasons given: try again. */
  | { kind: 'conflict' };

/**
 * The snapshots table: one item per (stream, perspective), replaced only by newer ones. A payload
 * too large for the item is split into chunk items (chunks.ts) written in the same transaction,
 * under an id of that write, so that a replaced snapshot's chunks are never overwritten while
 * someone reads them; they are deleted once the write that replaced them has committed.
 */
export class Snapshots {
  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
    private readonly keys: KeyTable,
  ) {}

  async putSnapshot(stream: string, snapshot: SnapshotRecord, options: PutSnapshotOptions = {}): Promise<PutSnapshotResult> {
    const cached = this.heads.cached(stream)?.head.version;
    // Heads only grow: a cached head at or past the snapshot settles it without a read.
    const head = cached !== undefined && cached >= snapshot.version ? cached : await this.heads.headVersion(stream);
    if (head === undefined) throw new StreamNotFoundError(stream);
    if (snapshot.version > head) throw new SnapshotAheadOfStreamError(stream, snapshot.version, head);
    checkPayloadSize(snapshot.payload, 'data');
    let item: Item = {
      [SnapshotAttr.stream]: { S: stream },
      [SnapshotAttr.perspective]: { S: snapshot.perspective },
      [SnapshotAttr.version]: { N: snapshot.version.toString() },
      [SnapshotAttr.payload]: { B: snapshot.payload },
      [SnapshotAttr.contentType]: { S: snapshot.contentType },
      [SnapshotAttr.storedAt]: { N: String(snapshot.storedAt.getTime()) },
    };
    let chunks: Item[] = [];
    if (itemSize(item) > MAX_ITEM_BYTES) {
      const writeId = randomBytes(8).toString('base64url');
      chunks = chunkItems(snapshotChunkOwner(stream, snapshot.perspective, writeId), snapshot.payload);
      item = {
        ...item,
        [SnapshotAttr.chunks]: { N: String(chunks.length) },
        [SnapshotAttr.size]: { N: String(snapshot.payload.byteLength) },
        [SnapshotAttr.writeId]: { S: writeId },
      };
      delete item[SnapshotAttr.payload];
    }

    // What the write replaces: nothing or a snapshot held in its item (undefined), or a split one
    // whose chunks it deletes once replaced; a condition on the write makes sure of it. The first
    // is assumed first (most writes), and a failed condition shows what is there instead.
    let replacing: SnapshotChunks | undefined;
    for (let attempt = 0; attempt < MAX_SNAPSHOT_ATTEMPTS; attempt++) {
      const put = replacingPut(this.context.tables.snapshots, item, snapshot.version, replacing);
      // An unsealed snapshot held in its item is one PutItem; a sealed one is checked against the
      // stream's shred marker, and a split one written with its chunks, in one transaction.
      const outcome =
        options.sealed || chunks.length > 0
          ? await this.transactPut(stream, put, chunks, options.sealed ?? false)
          : await this.plainPut(put);
      if (outcome.kind === 'stored') {
        if (replacing) {
          await deleteChunks(this.context, snapshotChunkOwner(stream, snapshot.perspective, replacing.writeId), replacing.split);
        }
        return { stored: true, storedVersion: snapshot.version };
      }
      if (outcome.kind === 'conflict') {
        await backoff(attempt);
        continue;
      }
      const { old } = outcome;
      // Newer-only, decided by DynamoDB: two replicas storing at once cannot go backwards.
      if (old && bigintOf(old, SnapshotAttr.version) >= snapshot.version) {
        return { stored: false, storedVersion: bigintOf(old, SnapshotAttr.version) };
      }
      replacing = old && chunksOf(old);
    }
    throw new StoreUnavailableError(`snapshots of ${stream} are too contended right now; retry later`);
  }

  private async plainPut(put: Put): Promise<Attempt> {
    try {
      await this.context.call(() => this.context.client.send(new PutItemCommand({ ...put, ReturnConsumedCapacity: 'TOTAL' })));
      return { kind: 'stored' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return { kind: 'condition', old: error.Item };
    }
  }

  /**
   * The snapshot's Put in a transaction: with its chunks, and when sealed with a check that the
   * stream's shred marker is absent. This replica's keys may be cached from before a shred made
   * elsewhere; the marker is written before ShredStream returns, so once it has, no replica stores
   * a snapshot nobody could read. Snapshots are rare next to appends: the transaction's cost
   * (about twice the write units, plus 2 for the check) is paid only here, never on the append path.
   */
  private async transactPut(stream: string, put: Put, chunks: Item[], sealed: boolean): Promise<Attempt> {
    try {
      await transact(this.context, [
        ...(sealed ? [this.keys.notShredded(stream)] : []),
        { Put: put },
        ...chunkPuts(this.context.tables, chunks),
      ]);
      return { kind: 'stored' };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = cancellationReasons(error) ?? [];
      const [marker, snapshot] = sealed ? reasons : [undefined, ...reasons];
      if (marker?.code === 'condition') throw new StreamShreddedError(stream);
      if (snapshot?.code === 'condition') return { kind: 'condition', old: snapshot.item };
      if (reasons.some((reason) => reason.code === 'validation')) {
        throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
      }
      // A conflict with another transaction on the same items (a rival snapshot, a shred), or
      // no reasons given: try again, and the next answer says which.
      return { kind: 'conflict' };
    }
  }

  async getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined> {
    const [exists, found] = await Promise.all([this.heads.exists(stream), this.getItem(stream, perspective)]);
    if (!exists) throw new StreamNotFoundError(stream);
    let item = found;
    for (let attempt = 0; ; attempt++) {
      if (!item) return undefined;
      try {
        return await this.recordOf(stream, perspective, item);
      } catch (error) {
        if (!(error instanceof CorruptDataError) || attempt >= MAX_SNAPSHOT_ATTEMPTS) throw error;
        // A snapshot replaced (or deleted) while its chunks were read takes them with it: the
        // item read again tells. Still the same, its chunks are really missing.
        const again = await this.getItem(stream, perspective);
        if (again?.[SnapshotAttr.writeId]?.S === item[SnapshotAttr.writeId]?.S) throw error;
        item = again;
      }
    }
  }

  private async getItem(stream: string, perspective: string): Promise<Item | undefined> {
    const found = await this.context.call(() =>
      this.context.client.send(
        new GetItemCommand({
          TableName: this.context.tables.snapshots,
          Key: snapshotKey(stream, perspective),
          ConsistentRead: true,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
    return found.Item;
  }

  /** The snapshot an item holds, its chunks read when split. */
  private async recordOf(stream: string, perspective: string, item: Item): Promise<SnapshotRecord> {
    const chunks = chunksOf(item);
    const payload = chunks
      ? await readChunks(this.context, snapshotChunkOwner(stream, perspective, chunks.writeId), chunks.split)
      : (item[SnapshotAttr.payload]?.B ?? new Uint8Array(0));
    return {
      perspective,
      version: bigintOf(item, SnapshotAttr.version),
      payload,
      contentType: item[SnapshotAttr.contentType]?.S ?? '',
      storedAt: new Date(Number(bigintOf(item, SnapshotAttr.storedAt))),
    };
  }

  async deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    if (!(await this.heads.exists(stream))) throw new StreamNotFoundError(stream);
    const result = await this.context.call(() =>
      this.context.client.send(
        new DeleteItemCommand({
          TableName: this.context.tables.snapshots,
          Key: snapshotKey(stream, perspective),
          ReturnValues: 'ALL_OLD',
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
    const deleted = result.Attributes && chunksOf(result.Attributes);
    if (deleted) await deleteChunks(this.context, snapshotChunkOwner(stream, perspective, deleted.writeId), deleted.split);
    return result.Attributes !== undefined;
  }

  async listPerspectives(stream: string): Promise<string[]> {
    const [exists, items] = await Promise.all([
      this.heads.exists(stream),
      queryAll(
        this.context,
        {
          TableName: this.context.tables.snapshots,
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
}

function snapshotKey(stream: string, perspective: string): Item {
  return { [SnapshotAttr.stream]: { S: stream }, [SnapshotAttr.perspective]: { S: perspective } };
}

/** Where the chunks of a stored snapshot item are; undefined when its payload is in the item. */
function chunksOf(item: Item): SnapshotChunks | undefined {
  const split = splitOf(item, SnapshotAttr.chunks, SnapshotAttr.size);
  if (!split) return undefined;
  const writeId = item[SnapshotAttr.writeId]?.S;
  if (writeId === undefined) throw new CorruptDataError('a split snapshot item has no write id');
  return { writeId, split };
}

/**
 * The Put of a snapshot item, on condition that it replaces only an older snapshot, and the one
 * expected: one held in its item (or none), or the split one `replacing`, whose chunks are the
 * ones to delete afterwards.
 */
function replacingPut(table: string, item: Item, version: bigint, replacing: SnapshotChunks | undefined): Put {
  const put = {
    TableName: table,
    Item: item,
    // On a failed condition DynamoDB shows what is stored: newer, or another than expected.
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
  if (!replacing) {
    return {
      ...put,
      ConditionExpression: '(attribute_not_exists(#v) OR #v < :v) AND attribute_not_exists(#n)',
      ExpressionAttributeNames: { '#v': SnapshotAttr.version, '#n': SnapshotAttr.chunks },
      ExpressionAttributeValues: { ':v': { N: version.toString() } },
    };
  }
  return {
    ...put,
    ConditionExpression: '#v < :v AND #w = :w',
    ExpressionAttributeNames: { '#v': SnapshotAttr.version, '#w': SnapshotAttr.writeId },
    ExpressionAttributeValues: { ':v': { N: version.toString() }, ':w': { S: replacing.writeId } },
  };
}
