import { credentials, status } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/** The gRPC status code of a failed call, or undefined for something that is not a gRPC error. */
export function codeOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') return error.code;
  return undefined;
}

/** The name of a status code, for messages ("ABORTED" rather than 10). */
export function statusName(code: number | undefined): string {
  if (code === undefined) return 'not a gRPC error';
  return status[code] ?? String(code);
}

/**
 * A client with a connection of its own (grpc-js would otherwise share one between clients of the
 * same address), reconnecting quickly after a server restart.
 */
export function clientFor(address: string): EventHorizonClient {
  return new EventHorizonClient(address, credentials.createInsecure(), {
    // Reconnect at once after a restart rather than after grpc-js's back-off.
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': 200,
    'grpc.use_local_subchannel_pool': 1,
  });
}
