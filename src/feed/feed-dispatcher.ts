import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Heartbeats, type LiveFeed } from '../realtime/hub';
import type { FeedPage, Position } from '../store/port';
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
  /** One page of the whole feed after a position (every stream: consumers filter). */
  readPage(after: Position): Promise<FeedPage>;
  /** Opens the entries some consumer wants (decrypts, decompresses); shredded ones are left out. */
  open(entries: FeedPage['entries']): Promise<OpenedFeedEntry[]>;
  head(): Promise<Position>;
  /**
   * How often to look for entries committed by other processes sharing the store; undefined when
   * every commit happens here and is announced with `committed()`.
   */
  pollIntervalMs?: number;
  logger: Logger;
}

/** After a failed read, the next try waits this long. */
const RETRY_MS = 500;

/**
 * The one reader of the feed in this process: it reads what was committed after the position it
 * reached, once for every open feed subscription, opens each entry once, and queues it to each
 * consumer that wants it, in position order. A consumer joins before it reads the store itself,
 * so between its own catch-up and the entries queued to it nothing is missing (it skips what it
 * has already by position).
 *
 * It reads when told of a local commit (`committed`) and, for a store shared with other
 * processes, every `pollIntervalMs`; only while some consumer is open. With none, it forgets its
 * position and starts from the feed's head when the next one joins: nothing waits to be read.
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
  private stopped = false;

  constructor(private readonly options: FeedDispatcherOptions) {}

  /**
   * The position up to which every consumer has been given (queued) what it wants; undefined
   * while no consumer is open.
   */
  get reached(): Position | undefined {
    return this.reached_;
  }

  get consumerCount(): number {
    return this.consumers.size;
  }

  /** Adds a consumer; resolves once the dispatcher knows where it is (the feed's head at worst). */
  async join(consumer: FeedConsumer): Promise<void> {
    this.consumers.add(consumer);
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

  leave(consumer: FeedConsumer): void {
    this.consumers.delete(consumer);
  }

  /** Something was committed here: read it (now, or right after the read in progress). */
  committed(): void {
    if (this.consumers.size === 0 || this.stopped) return;
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

  private schedulePoll(): void {
    const interval = this.options.pollIntervalMs;
    if (interval === undefined || this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.consumers.size === 0) return;
      this.committed();
      this.schedulePoll();
    }, interval);
    this.timer.unref();
  }

  private async read(): Promise<void> {
    this.reading = true;
    try {
      do {
        this.again = false;
        for (;;) {
          if (this.consumers.size === 0) {
            // Nobody to give entries to: forget the position rather than read for nobody.
            this.reached_ = undefined;
            return;
          }
          const after = this.reached_;
          if (after === undefined) return; // a joining consumer is reading the head
          const page = await this.options.readPage(after);
          const wanted = page.entries.filter((entry) => this.someoneWants(entry.stream));
          const opened = wanted.length > 0 ? await this.options.open(wanted) : [];
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
    }
  }

  private someoneWants(stream: string): boolean {
    for (const consumer of this.consumers) if (consumer.filter.wantsStream(stream)) return true;
    return false;
  }

  /**
   * Queues each entry to the consumers that want it. The others count it as skipped, and get a
   * checkpoint after `checkpointEvery` of them, so that their position moves on too.
   */
  private dispatch(scanned: FeedPage['entries'], opened: OpenedFeedEntry[]): void {
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
