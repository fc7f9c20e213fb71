import * as grpc from '@grpc/grpc-js';
import {
  EventHorizonService,
  SubscribeFeedResponse,
  SubscribeResponse,
  type AppendRequest,
  type AppendResponse,
  type Entry,
  type FeedEntry,
  type SubscribeFeedRequest,
  type SubscribeRequest,
} from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { BATCH_BYTES, MAX_ENTRIES_PER_MESSAGE } from '../src/codec/encoded-messages';
import { OrderEvents } from './events';

/**
 * The ceiling: a grpc-js server with the same service definition and options as Event Horizon,
 * whose Append does nothing and whose Subscribe streams a prepared entry over and over, one per
 * message or, when the request sets max_entries_per_message, in batches. Whatever
 * Event Horizon does beyond this (validation, storage, compression, fan-out) is our cost.
 *
 * Subscribe streams are named `/baseline/<events per entry>/<entries>`. SubscribeFeed does the
 * same with a prepared feed entry (its stream and position set) for a selector of that name.
 */

const [address] = process.argv.slice(2);
if (!address) throw new Error('usage: baseline-server host:port');

/**
 * Appends answered with OK that carried a stream and events. h2load counts any HTTP 200 as a
 * success, gRPC errors included: the bench asks for this count (IPC) to check that the calls it
 * counted were real appends the handler saw, not errors.
 */
let appendsAnswered = 0;

function emptyAppend(
  call: grpc.ServerUnaryCall<AppendRequest, AppendResponse>,
  callback: grpc.sendUnaryData<AppendResponse>,
): void {
  if (call.request.stream !== '' && call.request.events.length > 0) appendsAnswered++;
  callback(null, { cursor: { stream: call.request.stream, version: 1n }, deduplicated: false });
}

/** The same entries Event Horizon serves: typical events with server-assigned ids. */
function preparedEntry(eventsPerEntry: number): Entry {
  const events = new OrderEvents(7);
  return {
    version: 0n,
    events: Array.from({ length: eventsPerEntry }, () => ({ ...events.nextEvent(), id: crypto.randomUUID() })),
    recordedAt: new Date(),
  };
}

/** What the baseline's Subscribe writes: a message for grpc-js to serialize, or bytes serialized once. */
type Outgoing = SubscribeResponse | Buffer;

/**
 * The entries of a batch message for a client that asked for `maxEntriesPerMessage`, bounded as
 * Event Horizon bounds its batches: at most MAX_ENTRIES_PER_MESSAGE entries and BATCH_BYTES of them.
 */
function batchSize(entry: Entry, maxEntriesPerMessage: number): number {
  const entryBytes = SubscribeResponse.encode({ message: { $case: 'entry', value: entry } }).finish().byteLength;
  return Math.max(1, Math.min(maxEntriesPerMessage, MAX_ENTRIES_PER_MESSAGE, Math.floor(BATCH_BYTES / entryBytes)));
}

/** `count` copies of the entry (versions from `first`) in one `entries` message, serialized. */
function batchMessage(entry: Entry, first: number, count: number): Buffer {
  const entries = Array.from({ length: count }, (_, i) => ({ ...entry, version: BigInt(first + i) }));
  return Buffer.from(SubscribeResponse.encode({ message: { $case: 'entries', value: { entries } } }).finish());
}

/** Writes with flow control; `cancelled()` says whether the client went. */
function writer<T>(call: grpc.ServerWritableStream<unknown, T>) {
  let cancelled = false;
  let wake: (() => void) | undefined;
  call.on('cancelled', () => {
    cancelled = true;
    wake?.();
  });
  return {
    cancelled: () => cancelled,
    async send(message: T): Promise<void> {
      if (!call.write(message)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          call.once('drain', resolve);
        });
      }
    },
  };
}

async function trivialStream(call: grpc.ServerWritableStream<SubscribeRequest, Outgoing>): Promise<void> {
  const [, , perEntry, count] = call.request.stream.split('/');
  const entry = preparedEntry(Number(perEntry ?? 1));
  const entries = Number(count ?? 0);
  const out = writer(call);
  const send = (message: Outgoing) => out.send(message);
  const asked = call.request.maxEntriesPerMessage ?? 0;
  if (asked > 1) {
    // Batches, serialized once and written again and again (the versions repeat: the client
    // counts entries, it does not check them), as the single entry is encoded once per write.
    const size = batchSize(entry, asked);
    const full = batchMessage(entry, 0, size);
    for (let sent = 0; sent < entries && !out.cancelled(); sent += size) {
      await send(entries - sent >= size ? full : batchMessage(entry, sent, entries - sent));
    }
  } else {
    for (let version = 0; version < entries && !out.cancelled(); version++) {
      entry.version = BigInt(version);
      await send({ message: { $case: 'entry', value: entry } });
    }
  }
  if (!out.cancelled()) {
    call.write({ message: { $case: 'caughtUp', value: { version: BigInt(entries - 1) } } });
    call.end();
  }
}

