import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { CallSignal } from '../../core/call-signal';
import { StreamNotFoundError, StreamShreddedError } from '../../core/errors';
import type { ReadPage, ReadQuery, StoredEntry, StreamInfo, Version } from '../port';
import { withPayloads } from './chunks';
import type { DynamoDbContext } from './context';
import { bigintOf, entryKey, readEntryItem, type EntryItem } from './items';
import { queryAll, queryPages } from './query-pages';
import { entryHead, type StreamHeads } from './stream-heads';
import { ChildAttr, EntryAttr } from './tables';

/** Reads of entries, stream summaries and children: consistent queries, page by page. */
export class Reads {
  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
  ) {}

  /**
   * A page and the head version as of one moment, so that a client reading the latest entry and
   * appending with expected_version = head_version never writes after an entry it has not seen.
   * Entries never change once written, so a page stays a true answer after it was read; only its
   * end can go stale. Hence: a forward page that reached the head, and a backward page that began
   * below `fromVersion`, start at the head as it was when read (no second request); any other page
   * ends before the head, and the head read after it agrees with it, except an empty forward page
   * whose head has since reached `fromVersion`, which is read again up to that head.
   */
  async read(stream: string, query: ReadQuery): Promise<ReadPage> {
    let page = await this.readRange(stream, query);
    if (query.direction === 'forward') {
      const last = page.entries[page.entries.length - 1];
      if (last && !page.more) return { ...page, headVersion: last.version };
    } else {
      // Versions have no gaps: the newest entry at or below `fromVersion`, when below it, is the head.
      const first = page.entries[0];
      if (first && first.version < query.fromVersion) return { ...page, headVersion: first.version };
    }
    const headVersion = await this.heads.headVersion(stream);
    if (headVersion === undefined) throw new StreamNotFoundError(stream);
    if (query.direction === 'forward' && page.entries.length === 0 && headVersion >= query.fromVersion) {
      page = await this.readRange(stream, query, headVersion);
    }
    return { ...page, headVersion };
  }

  /** One page of entries, in the query's direction; forwards up to `upTo` (inclusive) when given. */
  private async readRange(
    stream: string,
    query: ReadQuery,
    upTo?: Version,
  ): Promise<{ entries: StoredEntry[]; more: boolean }> {
    const forward = query.direction === 'forward';
    const bounded = forward && upTo !== undefined;
    /** The page's entries as their items hold them: a split one's payload is read at the end. */
    const entries: EntryItem[] = [];
    let bytes = 0;
    const pages = queryPages(
      this.context,
      {
        TableName: this.context.tables.events,
        KeyConditionExpression: bounded ? '#s = :s AND #v BETWEEN :v AND :to' : `#s = :s AND #v ${forward ? '>=' : '<='} :v`,
        ExpressionAttributeNames: { '#s': EntryAttr.stream, '#v': EntryAttr.version },
        ExpressionAttributeValues: {
          ':s': { S: stream },
          ':v': { N: query.fromVersion.toString() },
          ...(bounded ? { ':to': { N: upTo.toString() } } : {}),
        },
        ScanIndexForward: forward,
        // A just-acknowledged append must be visible to the next read, on any replica.
        ConsistentRead: true,
      },
      {
        // One more than asked tells whether more exist; DynamoDB may stop earlier at 1 MB.
        limit: () => query.limit + 1 - entries.length,
        // A caller that gave up stops the SDK's retries too.
        ...(query.signal ? { signal: query.signal } : {}),
      },
    );
    for await (const page of pages) {
      for (const raw of page.Items ?? []) {
        const entry = readEntryItem(raw);
        // The shred fence: this replica may still hold the stream's keys (cached), but the page
        // reaches past the shred, so nothing of it is served any more.
        if (entry.shredded) throw new StreamShreddedError(stream);
        // A split entry's item gives its size: the page is bounded without reading its chunks.
        const size = entry.split?.bytes ?? entry.payload.byteLength;
        if (entries.length === query.limit || (entries.length > 0 && bytes + size > query.maxBytes)) {
          return { entries: await this.whole(entries, query.signal), more: true };
        }
        bytes += size;
        entries.push(entry);
      }
    }
    return { entries: await this.whole(entries, query.signal), more: false };
  }

  /** The page's entries, each whole: the chunks of the split ones read, all at once. */
  private async whole(entries: EntryItem[], signal?: CallSignal): Promise<StoredEntry[]> {
    const whole = await withPayloads(this.context, entries, signal);
    return whole.map(({ version, recordedAt, payload }) => ({ version, recordedAt, payload }));
  }

  async describe(stream: string): Promise<StreamInfo | undefined> {
    const [head, first, childCount] = await Promise.all([
      this.heads.headItem(stream),
      this.context.call(() =>
        this.context.client.send(
          new GetItemCommand({
            TableName: this.context.tables.events,
            Key: entryKey(stream, 0n),
            ConsistentRead: true,
            ProjectionExpression: '#t',
            ExpressionAttributeNames: { '#t': EntryAttr.recordedAt },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      ),
      this.countChildren(stream),
    ]);
    if (!head) return undefined;
    const createdAt = first.Item ? new Date(Number(bigintOf(first.Item, EntryAttr.recordedAt))) : head.recordedAt;
    return { path: stream, headVersion: entryHead(head), createdAt, childCount, bytesStored: head.bytesThrough };
  }

  async listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]> {
    const [exists, children] = await Promise.all([
      this.heads.exists(stream),
      queryAll(
        this.context,
        {
          TableName: this.context.tables.children,
          KeyConditionExpression: after === undefined ? '#s = :s' : '#s = :s AND #c > :after',
          ExpressionAttributeNames: { '#s': ChildAttr.parent, '#c': ChildAttr.child },
          ExpressionAttributeValues: {
            ':s': { S: stream },
            ...(after === undefined ? {} : { ':after': { S: after } }),
          },
          ProjectionExpression: '#c',
          ConsistentRead: true,
        },
        limit,
      ),
    ]);
    if (!exists) throw new StreamNotFoundError(stream);
    return children.map((item) => item[ChildAttr.child]?.S ?? '');
  }

  private async countChildren(stream: string): Promise<bigint> {
    let count = 0n;
    const pages = queryPages(this.context, {
      TableName: this.context.tables.children,
      KeyConditionExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': ChildAttr.parent },
      ExpressionAttributeValues: { ':s': { S: stream } },
      Select: 'COUNT',
      ConsistentRead: true,
    });
    for await (const page of pages) count += BigInt(page.Count ?? 0);
    return count;
  }
}
