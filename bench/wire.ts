/**
 * Just enough of the protobuf wire format to count what a response carries without decoding it
 * into objects: the load generator must not be the bottleneck, and a full ts-proto decode of a
 * million events costs the client more than the server spends sending them.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** One top-level field of a message: its number, and its bytes or varint value. */
export interface WireField {
  field: number;
  /** The value of a varint field (as a number: fine below 2^53). */
  varint: number;
  /** The start and end offsets of a length-delimited field's bytes. */
  start: number;
  end: number;
}

/** Reads a varint at `offset`; returns [value, next offset]. */
function readVarint(buffer: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  let position = offset;
  for (;;) {
    const byte = buffer[position++];
    if (byte === undefined) throw new Error('truncated varint');
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

/** Calls `visit` for each top-level field of the message in buffer[start, end). */
export function forEachField(buffer: Uint8Array, start: number, end: number, visit: (field: WireField) => void): void {
  let offset = start;
  while (offset < end) {
    const [key, afterKey] = readVarint(buffer, offset);
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    offset = afterKey;
    switch (wireType) {
      case WIRE_VARINT: {
        const [value, next] = readVarint(buffer, offset);
        visit({ field, varint: value, start: offset, end: next });
        offset = next;
        break;
      }
      case WIRE_LENGTH_DELIMITED: {
        const [length, next] = readVarint(buffer, offset);
        visit({ field, varint: 0, start: next, end: next + length });
        offset = next + length;
        break;
      }
      case WIRE_FIXED64:
        offset += 8;
        break;
      case WIRE_FIXED32:
        offset += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }
}

/** Events in an encoded `Entry` (field 2 is `events`). */
export function countEvents(buffer: Uint8Array, start: number, end: number): number {
  let events = 0;
  forEachField(buffer, start, end, (f) => {
    if (f.field === 2) events++;
  });
  return events;
}

/**
 * What one encoded `SubscribeResponse` is: an entry (field 1) or a batch of entries (field 4, an
 * `EntryBatch` whose field 1 is `entries`), with their entry and event counts, or something else.
 */
export function scanSubscribeResponse(buffer: Uint8Array): { entries: number; events: number; caughtUp: boolean } {
  let entries = 0;
  let events = 0;
  let caughtUp = false;
  forEachField(buffer, 0, buffer.length, (f) => {
    if (f.field === 1) {
      entries++;
      events += countEvents(buffer, f.start, f.end);
    } else if (f.field === 2) caughtUp = true;
    else if (f.field === 4) {
      forEachField(buffer, f.start, f.end, (entry) => {
        if (entry.field !== 1) return;
        entries++;
        events += countEvents(buffer, entry.start, entry.end);
      });
    }
  });
  return { entries, events, caughtUp };
}

/** The events of one encoded `ReadResponse`. */
export function readResponseEvents(buffer: Uint8Array): number {
  let events = 0;
  forEachField(buffer, 0, buffer.length, (f) => {
    if (f.field === 1) events += countEvents(buffer, f.start, f.end);
  });
  return events;
}

/**
 * Whether more entries follow an encoded `ReadResponse`, and where to continue: its top-level
 * fields only, the entries skipped by their length (what a reader needs to ask for the next page).
 */
export function readContinuation(buffer: Uint8Array): { more: boolean; nextVersion: number } {
  let more = false;
  let nextVersion = 0;
  forEachField(buffer, 0, buffer.length, (f) => {
    if (f.field === 2) more = f.varint !== 0;
    else if (f.field === 3) nextVersion = f.varint;
  });
  return { more, nextVersion };
}

function utf8(buffer: Uint8Array, start: number, end: number): string {
  return Buffer.from(buffer.buffer, buffer.byteOffset + start, end - start).toString('utf8');
}

/**
 * The `metadata[key]` of the first event of an encoded `Entry` or `FeedEntry` in
 * buffer[start, end), if any (events are field 2 of both; Event field 5 is the metadata map; each
 * map item has key 1 and value 2).
 */
function entryFirstEventMetadata(buffer: Uint8Array, start: number, end: number, key: string): string | undefined {
  let found: string | undefined;
  let seenEvent = false;
  forEachField(buffer, start, end, (entry) => {
    if (entry.field !== 2 || seenEvent) return;
    seenEvent = true;
    forEachField(buffer, entry.start, entry.end, (event) => {
      if (event.field !== 5) return;
      let itemKey: string | undefined;
      let itemValue: string | undefined;
      forEachField(buffer, event.start, event.end, (item) => {
        if (item.field === 1) itemKey = utf8(buffer, item.start, item.end);
        else if (item.field === 2) itemValue = utf8(buffer, item.start, item.end);
      });
      if (itemKey === key) found = itemValue;
    });
  });
  return found;
}

/** The `metadata[key]` of the first event of the entry in an encoded `SubscribeResponse`, if any. */
export function firstEventMetadata(buffer: Uint8Array, key: string): string | undefined {
  let found: string | undefined;
  forEachField(buffer, 0, buffer.length, (response) => {
    if (response.field === 1) found = entryFirstEventMetadata(buffer, response.start, response.end, key);
  });
  return found;
}

/**
 * What one encoded `SubscribeFeedResponse` is: an entry (field 1, a `FeedEntry`, whose events are
 * field 2 as an `Entry`'s) or a batch of them (field 5, a `FeedEntryBatch` whose field 1 is
 * `entries`), with their entry and event counts; or `caught_up` (field 2), a checkpoint (3) or a
 * heartbeat (4).
 */
export function scanSubscribeFeedResponse(buffer: Uint8Array): { entries: number; events: number; caughtUp: boolean } {
  let entries = 0;
  let events = 0;
  let caughtUp = false;
  forEachField(buffer, 0, buffer.length, (f) => {
    if (f.field === 1) {
      entries++;
      events += countEvents(buffer, f.start, f.end);
    } else if (f.field === 2) caughtUp = true;
    else if (f.field === 5) {
      forEachField(buffer, f.start, f.end, (entry) => {
        if (entry.field !== 1) return;
        entries++;
        events += countEvents(buffer, entry.start, entry.end);
      });
    }
  });
  return { entries, events, caughtUp };
}

/**
 * The `metadata[key]` of each entry's first event in an encoded `SubscribeFeedResponse` (one
 * entry, or each entry of a batch), in order; entries without it are left out.
 */
export function feedEntriesMetadata(buffer: Uint8Array, key: string): string[] {
  const found: string[] = [];
  const visit = (start: number, end: number) => {
    const value = entryFirstEventMetadata(buffer, start, end, key);
    if (value !== undefined) found.push(value);
  };
  forEachField(buffer, 0, buffer.length, (f) => {
    if (f.field === 1) visit(f.start, f.end);
    else if (f.field === 5) {
      forEachField(buffer, f.start, f.end, (entry) => {
        if (entry.field === 1) visit(entry.start, entry.end);
      });
    }
  });
  return found;
}
