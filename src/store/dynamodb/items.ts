import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { CorruptDataError, LimitExceededError } from '../../core/errors';
import type { StoredEntry, Version } from '../port';
import { EntryAttr } from './tables';

/** A DynamoDB item as the low-level client sends and returns it. */
export type Item = Record<string, AttributeValue>;

/** DynamoDB's item size limit: 400 KB, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;

/** One stored entry as the events table holds it. */
export interface EntryItem extends StoredEntry {
  stream: string;
  requestId?: string;
  /** Payload bytes of the stream's entries up to and including this one. */
  bytesThrough: bigint;
  /** The shred fence, which ends the stream: no payload, and no entry can follow it. */
  shredded?: boolean;
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
  return entry;
}

/** The key of one entry. */
export function entryKey(stream: string, version: Version): Item {
  return { [EntryAttr.stream]: { S: stream }, [EntryAttr.version]: { N: version.toString() } };
}

/**
 * Throws LimitExceededError when the item cannot be stored in one DynamoDB item. Checked before
 * sending, so the client gets RESOURCE_EXHAUSTED naming the limit instead of a backend error.
 */
export function checkItemSize(item: Item, field = 'events'): void {
  const size = itemSize(item);
  if (size > MAX_ITEM_BYTES) throw itemTooLarge(size, field);
}

/** The error for data that does not fit one item (`size` in bytes, as DynamoDB counts them). */
export function itemTooLarge(size: number, field = 'events'): LimitExceededError {
  return new LimitExceededError(field, 'dynamodb_max_item_bytes', MAX_ITEM_BYTES, size);
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
