import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { StreamShreddedError } from '../core/errors';
import { Heartbeats, type Hub, type LiveFeed } from '../realtime/hub';
import type { FeedEntry, FeedPage, Position } from '../store/port';
import { checkpointMessage, type OpenedFeedEntry } from './feed-messages';
import type { FeedFilter } from './feed-filter';

/** One open feed subscription, as the dispatcher sees it. */
export interface FeedConsumer {
  readonly filter: FeedFilter;
  /** Its bounded queue: entries (and checkpoints) by position; on overflow it re-reads the store. */
  readonly queue: LiveFeed;
  /** A checkpoint goes into the queue after this many entries were skipped in a row. */
  readonly checkpointEvery: number;
  /** Entries skipped since the last one queued. */
  skipped: number;
}

export interface FeedDispatcherOptions {
  /** One page of the whole feed after a position, with the entries of the streams `only` accepts. */
  readPage(after: Position, only: (stream: string) => boolean): Promise<FeedPage>;
  /**
   * Opens entries (decrypts, decompresses); shredded streams' are left out, and so are those of
   * streams that cannot be read, which come back in `unreadable` with why.
   */
  open(entries: FeedEntry[]): Promise<{ opened: OpenedFeedEntry[]; unreadable: Map<string, unknown> }>;
  head(): Promise<Position>;
  /**
   * For a store shared with other processes: the hub of this process's Subscribe calls, which
   * gets the entries (and shred fences) of its streams from the feed, as other replicas commit
   * them. Without it, every commit happens here and is announced with `committed()`.
   */
  hub?: Hub;
  /** Polling of a shared store: at least this often while entries come, at most this seldom idle. */
  pollIntervalMs?: { min: number; max: number };
  logger: Logger;
}

/** After a failed read, the next try waits this long. */
const RETRY_MS = 500;
/**
 * A shared store's feed is polled at the shortest interval for this long after entries last
 * came: entries come in batches (the indexer's writes), and backing off between two of them
 * made the next one wait up to the longest interval.
 */
const HOT_MS = 5_000;

/**
 * The one reader of the feed in this process: it reads what was committed after the position it
 * reached, once for every open feed subscription, opens each entry once, and queues it to each
 * consumer that wants it, in position order. A consumer joins before it reads the store itself,
 * so between its own catch-up and the entries queued to it nothing is missing (it skips what it
 * has already by position).
 *
 * On a store shared with other replicas it is also how Subscribe learns of their commits: one
 * reader of the feed per process, whatever the number of subscribed streams, rather than a poll
 * per stream. It polls there, faster while entries come; elsewhere it reads when told of a local
 * commit (`committed`). It reads only while someone listens; with nobody, it forgets its
 * position and starts from the feed's head when the next one comes: nothing waits to be read.
 */
export class FeedDispatcher {
  private readonly consumers = new Set<FeedConsumer>();
  /** The one heartbeat timer of every waiting consumer. */
  readonly heartbeats = new Heartbeats();
  private reached_: Position | undefined;
  private starting: Promise<void> | undefined;
  private reading = false;
  /** A commit was announced while reading: read again after. */
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private pollMs: number;
  /** Until when the feed counts as busy (HOT_MS after entries last came). */
  private hotUntil = 0;
  private stopped = false;

  constructor(private readonly options: FeedDispatcherOptions) {
    this.pollMs = options.pollIntervalMs?.min ?? 0;
  }

  /**
   * The position up to which everyone listening has been given (queued) what they want;
   * undefined while nobody listens.
   */
  get reached(): Position | undefined {
    return this.reached_;
  }

  get consumerCount(): number {
    return this.consumers.size;
  }

  /** Adds a consumer; resolves once the dispatcher reads (from the feed's head at worst). */
  async join(consumer: FeedConsumer): Promise<void> {
    this.consumers.add(consumer);
    await this.listen();
  }

  leave(consumer: FeedConsumer): void {
    this.consumers.delete(consumer);
  }

  /**
   * Resolves once the dispatcher reads for the listeners registered so far (a feed consumer, or a
   * subscriber in the hub): whatever the feed holds past `reached` then reaches them.
   */
  async listen(): Promise<void> {
    if (this.reached_ === undefined) {
      this.starting ??= this.options
        .head()
        .then((head) => {
          this.reached_ ??= head;
        })
        .finally(() => (this.starting = undefined));
      await this.starting;
      // Commits announced while the head was being read were not read: read them now.
      this.committed();
    }
    this.schedulePoll();
  }

