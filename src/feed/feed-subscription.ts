import { EntryBatcher, type Encoded } from '../codec/encoded-messages';
import { LiveFeed } from '../realtime/hub';
import type { Lifetime } from '../realtime/lifetime';
import type { Position } from '../store/port';
import type { FeedConsumer, FeedDispatcher } from './feed-dispatcher';
import type { FeedFilter } from './feed-filter';
import { checkpointMessage, FEED_RESPONSE_ENTRIES, isEntryMessage, type OutgoingFeedMessage } from './feed-messages';

/**
 * One page of a consumer's own catch-up: each entry of its subtree that was read, with its
 * message, or none when the filters skip it (event types, the key's policy, a shredded stream),
 * and how far the feed was read.
 */
export interface FeedCatchUpPage {
  entries: Array<{ position: Position; message: Encoded | undefined }>;
  reached: Position;
  more: boolean;
}

export interface FeedSubscriptionOptions {
  filter: FeedFilter;
  /** Deliver entries after this position; undefined: from the feed's head (now). */
  after: Position | undefined;
  dispatcher: FeedDispatcher;
  /** The consumer's catch-up: a page of its subtree after a position, filtered. */
  readPage(after: Position, lifetime: Lifetime): Promise<FeedCatchUpPage>;
  head(): Promise<Position>;
  heartbeatIntervalMs: number;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  bufferEntries: number;
  /**
   * Up to this many entries per message (SubscribeFeedRequest.max_entries_per_message, within
   * MAX_ENTRIES_PER_MESSAGE): entries ready together leave in one `entries` message. 1 (the
   * default): one `entry` message each.
   */
  maxEntriesPerMessage?: number;
  lifetime: Lifetime;
}

/**
 * One feed subscription: the stored entries after a position, then `caught_up`, then live ones,
 * as SubscribeFeed messages (see subscription.ts, the same shape for one stream).
 *
 * No gap and no duplicate: the consumer joins the dispatcher before reading the store, so every
 * entry past what its own reads found is queued to it; `covered` (how far the feed was handled:
 * delivered, or skipped by the filters) drops what was handled already. After an overflow of its
 * queue it reads the store again from `covered`.
 *
 * Checkpoints: while the filters skip entries, the consumer is told how far it got, after
 * `checkpointEvery` skipped entries or `checkpointIntervalMs`, whichever comes first.
 *
 * Batches (`maxEntriesPerMessage` > 1) change how entries are framed, not which: a batch holds
 * entries of one store page, or live entries queued together, in position order, each taken with
 * the same checks as when it leaves alone. A batch leaves before anything else is sent (a
 * checkpoint, caught_up, a heartbeat) and before the subscription waits (for the store or for
 * live entries), so it never spans a checkpoint and never holds an entry back.
 */
export async function* feedSubscription(options: FeedSubscriptionOptions): AsyncGenerator<OutgoingFeedMessage> {
  const { dispatcher, lifetime, filter } = options;
  const consumer: FeedConsumer = {
    filter,
    queue: new LiveFeed('feed', options.bufferEntries, dispatcher.heartbeats),
    checkpointEvery: options.checkpointEvery,
    skipped: 0,
  };
  const batch = new EntryBatcher(options.maxEntriesPerMessage ?? 1, FEED_RESPONSE_ENTRIES);
  try {
    await dispatcher.join(consumer);
    let covered = options.after ?? (await options.head());
    /**
     * The last position the client was told of (an entry, a checkpoint, caught-up). An entry in
     * the batch counts as told: the batch leaves before anything else, and before any wait.
     */
    let told = covered;
    let skipped = 0;
    let lastMessageAt = performance.now();
    const checkpointDue = () =>
      covered > told && (skipped >= options.checkpointEvery || performance.now() - lastMessageAt >= options.checkpointIntervalMs);
    const tell = (message: Encoded | OutgoingFeedMessage): OutgoingFeedMessage => {
      told = covered;
      skipped = 0;
      lastMessageAt = performance.now();
      return message;
    };
    /** The entry at `covered` joins the batch, as told; answers the full batch to send first, if any. */
    const add = (message: Encoded): OutgoingFeedMessage | undefined => {
      const full = batch.fits(message) ? undefined : batch.take();
      tell(message);
      batch.add(message);
      return full;
    };

    /** Delivers stored entries after `covered` until the store has no more. */
    async function* catchUp(): AsyncGenerator<OutgoingFeedMessage> {
      for (;;) {
        let page: FeedCatchUpPage;
        try {
          page = await options.readPage(covered, lifetime);
        } catch (error) {
          if (lifetime.ended) return;
          throw error;
        }
        for (const entry of page.entries) {
          if (lifetime.ended) return;
          if (entry.position <= covered) continue;
          covered = entry.position;
          if (entry.message) {
            const full = add(entry.message);
            if (full) yield full;
          } else {
            skipped++;
            if (checkpointDue()) {
              const pending = batch.take();
              if (pending) yield pending;
              yield tell(checkpointMessage(covered));
            }
          }
        }
        // A page's last batch leaves before the next read: delivery never waits for the store.
        const last = batch.take();
        if (last) yield last;
        if (page.reached > covered) covered = page.reached;
        if (checkpointDue()) yield tell(checkpointMessage(covered));
        if (!page.more) return;
      }
    }

    yield* catchUp();
    if (lifetime.ended) return;
    yield tell(checkpointMessage(covered, true));

    const waitMs = Math.min(options.heartbeatIntervalMs, options.checkpointIntervalMs);
    while (!lifetime.ended) {
      const { queue } = consumer;
      if (queue.overflowed) {
        const closed = queue.failure();
        if (closed) throw closed;
        queue.reset();
        yield* catchUp();
        continue;
      }
      const item = queue.shift();
      if (!item) {
        const arrived = await queue.wait(waitMs, lifetime);
        if (arrived || lifetime.ended) continue;
        // Idle: the queue is empty, so everything up to what the dispatcher reached was handled.
        const reached = dispatcher.reached;
        if (reached !== undefined && reached > covered) covered = reached;
        if (covered > told && performance.now() - lastMessageAt >= options.checkpointIntervalMs) {
          yield tell(checkpointMessage(covered));
        } else if (performance.now() - lastMessageAt >= options.heartbeatIntervalMs) {
          // Says nothing of the position: only the time of the last message moves.
          lastMessageAt = performance.now();
          yield { message: { $case: 'heartbeat', value: { time: new Date() } } };
        }
        continue;
      }
      if (item.version <= covered) continue; // handled already (from the store)
      covered = item.version;
      if (!isEntryMessage(item.message)) {
        yield tell(item.message); // a checkpoint: never in a batch
        continue;
      }
      add(item.message);
      // The entries queued right behind it, while they follow on: a checkpoint, an entry handled
      // already or an overflow is left to the checks above.
      for (let queued = queue.peek(); queued && !queue.overflowed; queued = queue.peek()) {
        if (queued.version <= covered || !isEntryMessage(queued.message) || !batch.fits(queued.message)) break;
        queue.shift();
        covered = queued.version;
        add(queued.message);
      }
      yield batch.take() as OutgoingFeedMessage;
    }
  } finally {
    dispatcher.leave(consumer);
  }
}
