import type { FeedEntry as ApiFeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { MAX_ENTRIES_PER_MESSAGE } from '../codec/encoded-messages';
import type { Codecs } from '../codec/stream-codec';
import { StreamShreddedError } from '../core/errors';
import type { Hub } from '../realtime/hub';
import type { Lifetime } from '../realtime/lifetime';
import type { EventStore, FeedEntry, Position } from '../store/port';
import { FeedDispatcher } from './feed-dispatcher';
import { FeedFilter, type FeedSelection, type StreamReadCheck } from './feed-filter';
import { OpenedFeedEntry, type OutgoingFeedMessage } from './feed-messages';
import { feedSubscription, type FeedCatchUpPage } from './feed-subscription';
import type { Logger } from 'pino';

/** Entries per store read of the feed (the dispatcher's, and each consumer's catch-up). */
const FEED_PAGE = 500;
/** A feed page stops before this many stored bytes (see MAX_PAGE_BYTES in the core). */
const MAX_PAGE_BYTES = 3 * 1024 * 1024;
/** Store pages one ReadFeed call looks through at most for its entries, before it answers. */
const READ_FEED_STORE_PAGES = 10;

export interface FeedOptions {
  store: EventStore;
  codecs: Codecs;
  logger: Logger;
  heartbeatIntervalMs: number;
  bufferEntries: number;
  /**
   * For a store shared with other processes: the hub of Subscribe, which learns of their commits
   * from the feed, and how often the feed is polled (faster while entries come).
   */
  shared?: { hub: Hub; pollIntervalMs: { min: number; max: number } };
}

export interface FeedSubscribeOptions {
  /** After this position; undefined: from now (the feed's head). */
  after: Position | undefined;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  mayRead: StreamReadCheck | undefined;
  /**
   * Up to this many entries per message (SubscribeFeedRequest.max_entries_per_message; unset, 0
   * and 1 alike: one `entry` message each; at most MAX_ENTRIES_PER_MESSAGE).
   */
  maxEntriesPerMessage?: number;
  lifetime: Lifetime;
}

export interface FeedReadPage {
  entries: ApiFeedEntry[];
  /** How far the page read the feed: continue after it. */
  reached: Position;
  more: boolean;
  head: Position;
}

/**
 * The feed: every stream's entries in one order (port.ts, Position). Reads a page of a subtree
 * (ReadFeed) and serves subscriptions (SubscribeFeed) through one dispatcher per process, which
 * the core tells of every local commit.
 */
export class Feed {
  readonly dispatcher: FeedDispatcher;
  private readonly commitListeners = new Set<() => void>();

  constructor(private readonly options: FeedOptions) {
    this.dispatcher = new FeedDispatcher({
      readPage: (after, only) =>
        options.store.readFeed({ after, subtree: { path: '/', descendants: true }, only, limit: FEED_PAGE, maxBytes: MAX_PAGE_BYTES }),
      open: async (entries) => {
        const unreadable = new Map<string, unknown>();
        return { opened: await this.open(entries, unreadable), unreadable };
      },
      head: () => options.store.feedHead(),
      ...(options.shared ? { hub: options.shared.hub, pollIntervalMs: options.shared.pollIntervalMs } : {}),
      logger: options.logger,
    });
  }

  /** Something was committed in this process. */
  committed(): void {
    this.dispatcher.committed();
    for (const listener of this.commitListeners) listener();
  }

  /**
   * Calls `listener` after each commit in this process (the consumer groups' readers); returns
   * how to stop. On a store shared with other processes their commits are not announced: such
   * listeners poll too.
   */
  onCommitted(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  stop(): void {
    this.dispatcher.stop();
  }

  /** A page of the subtree's entries after `after`, filtered; at most `limit` entries. */
  async read(selection: FeedSelection, after: Position, limit: number, mayRead: StreamReadCheck | undefined): Promise<FeedReadPage> {
    const filter = new FeedFilter(selection, mayRead);
    const entries: ApiFeedEntry[] = [];
    let reached = after;
    let more = true;
    const head = () => this.options.store.feedHead();
    for (let pages = 0; pages < READ_FEED_STORE_PAGES && more; pages++) {
      const page = await this.options.store.readFeed({ after: reached, subtree: selection.subtree, limit, maxBytes: MAX_PAGE_BYTES });
      for (const entry of await this.open(page.entries.filter((stored) => filter.wantsStream(stored.stream)))) {
        const apiEntry = entry.apiEntryFor(filter);
        if (!apiEntry) continue;
        entries.push(apiEntry);
        if (entries.length === limit) {
          // The page ends with this entry: the feed is covered up to it, not to the store page's end.
          return { entries, reached: entry.position, more: entry.position < page.reached || page.more, head: await head() };
        }
      }
      reached = page.reached;
      more = page.more;
    }
    return { entries, reached, more, head: await head() };
  }

  /** The messages of a feed subscription: catch-up, `caught_up`, live entries, until `lifetime` ends. */
  subscribe(selection: FeedSelection, options: FeedSubscribeOptions): AsyncIterable<OutgoingFeedMessage> {
    const filter = new FeedFilter(selection, options.mayRead);
    const { store } = this.options;
    return feedSubscription({
      filter,
      after: options.after,
      dispatcher: this.dispatcher,
      readPage: async (after, lifetime): Promise<FeedCatchUpPage> => {
        const page = await store.readFeed({
          after,
          subtree: selection.subtree,
          limit: FEED_PAGE,
          maxBytes: MAX_PAGE_BYTES,
          ...(store.features.abandonedReadsStop ? { signal: lifetime.signal() } : {}),
        });
        const opened = new Map<Position, OpenedFeedEntry>();
        for (const entry of await this.open(page.entries.filter((stored) => filter.wantsStream(stored.stream)))) {
          opened.set(entry.position, entry);
        }
        const entries = page.entries.map(({ position }) => ({ position, message: opened.get(position)?.messageFor(filter) }));
        return { entries, reached: page.reached, more: page.more };
      },
      head: () => store.feedHead(),
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      checkpointEvery: options.checkpointEvery,
      checkpointIntervalMs: options.checkpointIntervalMs,
      bufferEntries: this.options.bufferEntries,
      maxEntriesPerMessage: Math.min(Math.max(1, options.maxEntriesPerMessage ?? 1), MAX_ENTRIES_PER_MESSAGE),
      lifetime: options.lifetime,
    });
  }

  /**
   * Opens stored entries with their streams' keys, in position order. A shredded stream's
   * entries cannot be opened: they are left out (the feed skips them, as documented). Another
   * failure (a key-encryption key missing from the keyring, corrupt data) is thrown, or, with
   * `unreadable`, recorded there per stream and the stream's entries left out.
   */
  private async open(entries: FeedEntry[], unreadable?: Map<string, unknown>): Promise<OpenedFeedEntry[]> {
    const byStream = new Map<string, FeedEntry[]>();
    for (const entry of entries) {
      const list = byStream.get(entry.stream);
      if (list) list.push(entry);
      else byStream.set(entry.stream, [entry]);
    }
    const opened = new Map<FeedEntry, Uint8Array>();
    for (const [stream, all] of byStream) {
      // A shred fence has nothing to open (and the stream's keys are gone).
      const list = all.filter((entry) => entry.shredded !== true);
      if (list.length === 0) continue;
      try {
        const codec = await this.options.codecs.forReading(stream, list.map((entry) => entry.payload));
        for (const entry of list) opened.set(entry, codec.openEntry(entry));
      } catch (error) {
        if (error instanceof StreamShreddedError) continue;
        if (!unreadable) throw error;
        unreadable.set(stream, error);
      }
    }
    const result: OpenedFeedEntry[] = [];
    for (const entry of entries) {
      const bytes = opened.get(entry);
      if (bytes) result.push(new OpenedFeedEntry(entry, bytes));
    }
    return result;
  }
}
