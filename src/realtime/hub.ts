import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { encodeEntryMessage, type Encoded } from '../codec/encoded-messages';
import type { Lifetime } from './lifetime';

/** A committed entry on its way to subscribers: serialized once for all of them. */
export interface LiveEntry {
  version: bigint;
  message: Encoded;
}

/**
 * A bounded queue of live entries for one subscriber. When the subscriber falls more than
 * `capacity` entries behind, the queue drops everything and marks itself overflowed: the
 * subscriber then reads what it missed from the store. Memory per subscriber stays bounded and
 * no entry is lost, because the store has them all.
 */
export class LiveFeed {
  private queue: LiveEntry[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  /**
   * Set when the subscriber must re-read the store, or stop (`failure`). The one flag the hot
   * path tests: a closed feed is also overflowed, so closing costs delivery nothing.
   */
  overflowed = false;
  /** Why the feed was closed, once it was: the subscription ends with it. */
  private closedWith: Error | undefined;

  constructor(readonly stream: string, private readonly capacity: number) {}

  push(entry: LiveEntry): void {
    if (!this.overflowed) {
      if (this.queue.length - this.head >= this.capacity) {
        this.overflowed = true;
        this.queue = [];
        this.head = 0;
      } else {
        this.queue.push(entry);
      }
    }
    this.wake?.();
  }

  /** The next queued entry, if any. */
  shift(): LiveEntry | undefined {
    if (this.head >= this.queue.length) return undefined;
    const entry = this.queue[this.head];
    this.queue[this.head++] = undefined as unknown as LiveEntry; // let the entry be collected
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return entry;
  }

  /** Entries queued and not yet taken. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  /**
   * Ends the feed with `error`: queued entries are dropped and nothing more is queued. The
   * subscriber finds it where it finds an overflow, and ends with the error.
   */
  close(error: Error): void {
    this.closedWith ??= error;
    this.overflowed = true;
    this.queue = [];
    this.head = 0;
    this.wake?.();
  }

  /**
   * Why the feed was closed, or undefined while it is open. A method rather than a field: the
   * hub closes a feed while its subscriber is suspended, which a narrowed field would hide.
   */
  failure(): Error | undefined {
    return this.closedWith;
  }

  /** Forgets the overflow: the caller has re-read the store and takes live entries again. */
  reset(): void {
    if (this.closedWith) return;
    this.overflowed = false;
    this.queue = [];
    this.head = 0;
  }

  /** Resolves true when something arrives, false after `timeoutMs` or when `lifetime` ends. */
  wait(timeoutMs: number, lifetime: Lifetime): Promise<boolean> {
    if (this.head < this.queue.length || this.overflowed) return Promise.resolve(true);
    if (lifetime.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (arrived: boolean) => {
        clearTimeout(timer);
        stopListening();
        this.wake = undefined;
        resolve(arrived);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const stopListening = lifetime.onEnd(() => done(false));
      this.wake = () => done(true);
    });
  }
}

/** Fans committed entries out to the live feeds of each stream's subscribers. */
export class Hub {
  private readonly feeds = new Map<string, Set<LiveFeed>>();

  register(stream: string, capacity: number): LiveFeed {
    const feed = new LiveFeed(stream, capacity);
    let set = this.feeds.get(stream);
    if (!set) this.feeds.set(stream, (set = new Set()));
    set.add(feed);
    return feed;
  }

  unregister(feed: LiveFeed): void {
    const set = this.feeds.get(feed.stream);
    // A closed feed left the hub already (and the stream's set may be a newer one).
    if (!set || feed.failure()) return;
    set.delete(feed);
    if (set.size === 0) this.feeds.delete(feed.stream);
  }

  /** Delivers a committed entry to the stream's subscribers. Call in version order per stream. */
  publish(stream: string, entry: Entry): void {
    const set = this.feeds.get(stream);
    if (!set) return;
    // Serialized once here rather than by grpc-js once per subscriber.
    const live: LiveEntry = { version: entry.version, message: encodeEntryMessage(entry) };
    for (const feed of set) feed.push(live);
  }

  /**
   * Ends every subscription to the stream open now with `error` (the stream was shredded).
   * Subscriptions registered later are not affected: they read the store, which refuses them.
   */
  close(stream: string, error: Error): void {
    const set = this.feeds.get(stream);
    if (!set) return;
    this.feeds.delete(stream);
    for (const feed of set) feed.close(error);
  }

  /** Streams with at least one live subscriber here. */
  subscribedStreams(): IterableIterator<string> {
    return this.feeds.keys();
  }

  /** The longest backlog of any subscriber: bounded by the feed capacity. */
  largestBacklog(): number {
    let largest = 0;
    for (const set of this.feeds.values()) for (const feed of set) largest = Math.max(largest, feed.backlog);
    return largest;
  }

  subscriberCount(): number {
    let count = 0;
    for (const set of this.feeds.values()) count += set.size;
    return count;
  }
}
