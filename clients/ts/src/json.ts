/** JSON payloads: the default content type of events and snapshots. */
import type { DeepPartial, Event } from './gen/eventhorizon/v1/eventhorizon';

/** An event whose data is `data` as JSON; `extra` may set an id, metadata or occurredAt. */
export function jsonEvent(type: string, data: unknown, extra: DeepPartial<Event> = {}): DeepPartial<Event> {
  return { ...extra, type, data: Buffer.from(JSON.stringify(data)), contentType: 'application/json' };
}

/**
 * The parsed JSON data of an event. The type parameter is the caller's claim about the shape;
 * nothing checks it, so validate data that other writers may have produced.
 */
export function eventData<T>(event: Pick<Event, 'data'>): T {
  return JSON.parse(Buffer.from(event.data).toString('utf8')) as T;
}

/** A snapshot codec for states that JSON can carry (no bigint, Map or Date). */
export function jsonSnapshots<State>(): { encode(state: State): Uint8Array; decode(data: Uint8Array): State } {
  return {
    encode: (state) => Buffer.from(JSON.stringify(state)),
    decode: (data) => JSON.parse(Buffer.from(data).toString('utf8')) as State,
  };
}
