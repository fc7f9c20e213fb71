import { BatchGetItemCommand, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { abortSignalOf } from '../../core/call-signal';
import { CorruptDataError } from '../../core/errors';
import type { FeedEntry, FeedPage, FeedQuery, Position, Subtree } from '../port';
import { withPayloads } from './chunks';
import type { DynamoDbContext } from './context';
import { PAGES, readPageItem, readStateItem, stateKey, type IndexRecord } from './feed-pages';
import { entryKey, readEntryItem, type EntryItem, type Item } from './items';
import { EntryAttr, FeedAttr } from './tables';

/**
 * Page items one feed read scans at most: a read of a sparse subtree moves `reached` on by up to
 * this many pages (of up to the indexer's batch size each) and returns, rather than scanning the
 * whole feed.
 */
export const MAX_PAGES_PER_READ = 20;
/** Keys of one BatchGetItem (DynamoDB's limit). */
const BATCH_GET_KEYS = 100;

/** A position of the feed and the entry it names. */
interface Candidate extends IndexRecord {
  position: Position;
}

/**
 * Reads of the feed: the page items covering (after, ...], filtered by subtree, then the matching
 * entries' items from the events table.
 */
export class FeedReads {
  constructor(private readonly context: DynamoDbContext) {}

  async readFeed(query: FeedQuery): Promise<FeedPage> {
    const { context } = this;
    const options = query.signal ? { abortSignal: abortSignalOf(query.signal) } : {};
    const { Items = [], LastEvaluatedKey } = await context.call(
      () =>
        context.client.send(
          new QueryCommand({
            TableName: context.tables.feed,
            KeyConditionExpression: '#k = :p AND #n > :after',
            ExpressionAttributeNames: { '#k': FeedAttr.kind, '#n': FeedAttr.position },
            ExpressionAttributeValues: { ':p': { S: PAGES }, ':after': { N: query.after.toString() } },
            Limit: MAX_PAGES_PER_READ,
            // A position once read is in every later read: pages are written once, never changed.
            ConsistentRead: true,
            ReturnConsumedCapacity: 'TOTAL',
          }),
          options,
        ),
      query.signal,
    );
    const candidates: Candidate[] = [];
    let reached = query.after;
    // Whether the scan stopped at the limit with positions left after `reached`.
    let cut = false;
    scan: for (const [index, item] of Items.entries()) {
      const page = readPageItem(item);
      for (const [offset, record] of page.records.entries()) {
        const position = page.first + BigInt(offset);
        if (position <= query.after) continue;
        if (!inSubtree(record.stream, query.subtree) || (query.only && !query.only(record.stream))) continue;
        candidates.push({ ...record, position });
        if (candidates.length === query.limit) {
          reached = position;
          cut = position < page.last || index < Items.length - 1 || LastEvaluatedKey !== undefined;
          break scan;
        }
      }
      reached = page.last;
    }
    const entries = await this.entries(candidates, query);
    if (entries.length < candidates.length) {
      // The bytes bound stopped the page: it covers the feed up to its last entry.
      const last = entries[entries.length - 1];
      return { entries, reached: last ? last.position : query.after, more: true };
    }
    return { entries, reached, more: cut || (candidates.length < query.limit && LastEvaluatedKey !== undefined) };
  }

  /** The newest position in the feed: the one before the indexer's next. */
  async feedHead(): Promise<Position> {
    const { Item } = await this.context.call(() =>
      this.context.client.send(new GetItemCommand({ TableName: this.context.tables.feed, Key: stateKey(), ConsistentRead: true })),
    );
    return Item ? readStateItem(Item).next - 1n : 0n;
  }

  /**
   * The candidates' entries, in order, up to the query's bytes bound (at least one). A split
   * entry's item gives its size (`z`): the page is bounded before any chunk is read, and only the
   * chunks of the entries returned are fetched, all at once (chunks.ts).
   */
  private async entries(candidates: Candidate[], query: FeedQuery): Promise<FeedEntry[]> {
    const found: Array<{ candidate: Candidate; entry: EntryItem }> = [];
    let bytes = 0;
    fetch: for (let start = 0; start < candidates.length; start += BATCH_GET_KEYS) {
      const chunk = candidates.slice(start, start + BATCH_GET_KEYS);
      const items = await this.batchGet(chunk, query);
      for (const candidate of chunk) {
        const item = items.get(keyOf(candidate.stream, candidate.version));
        if (!item) throw new CorruptDataError(`the feed names entry ${candidate.version} of ${candidate.stream}, which is not stored`);
        const entry = readEntryItem(item);
        const size = entry.split?.bytes ?? entry.payload.byteLength;
        if (found.length > 0 && bytes + size > query.maxBytes) break fetch;
        bytes += size;
        found.push({ candidate, entry });
      }
    }
    const whole = await withPayloads(this.context, found.map(({ entry }) => entry), query.signal);
    return whole.map((entry, index) => {
      const { candidate } = found[index] as (typeof found)[number];
      return {
        stream: candidate.stream,
        position: candidate.position,
        version: entry.version,
        recordedAt: entry.recordedAt,
        payload: entry.payload,
        ...(entry.shredded === true ? { shredded: true } : {}),
      };
    });
  }

  /** The events items of the candidates (consistent reads), following unprocessed keys. */
  private async batchGet(candidates: Candidate[], query: FeedQuery): Promise<Map<string, Item>> {
    const { context } = this;
    const options = query.signal ? { abortSignal: abortSignalOf(query.signal) } : {};
    const found = new Map<string, Item>();
    let keys: Item[] = candidates.map((c) => entryKey(c.stream, c.version));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
      const request = { [context.tables.events]: { Keys: keys, ConsistentRead: true } };
      const { Responses, UnprocessedKeys } = await context.call(
        () => context.client.send(new BatchGetItemCommand({ RequestItems: request, ReturnConsumedCapacity: 'TOTAL' }), options),
        query.signal,
      );
      for (const item of Responses?.[context.tables.events] ?? []) {
        found.set(keyOf(item[EntryAttr.stream]?.S ?? '', BigInt(item[EntryAttr.version]?.N ?? '-1')), item);
      }
      keys = UnprocessedKeys?.[context.tables.events]?.Keys ?? [];
    }
    return found;
  }
}

/** Whether a stream is in the subtree: the path itself, or (with descendants) below it by whole segments. */
export function inSubtree(stream: string, subtree: Subtree): boolean {
  if (stream === subtree.path) return true;
  if (!subtree.descendants) return false;
  return subtree.path === '/' || stream.startsWith(`${subtree.path}/`);
}

function keyOf(stream: string, version: bigint): string {
  return `${version}\u0000${stream}`;
}
