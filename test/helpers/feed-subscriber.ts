import type { ClientReadableStream, Metadata } from '@grpc/grpc-js';
import {
  SubscribeFeedRequest,
  type DeepPartial,
  type EventHorizonClient,
  type FeedEntry,
  type SubscribeFeedResponse,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/** A live SubscribeFeed call that records every message. */
export interface RecordingFeed {
  /** The entries, those of `entries` batches one by one. */
  entries: FeedEntry[];
  /** Every message in order, by kind: what a consumer sees. */
  messages: SubscribeFeedResponse['message'][];
  /** The caught-up position, once it arrived. */
  caughtUp: Promise<bigint>;
  /** Resolves with the error the call ended with. */
  failed: Promise<Error>;
  /** Resolves once `predicate` holds for what arrived; rejects after `timeoutMs` or on an error. */
  until(predicate: (feed: RecordingFeed) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Stops reading (as a slow consumer would), and starts again. */
  pause(): void;
  resume(): void;
  cancel(): void;
}

/** Subscribes to the feed through a real gRPC client and records what arrives. */
export function recordFeed(client: EventHorizonClient, request: DeepPartial<SubscribeFeedRequest>, metadata?: Metadata): RecordingFeed {
  const full = SubscribeFeedRequest.fromPartial(request);
  const call: ClientReadableStream<SubscribeFeedResponse> = metadata ? client.subscribeFeed(full, metadata) : client.subscribeFeed(full);
  const waiters = new Set<() => void>();
  let failure: Error | undefined;
  let markCaughtUp: (position: bigint) => void = () => undefined;
  let markFailed: (error: Error) => void = () => undefined;
  const feed: RecordingFeed = {
    entries: [],
    messages: [],
    caughtUp: new Promise<bigint>((resolve) => (markCaughtUp = resolve)),
    failed: new Promise<Error>((resolve) => (markFailed = resolve)),
    until(predicate, what, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(feed)) done(resolve);
          else if (failure) {
            const error = failure;
            done(() => reject(error));
          }
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${what}: ${feed.entries.length} entries`))), timeoutMs);
        const done = (finish: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          finish();
        };
        waiters.add(check);
        check();
      });
    },
    pause: () => call.pause(),
    resume: () => call.resume(),
    cancel: () => call.cancel(),
  };
  call.on('data', (response: SubscribeFeedResponse) => {
    const message = response.message;
    feed.messages.push(message);
    if (message?.$case === 'entry') feed.entries.push(message.value);
    if (message?.$case === 'entries') feed.entries.push(...message.value.entries);
    if (message?.$case === 'caughtUp') markCaughtUp(message.value.position);
    for (const wake of waiters) wake();
  });
  call.on('error', (error: Error) => {
    failure = error;
    markFailed(error);
    for (const wake of waiters) wake();
  });
  return feed;
}
