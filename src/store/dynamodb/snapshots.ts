import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { SnapshotAheadOfStreamError, StreamNotFoundError } from '../../core/errors';
import type { PutSnapshotResult, SnapshotRecord } from '../port';
import type { DynamoDbContext } from './context';
import { bigintOf, checkItemSize, type Item } from './items';
import { queryAll } from './query-pages';
import type { StreamHeads } from './stream-heads';
import { SnapshotAttr } from './tables';

/** The snapshots table: one item per (stream, perspective), replaced only by newer ones. */
export class Snapshots {
  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
  ) {}

  async putSnapshot(stream: string, snapshot: SnapshotRecord): Promise<PutSnapshotResult> {
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
    try {
      await this.context.call(() =>
        this.context.client.send(
          new PutItemCommand({
            TableName: this.context.tables.snapshots,
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
