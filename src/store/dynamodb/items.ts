import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { CorruptDataError, LimitExceededError } from '../../core/errors';
import type { StoredEntry, Version } from '../port';
import { EntryAttr } from './tables';

/** A DynamoDB item as the low-level client sends and returns it. */
export type Item = Record<string, AttributeValue>;

/** DynamoDB's item size limit: 400 KB, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;

/**
 * DynamoDB's limits on one TransactWriteItems: 100 items, and 4 MB of items ("4 MB" is 4 MiB, as
 * "400 KB" is 400 KiB: DynamoDB Local refuses a transaction of 4,194,304 bytes and takes one of
 * 4,194,000).
 */
export const MAX_TRANSACTION_ITEMS = 100;
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024;

/**
 * The largest stored payload (an entry's or a snapshot's, as the codec made it) the store holds:
 * an entry too large for its own item is split into chunk items written in one transaction with
 * it (chunks.ts), and what one transaction holds besides the payload is at most about 25 KB (the
 * entry's item and its chunks' keys, at most 1.3 KB each; in a CreateStream, the parent's entry,
 * the child's entry 0 and the children item; the shred check of a sealed snapshot). 64 KiB are
 * kept for it: 4,128,768 bytes.
 */
export const MAX_PAYLOAD_BYTES = MAX_TRANSACTION_BYTES - 64 * 1024;

/** A payload's size, when its bytes are in chunk items rather than in the item itself. */
export interface Split {
  /** How many chunk items hold the payload. */
  chunks: number;
  /** The payload's size in bytes. */
  bytes: number;
}

/** One stored entry as the events table holds it. */
export interface EntryItem extends StoredEntry {
  stream: string;
  requestId?: string;
  /** Payload bytes of the stream's entries up to and including this one. */
  bytesThrough: bigint;
  /** The shred fence, which ends the stream: no payload, and no entry can follow it. */
  shredded?: boolean;
  /**
   * Read from an item whose payload is in chunk items: `payload` is empty until they are read
   * (chunks.ts, withPayloads).
   */
  split?: Split;
}

/** The events item of an entry. */
export function entryItem(entry: EntryItem): Item {
  const item: Item = {
    [EntryAttr.stream]: { S: entry.stream },
    [EntryAttr.version]: { N: entry.version.toString() },
    [EntryAttr.payload]: { B: entry.payload },
    [EntryAttr.recordedAt]: { N: String(entry.recordedAt.getTime()) },
    [EntryAttr.bytesThrough]: { N: entry.bytesThrough.toString() },
  };
  if (entry.requestId !== undefined) item[EntryAttr.requestId] = { S: entry.requestId };
  if (entry.shredded) {
    delete item[EntryAttr.payload];
    item[EntryAttr.shredded] = { BOOL: true };
  }
  return item;
}

/** Reads an events item; throws CorruptDataError when an attribute is missing or malformed. */
export function readEntryItem(item: Item): EntryItem {
  const entry: EntryItem = {
    stream: stringOf(item, EntryAttr.stream),
    version: bigintOf(item, EntryAttr.version),
    payload: item[EntryAttr.payload]?.B ?? new Uint8Array(0),
    recordedAt: new Date(Number(bigintOf(item, EntryAttr.recordedAt))),
    bytesThrough: bigintOf(item, EntryAttr.bytesThrough),
  };
  const requestId = item[EntryAttr.requestId]?.S;
  if (requestId !== undefined) entry.requestId = requestId;
  if (item[EntryAttr.shredded]?.BOOL === true) entry.shredded = true;
  const split = splitOf(item, EntryAttr.chunks, EntryAttr.size);
  if (split) entry.split = split;
  return entry;
}

/** The chunk count and size of an item whose payload is in chunk items; undefined for one in-line. */
export function splitOf(item: Item, chunks: string, size: string): Split | undefined {
  if (item[chunks] === undefined) return undefined;
  const split = { chunks: Number(bigintOf(item, chunks)), bytes: Number(bigintOf(item, size)) };
  if (split.chunks < 1 || split.bytes < split.chunks) throw new CorruptDataError(`stored item has ${split.chunks} chunks of ${split.bytes} bytes`);
  return split;
}

/** The key of one entry. */
export function entryKey(stream: string, version: Version): Item {
  return { [EntryAttr.stream]: { S: stream }, [EntryAttr.version]: { N: version.toString() } };
}

/**
 * Throws LimitExceededError when a payload is larger than the store holds. Checked before sending,
 * so the client gets RESOURCE_EXHAUSTED naming the limit instead of a backend error.
 */
export function checkPayloadSize(payload: Uint8Array, field = 'events'): void {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) throw payloadTooLarge(payload.byteLength, field);
}

/** The error for a payload larger than MAX_PAYLOAD_BYTES (`size` in bytes). */
export function payloadTooLarge(size: number, field = 'events'): LimitExceededError {
  return new LimitExceededError(field, 'dynamodb_max_payload_bytes', MAX_PAYLOAD_BYTES, size);
}

/**
 * The error for writes DynamoDB refused as too large although the store's own count said they fit
 * (an item past 400 KB, or a transaction past 4 MB): the limit is reported all the same.
 */
export function backendRefusedSize(): LimitExceededError {
  return payloadTooLarge(MAX_PAYLOAD_BYTES + 1);
}

/** The bytes one action of a transaction counts towards its 4 MB: its item, or its key. */
export function transactItemSize(action: TransactWriteItem): number {
  if (action.Put) return itemSize(action.Put.Item ?? {});
  return itemSize(action.ConditionCheck?.Key ?? action.Delete?.Key ?? action.Update?.Key ?? {});
}

/**
 * An item's size as DynamoDB counts it for the 400 KB limit and for capacity units: attribute
 * name lengths plus value sizes (numbers take about one byte per two digits, plus one).
 */
export function itemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name, 'utf8');
    if (value.S !== undefined) size += Buffer.byteLength(value.S, 'utf8');
    else if (value.N !== undefined) size += Math.ceil(value.N.replace(/^-|\./g, '').length / 2) + 1;
    else if (value.B !== undefined) size += value.B.byteLength;
    else size += 1;
  }
  return size;
}

function stringOf(item: Item, name: string): string {
  const value = item[name]?.S;
  if (value === undefined) throw new CorruptDataError(`stored item lacks string attribute ${name}`);
  return value;
}

/** A number attribute as a bigint. */
export function bigintOf(item: Item, name: string): bigint {
  const value = item[name]?.N;
  if (value === undefined || !/^-?\d+$/.test(value)) {
    throw new CorruptDataError(`stored item lacks integer attribute ${name}`);
  }
  return BigInt(value);
}
