import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { encodeEntryMessage, encodeStoredEntryMessage, type Encoded } from '../codec/encoded-messages';
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
  /** The wait in progress: its resolver, and the lifetime it listens to. */
  private waiting: ((arrived: boolean) => void) | undefined;
  private waitingFor: Lifetime | undefined;
  /**
   * Set when the subscriber must re-read the store, or stop (`failure`). The one flag the hot
   * path tests: a closed feed is also overflowed, so closing costs delivery nothing.
   */
  overflowed = false;
  /** Why the feed was closed, once it was: the subscription ends with it. */
  private closedWith: Error | undefined;

  constructor(
    readonly stream: string,
    private readonly capacity: number,
    private readonly heartbeats: Heartbeats,
  ) {}

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

  /** The next queued entry, if any, left in the queue. */
  peek(): LiveEntry | undefined {
    return this.head < this.queue.length ? this.queue[this.head] : undefined;
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

  /**
   * Resolves true when something arrives, false after `timeoutMs` or when `lifetime` ends. The
   * timeout is kept by the hub's one heartbeat timer, not a timer per waiting feed: with 10,000
   * idle subscriptions those timers were a measured part of their memory (BENCHMARKS.md).
   */
  wait(timeoutMs: number, lifetime: Lifetime): Promise<boolean> {
    if (this.head < this.queue.length || this.overflowed) return Promise.resolve(true);
    if (lifetime.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.waitingFor = lifetime;
      lifetime.listen(this);
      this.heartbeats.add(this, timeoutMs);
      this.wake = this.arrived;
    });
  }

  /** The wait in progress ends: `arrived` says whether something did. */
  private finishWait(arrived: boolean): void {
    const resolve = this.waiting;
    if (!resolve) return;
    this.waiting = undefined;
    this.wake = undefined;
    this.heartbeats.remove(this);
    this.waitingFor?.unlisten(this);
    this.waitingFor = undefined;
    resolve(arrived);
  }

  /** One function per feed, not per wait: what push and close call. */
  private readonly arrived = (): void => this.finishWait(true);

  /** Called by the heartbeat timer once the wait's timeout elapsed. */
  timedOut(): void {
    this.finishWait(false);
  }

  /** Called by the lifetime when it ends during a wait. */
  lifetimeEnded(): void {
    this.finishWait(false);
  }
}

/**
 * The timeouts of waiting feeds, kept by one timer. Feeds wait in sets per interval: a set is in
 * deadline order (a feed is added with now + the set's interval, and re-added at its end), so
 * the timer only looks at the first feeds of each set and is armed for the earliest deadline.
 * A heartbeat is sent `intervalMs` after the wait began, as with a timer per feed (give or take
 * a millisecond of the clock). The clock is monotonic: a wall clock set back would leave a set
 * out of deadline order, and delay the heartbeats behind its first feed.
 */
export class Heartbeats {
  private readonly byInterval = new Map<number, Map<LiveFeed, number>>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires, or Infinity when it is not armed. */
  private armedFor = Infinity;

  add(feed: LiveFeed, intervalMs: number): void {
    let waiting = this.byInterval.get(intervalMs);
    if (!waiting) this.byInterval.set(intervalMs, (waiting = new Map<LiveFeed, number>()));
    const due = performance.now() + intervalMs;
    waiting.set(feed, due);
    if (due < this.armedFor) this.arm(due);
  }

  remove(feed: LiveFeed): void {
    for (const [interval, waiting] of this.byInterval) {
      if (!waiting.delete(feed)) continue;
      if (waiting.size === 0) this.byInterval.delete(interval);
      break;
    }
    // Nothing left to time: no timer keeps the process awake for nothing.
    if (this.byInterval.size === 0) this.disarm();
  }

  private arm(due: number): void {
    clearTimeout(this.timer);
    this.armedFor = due;
    this.timer = setTimeout(() => this.fire(), Math.max(1, due - performance.now()));
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    const due: LiveFeed[] = [];
    let next = Infinity;
    for (const [interval, waiting] of this.byInterval) {
      for (const [feed, at] of waiting) {
        if (at > now) {
          next = Math.min(next, at);
          break;
        }
        waiting.delete(feed);
        due.push(feed);
      }
      if (waiting.size === 0) this.byInterval.delete(interval);
    }
    if (next !== Infinity) this.arm(next);
    // After the bookkeeping: a woken feed may wait again at once (through its subscriber, later).
    for (const feed of due) feed.timedOut();
  }
}

/** Fans committed entries out to the live feeds of each stream's subscribers. */
export class Hub {
  private readonly feeds = new Map<string, Set<LiveFeed>>();
  /** The one timer of every idle subscriber's heartbeat. */
  private readonly heartbeats = new Heartbeats();

  register(stream: string, capacity: number): LiveFeed {
    const feed = new LiveFeed(stream, capacity, this.heartbeats);
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
   * Delivers an entry committed elsewhere (another replica), as its serialized events: the feed's
   * reader found it. Call in version order per stream; subscribers drop what they have already.
   */
  publishStored(stream: string, version: bigint, recordedAt: Date, serializedEvents: Uint8Array): void {
    const set = this.feeds.get(stream);
    if (!set) return;
    const live: LiveEntry = { version, message: encodeStoredEntryMessage(version, recordedAt, serializedEvents) };
    for (const feed of set) feed.push(live);
  }

  /** Whether the stream has a live subscriber here. */
  isSubscribed(stream: string): boolean {
    return this.feeds.has(stream);
  }

  /** Whether any stream has a live subscriber here. */
  hasSubscribers(): boolean {
    return this.feeds.size > 0;
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
