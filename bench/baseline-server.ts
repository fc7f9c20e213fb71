import * as grpc from '@grpc/grpc-js';
import {
  EventHorizonService,
  type AppendRequest,
  type AppendResponse,
  type Entry,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { OrderEvents } from './events';

/**
 * The ceiling: a grpc-js server with the same service definition and options as Event Horizon,
 * whose Append does nothing and whose Subscribe streams a prepared entry over and over. Whatever
 * Event Horizon does beyond this (validation, storage, compression, fan-out) is our cost.
 *
 * Subscribe streams are named `/baseline/<events per entry>/<entries>`.
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

async function trivialStream(call: grpc.ServerWritableStream<SubscribeRequest, SubscribeResponse>): Promise<void> {
  const [, , perEntry, count] = call.request.stream.split('/');
  const entry = preparedEntry(Number(perEntry ?? 1));
  const entries = Number(count ?? 0);
  let cancelled = false;
  let wake: (() => void) | undefined;
  call.on('cancelled', () => {
    cancelled = true;
    wake?.();
  });
  for (let version = 0; version < entries && !cancelled; version++) {
    entry.version = BigInt(version);
    if (!call.write({ message: { $case: 'entry', value: entry } })) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        call.once('drain', resolve);
      });
    }
  }
  if (!cancelled) {
    call.write({ message: { $case: 'caughtUp', value: { version: BigInt(entries - 1) } } });
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
});
server.addService(EventHorizonService, {
  append: emptyAppend,
  subscribe: (call: grpc.ServerWritableStream<SubscribeRequest, SubscribeResponse>) => void trivialStream(call),
  createStream: unimplemented,
  read: unimplemented,
  putSnapshot: unimplemented,
  getSnapshot: unimplemented,
  deleteSnapshot: unimplemented,
  describeStream: unimplemented,
  listChildren: unimplemented,
});
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
process.on('disconnect', () => server.forceShutdown());
process.on('message', (message: unknown) => {
  if (message === 'appends-answered') process.send?.({ appendsAnswered });
});
