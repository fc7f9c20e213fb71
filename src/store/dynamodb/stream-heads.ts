import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { LRUCache } from 'lru-cache';
import type { Version } from '../port';
import type { DynamoDbContext } from './context';
import { readEntryItem, type EntryItem, type Item } from './items';
import { queryAll } from './query-pages';
import { StreamState, type EntryMeta } from './stream-cache';
import { EntryAttr } from './tables';

/**
 * Heads and the stream cache: what this replica knows of the streams it used most recently (their
 * heads and the request ids of their newest entries, see StreamState), and the reads that load
 * it, bring it up to date, or ask DynamoDB for a head.
 */
export class StreamHeads {
  /** What this replica knows of the streams it used most recently. */
  private readonly cache: LRUCache<string, StreamState>;

  constructor(
    private readonly context: DynamoDbContext,
    /** The idempotency window: how many newest entries' request ids are known per stream. */
    readonly window: number,
    maxCachedStreams: number,
  ) {
    this.cache = new LRUCache({ max: maxCachedStreams });
  }

  /** The cached state of a stream, without asking DynamoDB; undefined when not cached. */
  cached(stream: string): StreamState | undefined {
    return this.cache.get(stream);
  }

  /** Remembers the state of a stream this replica just wrote (a created child). */
  remember(stream: string, state: StreamState): void {
    this.cache.set(stream, state);
  }

  /** The cached state of a stream, loading its newest entries when not cached; undefined if missing. */
  async streamState(stream: string): Promise<StreamState | undefined> {
    const cached = this.cache.get(stream);
    if (cached) return cached;
    const newest = await this.newestMeta(stream);
    const [head, ...older] = newest;
    if (!head) return undefined;
    const state = new StreamState(head, this.window);
    for (const entry of older) state.prependOlder(entry);
    this.cache.set(stream, state);
    return state;
  }

  /**
   * Brings a cached stream state up to DynamoDB's head, learning every entry in between (their
   * request ids keep the idempotency window whole). Too far behind, it reloads the newest.
   */
  async catchUp(stream: string, state: StreamState): Promise<void> {
    const newer = await queryAll(
      this.context,
      {
        TableName: this.context.tables.events,
        KeyConditionExpression: '#s = :s AND #v > :v',
        ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
        ExpressionAttributeValues: { ':s': { S: stream }, ':v': { N: state.head.version.toString() } },
        ProjectionExpression: ENTRY_META_PROJECTION,
        ConsistentRead: true,
      },
      this.window + 1,
    );
    if (newer.length > this.window) {
      const entries = (await this.newestMeta(stream)).reverse();
      // Rebuild in place: callers hold this state object.
      const fresh = entries[0];
      if (!fresh) return;
      state.resetTo(fresh);
      for (const entry of entries.slice(1)) state.advance(entry);
      return;
    }
    for (const item of newer) state.advance(readEntryMeta(stream, item));
  }

  /** The newest entry of a stream (one consistent Query of one item), or undefined. */
  async headItem(stream: string): Promise<EntryItem | undefined> {
    const page = await this.context.call(() =>
      this.context.client.send(
        new QueryCommand({
          TableName: this.context.tables.events,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
          ExpressionAttributeValues: { ':s': { S: stream } },
          ProjectionExpression: ENTRY_META_PROJECTION,
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: 1,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      ),
    );
    const item = page.Items?.[0];
    return item && readEntryMeta(stream, item);
  }

  async headVersion(stream: string): Promise<Version | undefined> {
    const head = await this.headItem(stream);
    return head && entryHead(head);
  }

  /** Whether a stream exists: free when cached (streams are never deleted), else one Query. */
  async exists(stream: string): Promise<boolean> {
    return this.cache.get(stream) !== undefined || (await this.headItem(stream)) !== undefined;
  }

  /** The newest entries of a stream, up to the window, newest first, without payloads. */
  private async newestMeta(stream: string): Promise<EntryItem[]> {
    const newest = await queryAll(
      this.context,
      {
        TableName: this.context.tables.events,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': EntryAttr.stream, ...ENTRY_META_NAMES },
        ExpressionAttributeValues: { ':s': { S: stream } },
        ProjectionExpression: ENTRY_META_PROJECTION,
        ScanIndexForward: false,
        ConsistentRead: true,
      },
      this.window,
    );
    return newest.map((item) => readEntryMeta(stream, item));
  }
}

/** Everything of an entry item but its payload: what the stream cache needs. */
const ENTRY_META_NAMES = {
  '#v': EntryAttr.version,
  '#t': EntryAttr.recordedAt,
  '#r': EntryAttr.requestId,
  '#b': EntryAttr.bytesThrough,
  '#x': EntryAttr.shredded,
};
const ENTRY_META_PROJECTION = '#v, #t, #r, #b, #x';

function readEntryMeta(stream: string, item: Item): EntryItem {
  return readEntryItem({ ...item, [EntryAttr.stream]: { S: stream }, [EntryAttr.payload]: { B: new Uint8Array(0) } });
}

/**
 * The version of the stream's newest entry, given its newest item: the shred fence is not an
 * entry (it only stops appends), so a shredded stream keeps the head it had, as on every store.
 */
export function entryHead(newest: EntryMeta): Version {
  return newest.shredded ? newest.version - 1n : newest.version;
}
