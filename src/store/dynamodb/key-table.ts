import { setTimeout as sleep } from 'node:timers/promises';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  TransactionConflictException,
  UpdateItemCommand,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import type { StreamKeys, WrappedKey } from '../port';
import { bigintOf, type Item } from './items';
import { KeyAttr } from './tables';

/** Runs one SDK call with the store's error mapping. */
export type Call = <T>(request: () => Promise<T>) => Promise<T>;

/**
 * The keys table: streams' wrapped data keys and their shredding markers.
 *
 * KEK rotation lists every stream holding keys in path order, so all key items share one
 * partition (`b` = "keys") and sort by `c` = path + NUL + what: "#" for the shredded marker,
 * "k" + the zero-padded DEK version for a key. Paths never contain NUL, so one stream's items
 * are contiguous and streams sort in byte order of their paths. Key writes are rare (one per
 * stream creation with encryption on, and rotations); DynamoDB splits a busy partition by sort
 * key ranges.
 */
export class KeyTable {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly call: Call,
  ) {}

  async get(stream: string): Promise<StreamKeys> {
    const items = await this.query({
      KeyConditionExpression: '#b = :b AND begins_with(#c, :prefix)',
      ExpressionAttributeValues: { ':b': { S: BUCKET }, ':prefix': { S: streamPrefix(stream) } },
    });
    const shredded = items.some((item) => item[KeyAttr.sortKey]?.S === markerKey(stream));
    return { keys: items.flatMap((item) => readKey(item) ?? []), shredded };
  }

  /** Adds a key version unless it exists or the stream was shredded (both checked by DynamoDB). */
  async add(stream: string, key: WrappedKey): Promise<boolean> {
    try {
      await this.call(() =>
        this.client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              this.notShredded(stream),
              {
                Put: {
                  TableName: this.table,
                  Item: {
                    ...itemKey(versionKey(stream, key.dekVersion)),
                    [KeyAttr.stream]: { S: stream },
                    [KeyAttr.dekVersion]: { N: String(key.dekVersion) },
                    [KeyAttr.kekId]: { S: key.kekId },
                    [KeyAttr.wrapped]: { B: key.wrapped },
                    [KeyAttr.createdAt]: { N: String(key.createdAt.getTime()) },
                  },
                  ConditionExpression: 'attribute_not_exists(#c)',
                  ExpressionAttributeNames: { '#c': KeyAttr.sortKey },
                },
              },
            ],
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof TransactionCanceledException) return false;
      throw error;
    }
  }

  /**
   * A transaction item that holds while the stream is not shredded (its marker is absent): a
   * write in the same transaction cannot commit after a shred.
   */
  notShredded(stream: string): TransactWriteItem {
    return {
      ConditionCheck: {
        TableName: this.table,
        Key: itemKey(markerKey(stream)),
        ConditionExpression: 'attribute_not_exists(#c)',
        ExpressionAttributeNames: { '#c': KeyAttr.sortKey },
      },
    };
  }

  async rewrap(
    stream: string,
    dekVersion: number,
    expectedKekId: string,
    kekId: string,
    wrapped: Uint8Array,
  ): Promise<boolean> {
    try {
      await this.call(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: itemKey(versionKey(stream, dekVersion)),
            UpdateExpression: 'SET #i = :kek, #w = :wrapped',
            ConditionExpression: '#i = :expected',
            ExpressionAttributeNames: { '#i': KeyAttr.kekId, '#w': KeyAttr.wrapped },
            ExpressionAttributeValues: {
              ':kek': { S: kekId },
              ':wrapped': { B: wrapped },
              ':expected': { S: expectedKekId },
            },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * The first step of a shred: the marker, after which no key can be added. The keys are deleted
   * afterwards (deleteKeys); a crash in between leaves a shredded stream whose remaining keys the
   * next shred deletes.
   */
  async markShredded(stream: string, shreddedAt: Date): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.call(() =>
          this.client.send(
            new PutItemCommand({
              TableName: this.table,
              Item: {
                ...itemKey(markerKey(stream)),
                [KeyAttr.stream]: { S: stream },
                [KeyAttr.shreddedAt]: { N: String(shreddedAt.getTime()) },
              },
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        return;
      } catch (error) {
        // A transaction checking the marker right now (a sealed snapshot, a key being added) makes
        // DynamoDB refuse this write; the SDK does not retry that. Such transactions are short.
        if (!(error instanceof TransactionConflictException) || attempt === MARK_ATTEMPTS) throw error;
        await sleep(Math.random() * 20 * 2 ** attempt);
      }
    }
  }

  /** Deletes every key of the stream (once it is marked shredded). */
  async deleteKeys(stream: string): Promise<void> {
    const { keys } = await this.get(stream);
    await Promise.all(
      keys.map((key) =>
        this.call(() =>
          this.client.send(
            new DeleteItemCommand({
              TableName: this.table,
              Key: itemKey(versionKey(stream, key.dekVersion)),
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        ),
      ),
    );
  }

  /** Up to `limit` streams holding keys, in path order after `after`, with their keys. */
  async list(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>> {
    const result: Array<{ stream: string; keys: WrappedKey[] }> = [];
    let startKey: Item | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            TableName: this.table,
            // Everything of `after` sorts below after + "\u0001"; every later path sorts above it.
            KeyConditionExpression: after === undefined ? '#b = :b' : '#b = :b AND #c > :after',
            ExpressionAttributeNames: {
              '#b': KeyAttr.bucket,
              ...(after === undefined ? {} : { '#c': KeyAttr.sortKey }),
            },
            ExpressionAttributeValues: {
              ':b': { S: BUCKET },
              ...(after === undefined ? {} : { ':after': { S: `${after}\u0001` } }),
            },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const key = readKey(item);
        const stream = item[KeyAttr.stream]?.S;
        if (!key || stream === undefined) continue;
        const last = result[result.length - 1];
        if (last?.stream === stream) last.keys.push(key);
        else if (result.length === limit) return result;
        else result.push({ stream, keys: [key] });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return result;
  }

  private async query(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new QueryCommand({
            ...input,
            TableName: this.table,
            ExpressionAttributeNames: { '#b': KeyAttr.bucket, '#c': KeyAttr.sortKey },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }
}

/** The one partition of the keys table. */
const BUCKET = 'keys';

function streamPrefix(stream: string): string {
  return `${stream}\u0000`;
}

/** Tries of the shred marker's write while transactions conflict with it. */
const MARK_ATTEMPTS = 6;

function markerKey(stream: string): string {
  return `${streamPrefix(stream)}#`;
}

function versionKey(stream: string, dekVersion: number): string {
  return `${streamPrefix(stream)}k${String(dekVersion).padStart(10, '0')}`;
}

function itemKey(sortKey: string): Item {
  return { [KeyAttr.bucket]: { S: BUCKET }, [KeyAttr.sortKey]: { S: sortKey } };
}

/** A key item as a WrappedKey, or undefined for the shredded marker. */
function readKey(item: Item): WrappedKey | undefined {
  if (item[KeyAttr.dekVersion] === undefined) return undefined;
  return {
    dekVersion: Number(bigintOf(item, KeyAttr.dekVersion)),
    kekId: item[KeyAttr.kekId]?.S ?? '',
    wrapped: item[KeyAttr.wrapped]?.B ?? new Uint8Array(0),
    createdAt: new Date(Number(bigintOf(item, KeyAttr.createdAt))),
  };
}
