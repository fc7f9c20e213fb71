import { CorruptDataError } from '../../core/errors';
import type { Position, Version } from '../port';
import { encodeVarint, VarintReader } from '../varint';
import { bigintOf, type Item } from './items';
import { backfillJson, EntryAttr, FeedAttr, PAGES, readBackfillJson, stateKey, type BackfillMark } from './tables';

export { PAGES, STATE, stateKey } from './tables';

/**
 * Pages of the feed, as the feed table holds them. A page is one item: a run of index records
 * (stream, version) at consecutive positions first..last, sorted under partition "p" by its last
 * position, so that a Query `n > after` returns exactly the pages holding positions past `after`,
 * in order. Many records per item keep the indexer's writes far fewer than the entries it indexes.
 */

/** One index record: which entry holds a position. */
export interface IndexRecord {
  stream: string;
  version: Version;
}

/** One page of the feed as read back. */
export interface FeedPageItem {
  first: Position;
  last: Position;
  records: IndexRecord[];
}

/** How far a shard is indexed: the last sequence number indexed, or done (closed and read to its end). */
export interface ShardMark {
  seq?: string;
  done?: boolean;
}

/** The indexer's state item as read. */
export interface StateItem {
  holder: string;
  epoch: bigint;
  expiresAt: number;
  next: Position;
  marks: Map<string, ShardMark>;
  pending: IndexRecord[];
  /** The backfill pending or running, if any. */
  backfill?: BackfillMark;
}

/**
 * Largest encoded records of one page item: under DynamoDB's 400 KB with room for the key and
 * attribute names. A batch larger than this is written as several page items, in one transaction.
 */
export const MAX_PAGE_RECORD_BYTES = 350 * 1024;

/** The page items of a batch of records at positions first, first + 1, ... */
export function pageItems(first: Position, records: IndexRecord[]): Item[] {
  const items: Item[] = [];
  let start = 0;
  let chunks: Buffer[] = [];
  let bytes = 0;
  const flush = (end: number) => {
    if (end === start) return;
    const pageFirst = first + BigInt(start);
    items.push({
      [FeedAttr.kind]: { S: PAGES },
      [FeedAttr.position]: { N: (first + BigInt(end - 1)).toString() },
      [FeedAttr.first]: { N: pageFirst.toString() },
      [FeedAttr.records]: { B: Buffer.concat(chunks) },
    });
    start = end;
    chunks = [];
    bytes = 0;
  };
  records.forEach((record, i) => {
    const encoded = encodeRecord(record);
    if (bytes + encoded.byteLength > MAX_PAGE_RECORD_BYTES) flush(i);
    chunks.push(encoded);
    bytes += encoded.byteLength;
  });
  flush(records.length);
  return items;
}

/** Reads a page item; throws CorruptDataError when it does not decode to its count of positions. */
export function readPageItem(item: Item): FeedPageItem {
  const last = bigintOf(item, FeedAttr.position);
  const first = bigintOf(item, FeedAttr.first);
  const bytes = item[FeedAttr.records]?.B;
  if (!bytes) throw new CorruptDataError('feed page lacks its records');
  const records = decodeRecords(bytes);
  if (BigInt(records.length) !== last - first + 1n) {
    throw new CorruptDataError(`feed page ${first}..${last} holds ${records.length} records`);
  }
  return { first, last, records };
}

/** A record: the path's UTF-8 length (varint), the path, the version (varint). */
function encodeRecord(record: IndexRecord): Buffer {
  const path = Buffer.from(record.stream, 'utf8');
  return Buffer.concat([encodeVarint(BigInt(path.byteLength)), path, encodeVarint(record.version)]);
}

function decodeRecords(bytes: Uint8Array): IndexRecord[] {
  const records: IndexRecord[] = [];
  const reader = new VarintReader(bytes, 'feed page records');
  while (!reader.done) {
    const length = Number(reader.next());
    const stream = Buffer.from(reader.take(length)).toString('utf8');
    records.push({ stream, version: reader.next() });
  }
  return records;
}

/**
 * Whether an events item has a place in the feed: an entry, or a stream's shred fence (which
 * tells the feed's readers on every replica that the stream was shredded: FeedEntry.shredded).
 * An entry split over several items (issue 17) is one events item all the same, with `t` and
 * `b` (and `n`, `z` instead of `p`): indexed once, like any entry. Its chunks are items of the
 * chunks table, which has no DynamoDB stream and which the backfill does not scan, so they never
 * come here; feed reads fetch them with the entry (feed-reads.ts). Adapt here when items change.
 */
export function isFeedEntryImage(image: Record<string, unknown> | undefined): boolean {
  if (!image) return false;
  return EntryAttr.recordedAt in image && EntryAttr.bytesThrough in image;
}

/**
 * The attributes isFeedEntryImage reads, and the key: a Scan of the events table projecting
 * these (the backfill's) tells entries from other items without reading their payloads. A split
 * entry's `n` and `z` are not needed: the scan only numbers entries, and feed reads get the
 * whole item.
 */
export const FEED_ENTRY_ATTRIBUTES: readonly string[] = [EntryAttr.stream, EntryAttr.version, EntryAttr.recordedAt, EntryAttr.bytesThrough];

/** The indexer's state item. */
export function stateItem(state: StateItem): Item {
  return {
    ...stateKey(),
    [FeedAttr.holder]: { S: state.holder },
    [FeedAttr.epoch]: { N: state.epoch.toString() },
    [FeedAttr.expiresAt]: { N: String(state.expiresAt) },
    [FeedAttr.next]: { N: state.next.toString() },
    [FeedAttr.shards]: { S: marksJson(state.marks) },
    [FeedAttr.pending]: { S: pendingJson(state.pending) },
    ...(state.backfill ? { [FeedAttr.backfill]: { S: backfillJson(state.backfill) } } : {}),
  };
}

/** Reads the indexer's state item. */
export function readStateItem(item: Item): StateItem {
  const marks = new Map<string, ShardMark>(Object.entries(JSON.parse(item[FeedAttr.shards]?.S ?? '{}') as Record<string, ShardMark>));
  const pending = (JSON.parse(item[FeedAttr.pending]?.S ?? '[]') as Array<[string, string]>).map(([stream, version]) => ({
    stream,
    version: BigInt(version),
  }));
  const backfill = item[FeedAttr.backfill]?.S;
  return {
    holder: item[FeedAttr.holder]?.S ?? '',
    epoch: BigInt(item[FeedAttr.epoch]?.N ?? '0'),
    expiresAt: Number(item[FeedAttr.expiresAt]?.N ?? '0'),
    next: BigInt(item[FeedAttr.next]?.N ?? '1'),
    marks,
    pending,
    ...(backfill !== undefined ? { backfill: readBackfillJson(backfill) } : {}),
  };
}

export function marksJson(marks: Map<string, ShardMark>): string {
  return JSON.stringify(Object.fromEntries(marks));
}

export function pendingJson(pending: IndexRecord[]): string {
  return JSON.stringify(pending.map((record) => [record.stream, record.version.toString()]));
}