/** What the baseline's SubscribeFeed writes: a message for grpc-js to serialize, or bytes serialized once. */
type OutgoingFeed = SubscribeFeedResponse | Buffer;

/** `count` copies of the feed entry (positions from `first`) in one `entries` message, serialized. */
function feedBatchMessage(entry: FeedEntry, first: number, count: number): Buffer {
  const entries = Array.from({ length: count }, (_, i) => ({ ...entry, position: BigInt(first + i) }));
  return Buffer.from(SubscribeFeedResponse.encode({ message: { $case: 'entries', value: { entries } } }).finish());
}

/**
 * SubscribeFeed's ceiling: a prepared feed entry, `/baseline/<events per entry>/<entries>` times,
 * one per `entry` message (serialized by grpc-js for each write, as Subscribe's) or, when the
 * request sets max_entries_per_message, in `entries` batches bounded as Event Horizon bounds
 * them, serialized once; then caught_up.
 */
async function trivialFeed(call: grpc.ServerWritableStream<SubscribeFeedRequest, OutgoingFeed>): Promise<void> {
  const [, , perEntry, count] = (call.request.selector?.stream ?? '').split('/');
  const base = preparedEntry(Number(perEntry ?? 1));
  const entry: FeedEntry = { ...base, version: 1n, stream: '/bench/feed-catch-up/s17', position: 1n };
  const entries = Number(count ?? 0);
  const out = writer(call);
  const asked = call.request.maxEntriesPerMessage ?? 0;
  if (asked > 1) {
    const entryBytes = SubscribeFeedResponse.encode({ message: { $case: 'entry', value: entry } }).finish().byteLength;
    const size = Math.max(1, Math.min(asked, MAX_ENTRIES_PER_MESSAGE, Math.floor(BATCH_BYTES / entryBytes)));
    const full = feedBatchMessage(entry, 1, size);
    for (let sent = 0; sent < entries && !out.cancelled(); sent += size) {
      await out.send(entries - sent >= size ? full : feedBatchMessage(entry, sent + 1, entries - sent));
    }
  } else {
    for (let position = 1; position <= entries && !out.cancelled(); position++) {
      entry.position = BigInt(position);
      await out.send({ message: { $case: 'entry', value: entry } });
    }
  }
  if (!out.cancelled()) {
    call.write({ message: { $case: 'caughtUp', value: { position: BigInt(entries) } } });
    call.end();
  }
}

const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<never>) =>
  callback({ code: grpc.status.UNIMPLEMENTED });

const server = new grpc.Server({
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 8 * 1024 * 1024,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // As Event Horizon's server (src/server.ts): the ceiling of the stack as we run it, not one that
  // also tracks every call for a channelz service nobody serves.
  'grpc.enable_channelz': 0,
});
server.addService(
  {
    ...EventHorizonService,
    // Batches are serialized once, as Event Horizon serializes its messages once (encoded-messages.ts).
    subscribe: {
      ...EventHorizonService.subscribe,
      responseSerialize: (message: Outgoing) =>
        Buffer.isBuffer(message) ? message : Buffer.from(SubscribeResponse.encode(message).finish()),
    },
    subscribeFeed: {
      ...EventHorizonService.subscribeFeed,
      responseSerialize: (message: OutgoingFeed) =>
        Buffer.isBuffer(message) ? message : Buffer.from(SubscribeFeedResponse.encode(message).finish()),
    },
  },
  {
    append: emptyAppend,
    subscribe: (call: grpc.ServerWritableStream<SubscribeRequest, Outgoing>) => void trivialStream(call),
    subscribeFeed: (call: grpc.ServerWritableStream<SubscribeFeedRequest, OutgoingFeed>) => void trivialFeed(call),
    createStream: unimplemented,
    read: unimplemented,
    putSnapshot: unimplemented,
    getSnapshot: unimplemented,
    deleteSnapshot: unimplemented,
    describeStream: unimplemented,
    listChildren: unimplemented,
  },
);
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
process.on('disconnect', () => server.forceShutdown());
process.on('message', (message: unknown) => {
  if (message === 'appends-answered') process.send?.({ appendsAnswered });
});
