/**
 * The bookkeeping of a consumer group's partition that its dispatch and its position need at
 * every ack (consumer-groups.ts), without scanning: the entries waiting to go out grouped per
 * stream, with the streams whose first entry may go in a heap by that entry's position; and every
 * entry taken and not done, in position order.
 */

/** What these structures need of an entry taken from the feed. */
export interface Waitable {
  entry: { stream: string; position: bigint };
  /** Acked or parked: the partition's position may pass it. */
  done?: boolean;
}

/** A queue over an array: shift is O(1), the array is compacted now and then. */
class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  first(): T | undefined {
    return this.items[this.head];
  }

  push(item: T): void {
    this.items.push(item);
  }

  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** The first `limit` items `accept` accepts, in order. */
  firstOf(limit: number, accept: (item: T) => boolean): T[] {
    const found: T[] = [];
    for (let i = this.head; i < this.items.length && found.length < limit; i++) {
      const item = this.items[i] as T;
      if (accept(item)) found.push(item);
    }
    return found;
  }

  /** Keeps only the items `keep` accepts, in order. */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.slice(this.head).filter(keep);
    this.head = 0;
  }
}

/** A stream's waiting entries in one partition, oldest first. */
class StreamQueue<W> extends Queue<W> {
  /**
   * The key it has in the ready heap (undefined: not there). It may be there under older, larger
   * keys too (a redelivery put back first): those are skipped when they come out.
   */
  key: bigint | undefined;

  constructor(readonly stream: string) {
    super();
  }
}

/** A binary min-heap of stream queues by the position their first entry had when they went in. */
class ReadyHeap<W> {
  private readonly keys: bigint[] = [];
  private readonly queues: Array<StreamQueue<W>> = [];

  get size(): number {
    return this.keys.length;
  }

  push(key: bigint, queue: StreamQueue<W>): void {
    let at = this.keys.length;
    this.keys.push(key);
    this.queues.push(queue);
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if ((this.keys[parent] ?? 0n) <= key) break;
      this.move(parent, at);
      at = parent;
    }
    this.keys[at] = key;
    this.queues[at] = queue;
  }

  /** The smallest key (undefined when empty). */
  peekKey(): bigint | undefined {
    return this.keys[0];
  }

  pop(): StreamQueue<W> | undefined {
    const top = this.queues[0];
    const lastKey = this.keys.pop();
    const lastQueue = this.queues.pop();
    const size = this.keys.length;
    if (size === 0 || lastKey === undefined || lastQueue === undefined) return top;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && (this.keys[right] ?? 0n) < (this.keys[left] ?? 0n) ? right : left;
      if ((this.keys[child] ?? 0n) >= lastKey) break;
      this.move(child, at);
      at = child;
    }
    this.keys[at] = lastKey;
    this.queues[at] = lastQueue;
    return top;
  }

  clear(): void {
    this.keys.length = 0;
    this.queues.length = 0;
  }

  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from] ?? 0n;
    const queue = this.queues[from];
    if (queue) this.queues[to] = queue;
  }
}

/**
 * A partition's entries waiting to go out. `take` gives the oldest first entry of a stream with
 * nothing in flight, as a scan of all waiting entries in position order skipping busy streams
 * would, in O(log streams): a stream whose entry goes out leaves the heap, and comes back only
 * when `wake` says its stream is free again (acked, expired, parked), with its next entry. A
 * stream whose entry is in flight may be in the heap too (entries read meanwhile); `take` drops it
 * when it comes out busy, and `wake` puts it back.
 */
export class WaitingEntries<W extends Waitable> {
  private readonly streams = new Map<string, StreamQueue<W>>();
  private readonly ready = new ReadyHeap<W>();
  /** Entries waiting. */
  length = 0;

  /** An entry read from the feed: after every entry of its stream taken before. */
  push(work: W): void {
    const queue = this.queueOf(work.entry.stream);
    queue.push(work);
    this.length++;
    this.offer(queue);
  }

  /** An entry back from a member (ack wait over): first of its stream again, before its later entries. */
  putBack(work: W): void {
    const queue = this.queueOf(work.entry.stream);
    queue.unshift(work);
    this.length++;
    this.offer(queue);
  }

  /** The stream has nothing in flight any more: its first waiting entry may go. */
  wake(stream: string): void {
    const queue = this.streams.get(stream);
    if (queue) this.offer(queue);
  }

  /**
   * Takes the waiting entry of lowest position among the first entries of streams that `busy`
   * does not name (the caller then makes its stream busy, or wakes it when the entry does not go).
   */
  take(busy: (stream: string) => boolean): W | undefined {
    for (;;) {
      const key = this.ready.peekKey();
      const queue = this.ready.pop();
      if (!queue) return undefined;
      if (queue.key !== key) continue; // left behind by a smaller key
      queue.key = undefined;
      // Busy (an entry from before a reset still in flight): back when woken.
      if (queue.size === 0 || busy(queue.stream)) continue;
      const work = queue.shift();
      if (queue.size === 0) this.streams.delete(queue.stream);
      this.length--;
      return work;
    }
  }

  clear(): void {
    this.streams.clear();
    this.ready.clear();
    this.length = 0;
  }

  private queueOf(stream: string): StreamQueue<W> {
    let queue = this.streams.get(stream);
    if (!queue) {
      queue = new StreamQueue<W>(stream);
      this.streams.set(stream, queue);
    }
    return queue;
  }

  /** Puts the stream in the ready heap under its first entry's position, unless it is there already under that or less. */
  private offer(queue: StreamQueue<W>): void {
    const first = queue.first();
    if (!first || (queue.key !== undefined && queue.key <= first.entry.position)) return;
    queue.key = first.entry.position;
    this.ready.push(first.entry.position, queue);
  }
}

/**
 * Every entry of a partition taken from the feed and not done yet (waiting or in flight), in
 * position order: the reader takes them in that order, so the oldest not done is the first one
 * once those done are dropped from the front. Done entries behind it are dropped when they are
 * most of the queue, so that a stuck entry does not keep everything after it.
 */
export class PendingEntries<W extends Waitable> {
  private readonly queue = new Queue<W>();
  /** Done entries still in the queue. */
  private doneInQueue = 0;

  /** An entry taken from the feed (after every entry taken before). */
  push(work: W): void {
    this.queue.push(work);
  }

  /** An entry is done (acked or parked). */
  finish(work: W): void {
    if (work.done) return;
    work.done = true;
    this.doneInQueue++;
    if (this.doneInQueue >= 1024 && this.doneInQueue * 2 >= this.queue.size) {
      this.queue.retain((w) => !w.done);
      this.doneInQueue = 0;
    }
  }

  /** The oldest entry not done. */
  oldest(): W | undefined {
    for (;;) {
      const first = this.queue.first();
      if (!first?.done) return first;
      this.queue.shift();
      this.doneInQueue--;
    }
  }

  /** The oldest `limit` entries not done, in position order. */
  notDone(limit: number): W[] {
    return this.queue.firstOf(limit, (w) => !w.done);
  }

  /** Keeps only the entries `keep` accepts (those still in flight, when the waiting ones are dropped). */
  retain(keep: (work: W) => boolean): void {
    this.queue.retain((w) => !w.done && keep(w));
    this.doneInQueue = 0;
  }
}
