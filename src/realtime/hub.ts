import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { encodeEntryMessage, encodeHeartbeatMessage, encodeStoredEntryMessage, type Encoded } from '../codec/encoded-messages';
import type { Lifetime } from './lifetime';

/** A committed entry on its way to subscribers: serialized once for all of them. */
export interface LiveEntry {
  version: bigint;
  message: Encoded;
}

/**
 * A subscriber's call, as the hub writes to it while the subscriber waits idle: live entries
 * then go to the call straight from the hub, with no generator step per subscriber per entry.
 */
export interface CallWriter {
  /** Writes the message; false when the call's buffer is full (wait for `drained` before more). */
  write(message: Encoded): boolean;
  /** A write returned false and the call has not drained since (or the call ended). */
  readonly blocked: boolean;
  /** Resolves when the call can take more, or when it ended. */
  drained(): Promise<void>;
}

/**
 * Pushes to feeds in one turn of the event loop, at most: a burst (an entry to 1,000 subscribers,
 * or a group commit to many streams) leaves the rest to the next turns, after other calls' I/O.
 */
const PUSHES_PER_TURN = 256;

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
  /**
   * While the subscriber waits with a writer (`wait`'s `direct`): the call that entries go to,
   * and the version it expects next. Unset: entries are queued for the subscriber.
   */
  private writer: CallWriter | undefined;
  private writingTimeoutMs = 0;
  /** The version the subscriber expects next, as of its last wait with a writer (see `wait`). */
  expected = 0n;

  constructor(
    readonly stream: string,
    private readonly capacity: number,
    private readonly heartbeats: Heartbeats,
  ) {}

  push(entry: LiveEntry): void {
    const writer = this.writer;
    if (writer) {
      // The subscriber waits idle with nothing queued, and everything it was given was written:
      // the next entry in order goes to its call now; one already delivered is dropped; anything
      // else (a gap) wakes it, below, to read the store.
      if (entry.version < this.expected) return;
      if (entry.version === this.expected) {
        this.expected = entry.version + 1n;
        this.writeDirect(writer, entry.message);
        return;
      }
    }
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
   *
   * With `direct`, entries that arrive in order from `direct.next` on are written to its writer
   * as they come, and so is a heartbeat when the timeout elapses, and the wait goes on (its
   * timeout counted from the last of them); it resolves true when something needs the
   * subscriber (a gap, an overflow, a full call buffer), false when `lifetime` ends. The
   * subscriber reads where it stands from `expected` afterwards. Only for a subscriber whose
   * earlier messages were all written to that call: the order of the call's messages is then
   * the order of the versions.
   */
  wait(timeoutMs: number, lifetime: Lifetime, direct?: { writer: CallWriter; next: bigint }): Promise<boolean> {
    if (direct) this.expected = direct.next;
    if (this.head < this.queue.length || this.overflowed) return Promise.resolve(true);
    if (lifetime.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.waitingFor = lifetime;
      lifetime.listen(this);
      this.heartbeats.add(this, timeoutMs);
      this.wake = this.arrived;
      if (direct && !direct.writer.blocked) {
        this.writer = direct.writer;
        this.writingTimeoutMs = timeoutMs;
      }
    });
  }

  /** The wait in progress ends: `arrived` says whether something did. */
  private finishWait(arrived: boolean): void {
    const resolve = this.waiting;
    if (!resolve) return;
    this.waiting = undefined;
    this.wake = undefined;
    this.writer = undefined;
    this.heartbeats.remove(this);
    this.waitingFor?.unlisten(this);
    this.waitingFor = undefined;
    resolve(arrived);
  }

  /**
   * Writes a message to the call of a subscriber that waits with a writer; the wait goes on. The
   * heartbeat is due an interval after it, as when the subscriber writes.
   */
  private writeDirect(writer: CallWriter, message: Encoded): void {
    this.heartbeats.add(this, this.writingTimeoutMs);
    let accepted: boolean;
    try {
      accepted = writer.write(message);
    } catch (error) {
      // Not the publisher's failure (an entry's append is committed), nor the other
      // subscribers': this subscription ends with it.
      this.close(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    // A full buffer: the subscriber takes over, and waits for the call to drain.
    if (!accepted) this.finishWait(true);
  }

  /** One function per feed, not per wait: what push and close call. */
  private readonly arrived = (): void => this.finishWait(true);

  /**
   * Called by the heartbeat timer once the wait's timeout elapsed, with the heartbeat of this
   * turn. A subscriber waiting with a writer gets it written to its call from here, like a live
   * entry, and keeps waiting: with 10,000 idle subscriptions, waking each subscriber to yield a
   * heartbeat of its own (a generator step, a promise, the message and its serialization) left
   * about 1 KB of garbage per subscription per interval, promoted to the old space by the burst
   * (BENCHMARKS.md, "Memory"). Otherwise the wait ends, and the subscriber sends the heartbeat.
   */
  timedOut(heartbeat: () => Encoded): void {
    const writer = this.writer;
    if (writer && this.waitingFor?.ended === false) this.writeDirect(writer, heartbeat());
    else this.finishWait(false);
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
    // Again for a feed that waits already (a direct write): to the end, to keep deadline order.
    waiting.delete(feed);
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
    // The feeds that write their own heartbeat share one message: the same time, serialized once.
    let heartbeat: Encoded | undefined;
    const message = (): Encoded => (heartbeat ??= encodeHeartbeatMessage(new Date()));
    for (const feed of due) feed.timedOut(message);
  }
}

/** An entry whose pushes were left for a later turn: the feeds it has still to reach. */
interface DeferredDelivery {
  feeds: Iterator<LiveFeed>;
  entry: LiveEntry;
}

/** Fans committed entries out to the live feeds of each stream's subscribers. */
export class Hub {
  private readonly feeds = new Map<string, Set<LiveFeed>>();
  /** The one timer of every idle subscriber's heartbeat. */
  private readonly heartbeats = new Heartbeats();
  /** Entries whose pushes wait for a later turn, oldest first (see deliver). */
  private readonly deferred: DeferredDelivery[] = [];
  private pushedThisTurn = 0;
  private resumeScheduled = false;

  register(stream: string, capacity: number): LiveFeed {
    const feed = new LiveFeed(stream, capacity, this.heartbeats);
    let set = this.feeds.get(stream);
    if (!set) this.feeds.set(stream, (set = new Set()));
    set.add(feed);
    return feed;
  }

  unregister(feed: LiveFeed): void {
    const set = this.feeds.get(feed.stream);
    // A feed closed with its stream left the hub already (and the stream's set may be a newer
    // one); a feed closed alone (its call failed) is still in the set.
    if (!set?.delete(feed)) return;
    if (set.size === 0) this.feeds.delete(feed.stream);
  }

  /** Delivers a committed entry to the stream's subscribers. Call in version order per stream. */
  publish(stream: string, entry: Entry): void {
    const set = this.feeds.get(stream);
    if (!set) return;
    // Serialized once here rather than by grpc-js once per subscriber.
    this.deliver(set, { version: entry.version, message: encodeEntryMessage(entry) });
  }

  /**
   * Delivers an entry committed elsewhere (another replica), as its serialized events: the feed's
   * reader found it. Call in version order per stream; subscribers drop what they have already.
   */
  publishStored(stream: string, version: bigint, recordedAt: Date, serializedEvents: Uint8Array): void {
    const set = this.feeds.get(stream);
    if (!set) return;
    this.deliver(set, { version, message: encodeStoredEntryMessage(version, recordedAt, serializedEvents) });
  }

  /**
   * Pushes the entry to each feed of the set, at most PUSHES_PER_TURN in this turn of the event
   * loop; the rest, and every entry published meanwhile, wait for the next turns, in the order
   * they were published (so each stream's entries still reach each feed in version order). The
   * set is walked live: a feed registered meanwhile gets the entry too (it drops what it has
   * already), one unregistered meanwhile does not.
   */
  private deliver(set: Set<LiveFeed>, entry: LiveEntry): void {
    if (this.deferred.length === 0) {
      if (set.size <= PUSHES_PER_TURN - this.pushedThisTurn) {
        this.countPushes(set.size);
        for (const feed of set) feed.push(entry);
        return;
      }
    }
    this.deferred.push({ feeds: set.values(), entry });
    this.deliverDeferred();
  }

  /** Pushes deferred entries until this turn's pushes are spent; schedules the next turn. */
  private deliverDeferred(): void {
    while (this.deferred.length > 0 && this.pushedThisTurn < PUSHES_PER_TURN) {
      const delivery = this.deferred[0] as DeferredDelivery;
      let pushed = 0;
      for (let next = delivery.feeds.next(); ; next = delivery.feeds.next()) {
        if (next.done) {
          this.deferred.shift();
          break;
        }
        next.value.push(delivery.entry);
        if (++pushed + this.pushedThisTurn >= PUSHES_PER_TURN) break;
      }
      this.countPushes(pushed);
    }
    if (this.deferred.length > 0 && !this.resumeScheduled) {
      this.resumeScheduled = true;
      // After this turn's I/O: other calls' requests and the writes just made go first.
      setImmediate(() => {
        this.resumeScheduled = false;
        this.deliverDeferred();
      });
    }
  }

  /** Counts pushes made in this turn; the count starts again in the next turn. */
  private countPushes(count: number): void {
    if (count === 0) return;
    if (this.pushedThisTurn === 0) setImmediate(this.newTurn);
    this.pushedThisTurn += count;
  }

  private readonly newTurn = (): void => {
    this.pushedThisTurn = 0;
  };

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
