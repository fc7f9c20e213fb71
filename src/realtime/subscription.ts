import { EntryBatcher, type OutgoingSubscribeMessage } from '../codec/encoded-messages';
import type { CallWriter, Hub, LiveEntry } from './hub';
import type { Lifetime } from './lifetime';

/**
 * Reads stored entries from `fromVersion` on, a page at a time, as serialized messages. A read
 * that can hang (the network) should stop when `lifetime` ends: the subscription waits for it.
 */
export type PageReader = (fromVersion: bigint, lifetime: Lifetime) => Promise<{ entries: LiveEntry[]; more: boolean }>;

export interface SubscriptionOptions {
  stream: string;
  fromVersion: bigint;
  hub: Hub;
  readPage: PageReader;
  heartbeatIntervalMs: number;
  bufferEntries: number;
  /**
   * Up to this many entries per message (SubscribeRequest.max_entries_per_message, within
   * MAX_ENTRIES_PER_MESSAGE): entries ready together leave in one `entries` message. 1 (the
   * default): one `entry` message each.
   */
  maxEntriesPerMessage?: number;
  /** Ends on client cancel, deadline or server shutdown. */
  lifetime: Lifetime;
  /**
   * The call this subscription's messages are written to, by whoever consumes the generator,
   * each before it asks for the next. Given, live entries that arrive while the subscription
   * waits idle are written to it by the hub directly, instead of through a generator step each
   * (with 1,000 subscribers of a stream, that step was most of an entry's cost).
   */
  writer?: CallWriter;
  /**
   * Resolves once entries committed elsewhere reach the hub (the feed's reader is reading): run
   * after the subscriber is registered and before the store is read, so nothing falls between.
   */
  ready?: () => Promise<void>;
}

/**
 * One subscription: stored entries from `fromVersion` up to the head, then `caught_up`, then
 * live entries, as an async generator (the consumer pulls, so back-pressure is natural).
 *
 * No gap and no duplicate: the live feed is registered before the store is read, so every entry
 * committed after that read is also in the feed; the feed is de-duplicated against the next
 * expected version, and anything missing (after an overflow, or a gap) is read from the store.
 *
 * Batches (`maxEntriesPerMessage` > 1) change how entries are framed, not which: a batch holds
 * entries of one store page, or live entries queued together, each taken in the same order and
 * with the same checks as when they leave one by one, and a batch is sent before anything else.
 *
 * The hub may close the feed with an error (the stream was shredded): the subscription then
 * throws it, from the live loop or right after the catch-up.
 *
 * With a `writer`, live entries that arrive while the subscription waits idle go to the call
 * from the hub (LiveFeed.wait): the same entries, in the same order, with the same checks (in
 * order from the next expected version; a gap or an overflow wakes the subscription to read the
 * store), and a full call buffer hands back to the subscription, which waits for it to drain.
 */
export async function* subscription(options: SubscriptionOptions): AsyncGenerator<OutgoingSubscribeMessage> {
  const { hub, lifetime } = options;
  const feed = hub.register(options.stream, options.bufferEntries);
  const batch = new EntryBatcher(options.maxEntriesPerMessage ?? 1);
  let next = options.fromVersion;

  /** Delivers stored entries from `next` until the store has no more. */
  async function* catchUp(): AsyncGenerator<OutgoingSubscribeMessage> {
    for (;;) {
      let page: Awaited<ReturnType<PageReader>>;
      try {
        page = await options.readPage(next, lifetime);
      } catch (error) {
        // A read stopped because the subscription ended (CallAbandonedError, or anything a
        // stopped read throws) is the end, not a failure to report.
        if (lifetime.ended) return;
        throw error;
      }
      for (const entry of page.entries) {
        if (lifetime.ended) return;
        if (entry.version < next) continue;
        if (!batch.fits(entry.message)) yield batch.take() as OutgoingSubscribeMessage;
        next = entry.version + 1n;
        batch.add(entry.message);
      }
      // A page's last batch leaves before the next read: delivery never waits for the store.
      const last = batch.take();
      if (last) yield last;
      if (!page.more || page.entries.length === 0) return;
    }
  }

  try {
    await options.ready?.();
    yield* catchUp();
    if (lifetime.ended) return;
    const closedDuringCatchUp = feed.failure();
    if (closedDuringCatchUp) throw closedDuringCatchUp;
    // The position, not "-1 when nothing was delivered": from_version - 1 then, so that resuming
    // from version + 1 is right either way (the proto's CaughtUp).
    yield { message: { $case: 'caughtUp', value: { version: next - 1n } } };

    while (!lifetime.ended) {
      if (feed.overflowed) {
        // Closed by the hub: the stream was shredded.
        const closed = feed.failure();
        if (closed) throw closed;
        feed.reset();
        yield* catchUp();
        continue;
      }
      const entry = feed.shift();
      if (!entry) {
        const { writer } = options;
        if (writer?.blocked) {
          // The hub filled the call's buffer: nothing more until the client has read.
          await writer.drained();
          continue;
        }
        // Everything yielded so far was written (the consumer writes each message before it
        // asks for the next), so the hub may write what comes next, from `next` on.
        const arrived = await feed.wait(options.heartbeatIntervalMs, lifetime, writer ? { writer, next } : undefined);
        if (writer) next = feed.expected;
        if (!arrived && !lifetime.ended) yield { message: { $case: 'heartbeat', value: { time: new Date() } } };
        continue;
      }
      if (entry.version < next) continue; // already delivered from the store
      if (entry.version > next) {
        // Something between was not in the feed: the store has it.
        yield* catchUp();
        if (entry.version !== next) continue;
      }
      next = entry.version + 1n;
      batch.add(entry.message);
      // The entries queued right behind it, while they follow on without a gap: anything else
      // (a duplicate, a gap, an overflow) is left to the checks above.
      for (let queued = feed.peek(); queued?.version === next && batch.fits(queued.message); queued = feed.peek()) {
        feed.shift();
        next = queued.version + 1n;
        batch.add(queued.message);
      }
      yield batch.take() as OutgoingSubscribeMessage;
    }
  } finally {
    hub.unregister(feed);
  }
}
