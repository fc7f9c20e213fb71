/**
 * A subscription that survives dropped connections and server restarts: it resumes from the
 * version after the last one it delivered, so the consumer sees every entry exactly once.
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { BackoffOptions } from './backoff';
import { toClientError } from './errors';
import { Reconnects, type ReconnectInfo } from './reconnects';
import type { Entry, SubscribeRequest, SubscribeResponse } from './gen/eventhorizon/v1/eventhorizon';

/** What a subscription yields: entries in version order, and the moments it caught up. */
export type SubscriptionItem =
  | { kind: 'entry'; entry: Entry }
  /**
   * Every entry stored when the subscription (re)connected has been delivered; live entries
   * follow. `version` is the last version delivered so far (`fromVersion` - 1 when none): the
   * next entry is `version` + 1. Yielded again after each reconnection, once the subscription
   * has caught up again.
   */
  | { kind: 'caughtUp'; version: bigint };

export type { ReconnectInfo } from './reconnects';

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** First version to deliver (default 0, the beginning of the stream). */
  fromVersion?: bigint | number;
  /** Delays between reconnection attempts. */
  backoff?: BackoffOptions;
  /** Consecutive failed reconnections after which the error is thrown (default: no limit). */
  maxReconnects?: number;
  /**
   * Reconnect when nothing (not even a heartbeat) arrived for this long, in milliseconds: the
   * server sends heartbeats while idle, so silence means a half-open connection. Default 60 000,
   * four of the server's default 15 s heartbeat intervals; 0 turns it off.
   */
  idleTimeoutMs?: number;
  /** Ends the subscription: the iteration finishes without an error. */
  signal?: AbortSignal;
  /** Told about every reconnection, e.g. to log it. */
  onReconnect?: (info: ReconnectInfo) => void;
  /**
   * Entries the server may send per message (SubscribeRequest.max_entries_per_message); they are
   * yielded one by one all the same. Default 1000, the server's maximum: a catch-up of small
   * entries costs both sides far less in batches. 1 asks for one entry per message.
   */
  maxEntriesPerMessage?: number;
}

/** The default of `maxEntriesPerMessage`. */
export const DEFAULT_MAX_ENTRIES_PER_MESSAGE = 1000;

/** Opens one Subscribe call; the subscription calls it again to resume. */
export type OpenSubscribeCall = (request: SubscribeRequest) => ClientReadableStream<SubscribeResponse>;

/**
 * Yields the entries of `stream` from `fromVersion` on, and `caughtUp` markers, for as long as
 * the consumer iterates. After UNAVAILABLE, a dropped connection, a stream the server closed or
 * a silence longer than `idleTimeoutMs`, it waits (with backoff) and subscribes again from the
 * last delivered version + 1; the server guarantees that such a resumption neither skips nor
 * repeats an entry, and this side drops any entry it has already delivered as a second line of
 * defence. Other errors (NOT_FOUND,
 * INVALID_ARGUMENT, ...) end the iteration by throwing the typed error.
 */
export async function* resumableSubscription(
  open: OpenSubscribeCall,
  stream: string,
  options: SubscribeOptions = {},
): AsyncGenerator<SubscriptionItem, void, undefined> {
  const { signal } = options;
  const reconnects = new Reconnects(options, `subscription to ${stream}`);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const maxEntriesPerMessage = options.maxEntriesPerMessage ?? DEFAULT_MAX_ENTRIES_PER_MESSAGE;
  let next = BigInt(options.fromVersion ?? 0);

  while (!signal?.aborted) {
    const call = open({ stream, fromVersion: next, maxEntriesPerMessage });
    // Errors reach us through the iterator; this keeps a late one (after cancel) from being an
    // unhandled 'error' event that would crash the process.
    call.on('error', () => undefined);
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    const watchdog = new IdleWatchdog(idleTimeoutMs, cancel);
    let failure: unknown;
    try {
      for await (const response of call as AsyncIterable<SubscribeResponse>) {
        watchdog.reset();
        const message = response.message;
        if (!message) continue;
        reconnects.delivered();
        if (message.$case === 'entry' || message.$case === 'entries') {
          // A batch is yielded entry by entry, each checked as a lone one is.
          const entries = message.$case === 'entry' ? [message.value] : message.value.entries;
          for (const entry of entries) {
            if (entry.version < next) continue; // delivered before the reconnection
            if (entry.version > next) {
              throw new Error(`subscription to ${stream} skipped from version ${next} to ${entry.version}`);
            }
            next = entry.version + 1n;
            // The consumer's own time is not the server's silence.
            watchdog.stop();
            yield { kind: 'entry', entry };
            watchdog.reset();
          }
        } else if (message.$case === 'caughtUp') {
          watchdog.stop();
          yield { kind: 'caughtUp', version: message.value.version };
          watchdog.reset();
        }
        // Heartbeats only keep the connection warm.
      }
    } catch (error) {
      failure = toClientError(error);
    } finally {
      watchdog.stop();
      signal?.removeEventListener('abort', cancel);
      // Ends the call when the consumer stopped iterating early; a no-op once it has ended.
      call.cancel();
    }
    if (signal?.aborted) return;
    await reconnects.after(failure, next, signal);
  }
}

/** Calls `onIdle` when `reset` was not called for `timeoutMs` (0: never). */
export class IdleWatchdog {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {
    this.reset();
  }

  reset(): void {
    if (this.timeoutMs <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onIdle, this.timeoutMs);
    // A quiet subscription alone should not keep the process alive.
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

export { isResumable } from './reconnects';
