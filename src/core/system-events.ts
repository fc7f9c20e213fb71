import type { Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { ROOT } from '../model/stream-path';

/** Event types the server itself writes. */
export const STREAM_STARTED = '$stream.started';
export const CHILD_CREATED = '$stream.child-created';

/** The root's entry 0, written once when the store is first initialised. */
export function rootStartedEvents(): Event[] {
  return [systemEvent(STREAM_STARTED, { stream: ROOT })];
}

/** An event the server writes itself (stream lifecycle, keys and policies): JSON data, no metadata. */
export function systemEvent(type: string, data: unknown): Event {
  return {
    id: crypto.randomUUID(),
    type,
    data: Buffer.from(JSON.stringify(data)),
    contentType: 'application/json',
    metadata: {},
    occurredAt: undefined,
  };
}
