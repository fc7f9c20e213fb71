/**
 * Following the feed: every entry of a subtree (or of every stream) in the one order all readers
 * share, resuming by itself after dropped connections from the last position it delivered.
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import { toClientError } from './errors';
import { Reconnects, type ReconnectInfo } from './reconnects';
import type { FeedEntry, SubscribeFeedRequest, SubscribeFeedResponse } from './gen/eventhorizon/v1/eventhorizon';
import { DEFAULT_MAX_ENTRIES_PER_MESSAGE, IdleWatchdog, type SubscribeOptions } from './subscription';

/** What following the feed yields. */
export type FeedItem =
  | { kind: 'entry'; entry: FeedEntry }
  /**
   * The filters skipped entries up to `position`: store it as your checkpoint (as you would an
   * entry's position), so that a consumer of rare events resumes past what it already looked at.
   */
  | { kind: 'checkpoint'; position: bigint }
  /**
   * Everything stored when the feed (re)connected was delivered; live entries follow. Yielded
   * again after each reconnection.
   */
  | { kind: 'caughtUp'; position: bigint };

/** Options of `follow`. */
export interface FollowOptions extends Omit<SubscribeOptions, 'fromVersion' | 'onReconnect'> {
  /** Deliver entries after this position (default 0: the beginning of the feed). */
  afterPosition?: bigint | number;
  /** Start at the end of the feed: only entries committed from now on. */
  fromNow?: boolean;
  /** Only the subtree's root stream, not its descendants. */
  excludeDescendants?: boolean;
  /** Only events of these types: exact names or "prefix.*". */
  eventTypes?: string[];
  /** Checkpoints while filters skip: after this many skipped entries (server default 1,000). */
  checkpointEveryEntries?: number;
  /** ... and at least this often, in milliseconds (server default 5,000). */
  checkpointIntervalMs?: number;
  /** Told about every reconnection; `fromVersion` there is the position it resumes after. */
  onReconnect?: (info: ReconnectInfo) => void;
  /**
   * Entries the server may send per message (SubscribeFeedRequest.max_entries_per_message); they
   * are yielded one by one all the same. Default 1000, the server's maximum: a catch-up of small
   * entries costs both sides far less in batches. 1 asks for one entry per message.
   */
  maxEntriesPerMessage?: number;
}

/** Opens one SubscribeFeed call; following opens it again to resume. */
export type OpenFeedCall = (request: SubscribeFeedRequest) => ClientReadableStream<SubscribeFeedResponse>;

/**
 * Yields the feed of `subtree` after `afterPosition`, with `checkpoint` and `caughtUp` markers,
 * for as long as the consumer iterates. After UNAVAILABLE, a dropped connection or a silence
 * longer than `idleTimeoutMs` it waits (with backoff) and follows again after the last position
 * it yielded (an entry's, a checkpoint's or caught-up's): the server delivers each entry once in
 * that order, and this side drops any position it has yielded already. Other errors (NOT_FOUND,
 * PERMISSION_DENIED, ...) end the iteration by throwing the typed error.
 */
export async function* follow(open: OpenFeedCall, subtree: string, options: FollowOptions = {}): AsyncGenerator<FeedItem, void, undefined> {
  const { signal } = options;
  const reconnects = new Reconnects(options, `the feed of ${subtree}`);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const maxEntriesPerMessage = options.maxEntriesPerMessage ?? DEFAULT_MAX_ENTRIES_PER_MESSAGE;
  /** The last position yielded; undefined while following "from now" has not told one yet. */
  let position: bigint | undefined = options.fromNow ? undefined : BigInt(options.afterPosition ?? 0);

  while (!signal?.aborted) {
    const call = open({
      selector: { stream: subtree, excludeDescendants: options.excludeDescendants ?? false, eventTypes: options.eventTypes ?? [] },
      afterPosition: position ?? 0n,
      fromNow: position === undefined,
      checkpointEveryEntries: options.checkpointEveryEntries ?? 0,
      checkpointIntervalMs: options.checkpointIntervalMs ?? 0,
      maxEntriesPerMessage,
    });
    call.on('error', () => undefined);
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    const watchdog = new IdleWatchdog(idleTimeoutMs, cancel);
    let failure: unknown;
    try {
      for await (const response of call as AsyncIterable<SubscribeFeedResponse>) {
        watchdog.reset();
        const message = response.message;
        if (!message || message.$case === 'heartbeat') continue;
        reconnects.delivered();
        if (message.$case === 'entry' || message.$case === 'entries') {
          // A batch is yielded entry by entry, each checked as a lone one is.
          const entries = message.$case === 'entry' ? [message.value] : message.value.entries;
          for (const entry of entries) {
            // Delivered before the reconnection.
            if (position !== undefined && entry.position <= position) continue;
            position = entry.position;
            // The consumer's own time is not the server's silence.
            watchdog.stop();
            yield { kind: 'entry', entry };
            watchdog.reset();
          }
          continue;
        }
        const at = message.value.position;
        // Told before the reconnection (a checkpoint at the same position says nothing new).
        if (position !== undefined && (at < position || (at === position && message.$case !== 'caughtUp'))) continue;
        position = at;
        watchdog.stop();
        yield { kind: message.$case, position: at };
        watchdog.reset();
      }
    } catch (error) {
      failure = toClientError(error);
    } finally {
      watchdog.stop();
      signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
    if (signal?.aborted) return;
    await reconnects.after(failure, position ?? 0n, signal);
  }
}
