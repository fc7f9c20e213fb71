import type { ClientReadableStream } from '@grpc/grpc-js';
import type {
  Entry,
  EventHorizonClient,
  SubscribeResponse,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { SubscribeRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/** A live Subscribe call that records what arrives, with the local time each entry arrived. */
export interface RecordingSubscriber {
  entries: Array<{ entry: Entry; arrivedAt: number }>;
  /** Resolves once `caught_up` arrived. */
  caughtUp: Promise<void>;
  /** Resolves with the error the call ended with (never when it ends cleanly). */
  failed: Promise<Error>;
  /** Resolves when at least `count` entries arrived; rejects after `timeoutMs`. */
  waitForEntries(count: number, timeoutMs?: number): Promise<void>;
  cancel(): void;
}

/** Subscribes through a real gRPC client and records every entry. */
export function recordSubscription(
  client: EventHorizonClient,
  stream: string,
  fromVersion?: bigint,
): RecordingSubscriber {
  const call: ClientReadableStream<SubscribeResponse> = client.subscribe(
    SubscribeRequest.fromPartial({ stream, ...(fromVersion !== undefined ? { fromVersion } : {}) }),
  );
  const entries: RecordingSubscriber['entries'] = [];
  const waiters = new Set<() => void>();
  let failure: Error | undefined;
  let markCaughtUp: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  let markFailed: (error: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (markFailed = resolve));
  call.on('data', (response: SubscribeResponse) => {
    const message = response.message;
    if (message?.$case === 'entry') entries.push({ entry: message.value, arrivedAt: performance.now() });
    if (message?.$case === 'caughtUp') markCaughtUp();
    for (const wake of waiters) wake();
  });
  call.on('error', (error: Error) => {
    failure = error;
    markFailed(error);
    for (const wake of waiters) wake();
  });
  return {
    entries,
    caughtUp,
    failed,
    waitForEntries(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (entries.length >= count) done(resolve);
          else if (failure && !/cancel/i.test(failure.message)) {
            const error = failure;
            done(() => reject(error));
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`only ${entries.length} of ${count} entries arrived`))),
          timeoutMs,
        );
        const done = (finish: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          finish();
        };
        waiters.add(check);
        check();
      });
    },
    cancel() {
      call.cancel();
    },
  };
}
