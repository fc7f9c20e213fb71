import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  type Put,
} from '@aws-sdk/client-dynamodb';
import {
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamNotFoundError,
  StreamShreddedError,
} from '../../core/errors';
import type { PutSnapshotOptions, PutSnapshotResult, SnapshotRecord } from '../port';
import { cancellationReasons } from './aws-errors';
import type { DynamoDbContext } from './context';
import { transact } from './group-commit';
import type { KeyTable } from './key-table';
import { bigintOf, checkItemSize, type Item } from './items';
import { queryAll } from './query-pages';
import { backoff } from './write-attempts';
import type { StreamHeads } from './stream-heads';
import { SnapshotAttr } from './tables';

/** The snapshots table: one item per (stream, perspective), replaced only by newer ones. */
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
      TableName: this.context.tables.snapshots,
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
      await this.context.call(() => this.context.client.send(new PutItemCommand({ ...put, ReturnConsumedCapacity: 'TOTAL' })));
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
        await transact(this.context, [this.keys.notShredded(stream), { Put: put }]);
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
      this.heads.exists(stream),
      this.context.call(() =>
        this.context.client.send(
          new GetItemCommand({
            TableName: this.context.tables.snapshots,
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