  /** Something was committed here: read it (now, or right after the read in progress). */
  committed(): void {
    if (!this.listened() || this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.read();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private listened(): boolean {
    return this.consumers.size > 0 || this.options.hub?.hasSubscribers() === true;
  }

  private schedulePoll(): void {
    if (this.options.pollIntervalMs === undefined || this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.listened()) return; // the next listener starts polling again
      this.committed();
      this.schedulePoll();
    }, this.pollMs);
    this.timer.unref();
  }

  private async read(): Promise<void> {
    this.reading = true;
    let found = false;
    try {
      do {
        this.again = false;
        for (;;) {
          if (!this.listened()) {
            // Nobody to give entries to: forget the position rather than read for nobody.
            this.reached_ = undefined;
            return;
          }
          const after = this.reached_;
          if (after === undefined) return; // a listener is reading the head
          const page = await this.options.readPage(after, (stream) => this.someoneWants(stream));
          found ||= page.entries.length > 0;
          const fences = page.entries.filter((entry) => entry.shredded === true);
          const { opened, unreadable } = await this.options.open(page.entries.filter((entry) => entry.shredded !== true));
          this.endUnreadable(unreadable);
          this.publishToHub(opened, fences);
          this.dispatch(page.entries, opened);
          if (page.reached > after) this.reached_ = page.reached;
          if (!page.more) break;
          // A long backlog is read a page per turn of the event loop, not in one go.
          await nextTurn();
        }
      } while (this.again && !this.stopped);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'feed: reading new entries failed; trying again');
      setTimeout(() => this.committed(), RETRY_MS).unref();
    } finally {
      this.reading = false;
      const poll = this.options.pollIntervalMs;
      // Poll again soon while entries come; back off once the feed has been quiet for a while.
      if (found) this.hotUntil = performance.now() + HOT_MS;
      if (poll) {
        this.pollMs = performance.now() < this.hotUntil ? poll.min : Math.min(poll.max, Math.max(poll.min, this.pollMs * 2));
      }
    }
  }

  private someoneWants(stream: string): boolean {
    if (this.options.hub?.isSubscribed(stream) === true) return true;
    for (const consumer of this.consumers) if (consumer.filter.wantsStream(stream)) return true;
    return false;
  }

  /**
   * A stream whose entries cannot be opened here (a key-encryption key missing from this
   * server's keyring, corrupt data) ends the subscriptions that would get them, with the error a
   * read of the stream gives, rather than hold every consumer of the feed back while the reader
   * retries: the others go on without those entries.
   */
  private endUnreadable(unreadable: Map<string, unknown>): void {
    for (const [stream, reason] of unreadable) {
      const error = reason instanceof Error ? reason : new Error(String(reason));
      this.options.logger.warn({ err: error, stream }, 'feed: cannot open the entries of a stream; its subscriptions here end');
      for (const consumer of this.consumers) {
        if (consumer.filter.wantsStream(stream)) consumer.queue.close(error);
      }
      this.options.hub?.close(stream, error);
    }
  }

  /** Entries committed elsewhere, to this process's subscribers of their streams; shreds end them. */
  private publishToHub(opened: OpenedFeedEntry[], fences: FeedEntry[]): void {
    const { hub } = this.options;
    if (!hub) return;
    for (const entry of opened) {
      const { stream, version, recordedAt } = entry.stored;
      hub.publishStored(stream, version, recordedAt, entry.opened);
    }
    for (const fence of fences) {
      if (!hub.isSubscribed(fence.stream)) continue;
      this.options.logger.info({ stream: fence.stream }, 'stream shredded: its subscriptions end');
      hub.close(fence.stream, new StreamShreddedError(fence.stream));
    }
  }

  /**
   * Queues each entry to the consumers that want it. The others count it as skipped, and get a
   * checkpoint after `checkpointEvery` of them, so that their position moves on too.
   */
  private dispatch(scanned: FeedEntry[], opened: OpenedFeedEntry[]): void {
    if (this.consumers.size === 0) return;
    const byPosition = new Map<Position, OpenedFeedEntry>();
    for (const entry of opened) byPosition.set(entry.position, entry);
    for (const consumer of this.consumers) {
      for (const { position, stream } of scanned) {
        const entry = byPosition.get(position);
        const message = entry && consumer.filter.wantsStream(stream) ? entry.messageFor(consumer.filter) : undefined;
        if (message) {
          consumer.queue.push({ version: position, message });
          consumer.skipped = 0;
        } else if (++consumer.skipped >= consumer.checkpointEvery) {
          consumer.queue.push({ version: position, message: checkpointMessage(position) });
          consumer.skipped = 0;
        }
      }
    }
  }
}
