import { DeleteItemCommand, GetItemCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { abortSignalOf, type CallSignal } from '../../core/call-signal';
import { CorruptDataError } from '../../core/errors';
import type { DynamoDbContext } from './context';
import { checkPayloadSize, entryItem, itemSize, MAX_ITEM_BYTES, type EntryItem, type Item, type Split } from './items';
import { ChunkAttr, EntryAttr, type TableNames } from './tables';

/**
 * Payloads larger than one item. An entry (or snapshot) whose item would pass DynamoDB's 400 KB
 * keeps its attributes in its own item, without the payload, plus the chunk count and payload size
 * (`n`, `z`); the payload's bytes go, in slices of CHUNK_BYTES, to chunk items of the chunks table,
 * written in the same TransactWriteItems as the item that names them. So a reader never sees an
 * item without its chunks, and a write cut short leaves neither.
 *
 * The chunks live in a table of their own, keyed by what they belong to, so that queries of the
 * events and snapshots tables (reads, heads, perspectives) and a consumer of the events table's
 * DynamoDB stream see entries and snapshots only, never a chunk: a consumer tells a split entry
 * from its item (`n` set, no `p`) and finds its chunks at `entryChunkOwner(stream, version)`,
 * indexes 0 to n - 1.
 *
 * The bytes split are the codec's output, sealed already when encryption is on: one AEAD tag over
 * the whole payload, bound to the entry's stream and version, authenticates the reassembled bytes
 * (a chunk missing, swapped, reordered or from another entry fails to decrypt).
 */

/** Payload bytes per chunk item: 400 KB less 2 KB for the key (an owner of up to about 1.3 KB). */
export const CHUNK_BYTES = MAX_ITEM_BYTES - 2 * 1024;

/** The owner (chunks table partition key) of an entry's chunks. Paths hold no NUL. */
export function entryChunkOwner(stream: string, version: bigint): string {
  return `e\u0000${stream}\u0000${version}`;
}

/** The owner of one snapshot write's chunks: a new write id per write, never reused. */
export function snapshotChunkOwner(stream: string, perspective: string, writeId: string): string {
  return `s\u0000${stream}\u0000${perspective}\u0000${writeId}`;
}

/** The chunk items of a payload, CHUNK_BYTES each but the last. */
export function chunkItems(owner: string, payload: Uint8Array): Item[] {
  const items: Item[] = [];
  for (let offset = 0, index = 0; offset < payload.byteLength; offset += CHUNK_BYTES, index++) {
    items.push({
      [ChunkAttr.owner]: { S: owner },
      [ChunkAttr.index]: { N: String(index) },
      [ChunkAttr.bytes]: { B: payload.subarray(offset, offset + CHUNK_BYTES) },
    });
  }
  return items;
}

/** Puts of chunk items, for a transaction. */
export function chunkPuts(tables: TableNames, chunks: Item[]): TransactWriteItem[] {
  return chunks.map((Item) => ({ Put: { TableName: tables.chunks, Item } }));
}

/**
 * The transaction actions writing one entry: the Put of its events item, on condition that its
 * version is free (`ALL_OLD` shows what is there when not), then the Puts of its chunks when the
 * payload does not fit the item. An entry that fits is one action, which an append alone sends as
 * a PutItem. Throws LimitExceededError past MAX_PAYLOAD_BYTES.
 */
export function entryWrites(tables: TableNames, entry: EntryItem): TransactWriteItem[] {
  checkPayloadSize(entry.payload);
  let item = entryItem(entry);
  let chunks: Item[] = [];
  if (itemSize(item) > MAX_ITEM_BYTES) {
    chunks = chunkItems(entryChunkOwner(entry.stream, entry.version), entry.payload);
    item = {
      ...entryItem({ ...entry, payload: new Uint8Array(0) }),
      [EntryAttr.chunks]: { N: String(chunks.length) },
      [EntryAttr.size]: { N: String(entry.payload.byteLength) },
    };
    delete item[EntryAttr.payload];
  }
  return [
    {
      Put: {
        TableName: tables.events,
        Item: item,
        ConditionExpression: 'attribute_not_exists(#v)',
        ExpressionAttributeNames: { '#v': EntryAttr.version },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    },
    ...chunkPuts(tables, chunks),
  ];
}

/**
 * A payload put back together from its chunks: one consistent GetItem per chunk, in parallel (the
 * chunks were committed with the item read, which a consistent read of theirs sees). Throws
 * CorruptDataError when one is missing or the sizes do not add up.
 */
export async function readChunks(context: DynamoDbContext, owner: string, split: Split, signal?: CallSignal): Promise<Uint8Array> {
  const chunks = await Promise.all(
    Array.from({ length: split.chunks }, (_, index) =>
      context.call(
        () =>
          context.client.send(
            new GetItemCommand({
              TableName: context.tables.chunks,
              Key: { [ChunkAttr.owner]: { S: owner }, [ChunkAttr.index]: { N: String(index) } },
              ConsistentRead: true,
              ReturnConsumedCapacity: 'TOTAL',
            }),
            // A caller that gave up stops these requests and their retries too.
            signal ? { abortSignal: abortSignalOf(signal) } : {},
          ),
        signal,
      ),
    ),
  );
  const parts = chunks.map(({ Item }, index) => {
    const bytes = Item?.[ChunkAttr.bytes]?.B;
    if (!bytes) throw new CorruptDataError(`chunk ${index} of the ${split.chunks} of a stored payload is missing`);
    return bytes;
  });
  const size = parts.reduce((sum, part) => sum + part.byteLength, 0);
  if (size !== split.bytes) throw new CorruptDataError(`the chunks of a stored payload hold ${size} bytes, not ${split.bytes}`);
  return Buffer.concat(parts, size);
}

/**
 * The entries (read from their items) with the payloads of the split ones read from their chunks,
 * all in parallel.
 */
export function withPayloads(context: DynamoDbContext, entries: EntryItem[], signal?: CallSignal): Promise<EntryItem[]> {
  return Promise.all(
    entries.map(async (entry) =>
      entry.split
        ? { ...entry, payload: await readChunks(context, entryChunkOwner(entry.stream, entry.version), entry.split, signal) }
        : entry,
    ),
  );
}

/**
 * Deletes the chunks of a payload nothing names any more (a snapshot replaced or deleted). They
 * are invisible already; deleting them only frees their storage, so a failure is not the caller's
 * (its write succeeded): what is left behind stays unread (docs/dynamodb.md, "Large entries").
 */
export async function deleteChunks(context: DynamoDbContext, owner: string, split: Split): Promise<void> {
  await Promise.all(
    Array.from({ length: split.chunks }, (_, index) =>
      context
        .call(() =>
          context.client.send(
            new DeleteItemCommand({
              TableName: context.tables.chunks,
              Key: { [ChunkAttr.owner]: { S: owner }, [ChunkAttr.index]: { N: String(index) } },
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        )
        .catch(() => undefined),
    ),
  );
}
