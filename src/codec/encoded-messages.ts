import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ReadResponse, SubscribeResponse, type Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Timestamp } from '../../clients/ts/src/gen/google/protobuf/timestamp';
import type { Allocate } from './compression';
import { encodeMessage } from './message-writer';

/**
 * Subscription messages serialized ahead of time. grpc-js serializes every message it writes;
 * with 1,000 subscribers of one stream that is 1,000 identical encodings per append, and a
 * catch-up decoded each stored entry into objects only to encode it again. An `Encoded` message
 * is serialized once and written to every call as it is.
 */
export class Encoded {
  /** `recordedAt`: the commit time of the entry carried, for the subscription lag metric. */
  constructor(readonly bytes: Buffer, readonly recordedAt?: Date) {}
}

/**
 * A batch of entries (SubscribeResponse.entries) stops before this many bytes of entry messages,
 * so that what grpc-js holds for a client that does not read stays bounded: at most its 16
 * buffered messages of this size (one entry alone may be larger, as it may in an `entry`).
 */
export const BATCH_BYTES = 256 * 1024;
/** SubscribeRequest.max_entries_per_message above this counts as this. */
export const MAX_ENTRIES_PER_MESSAGE = 1000;

/** What a subscription writes: a message to serialize, or one serialized already. */
export type OutgoingSubscribeMessage = SubscribeResponse | Encoded;

/** The grpc-js serializer of Subscribe responses that passes `Encoded` messages through. */
export function serializeSubscribeResponse(message: OutgoingSubscribeMessage): Buffer {
  return message instanceof Encoded ? message.bytes : encodeMessage(SubscribeResponse, message);
}

/** What Read answers: a response to serialize, or one serialized already (`ReadResponseWriter`). */
export type OutgoingReadResponse = ReadResponse | Encoded;

/** The grpc-js serializer of Read responses that passes `Encoded` ones through. */
export function serializeReadResponse(message: OutgoingReadResponse): Buffer {
  return message instanceof Encoded ? message.bytes : encodeMessage(ReadResponse, message);
}

/** An entry wrapped in a SubscribeResponse and serialized. */
export function encodeEntryMessage(entry: Entry): Encoded {
  return new Encoded(encodeMessage(SubscribeResponse, { message: { $case: 'entry', value: entry } }), entry.recordedAt);
}

/** A heartbeat serialized: the hub writes one message to every idle subscriber due at once. */
export function encodeHeartbeatMessage(time: Date): Encoded {
  return new Encoded(encodeMessage(SubscribeResponse, { message: { $case: 'heartbeat', value: { time } } }));
}

const SUBSCRIBE_RESPONSE_ENTRY = (1 << 3) | 2; // field 1, length-delimited
const ENTRY_VERSION = (1 << 3) | 0; // field 1, varint
const ENTRY_RECORDED_AT = (3 << 3) | 2; // field 3, length-delimited
const TIMESTAMP_SECONDS = (1 << 3) | 0; // field 1, varint
const TIMESTAMP_NANOS = (2 << 3) | 0; // field 2, varint

/** Writes an entry's serialized events into `allocate(size)`, asked once for their size. */
export type EventsWriter = (allocate: Allocate) => void;

/**
 * The SubscribeResponse of a stored entry, from the serialized `Entry` the store keeps (events
 * only, field 2): version and time are written around those bytes, which are neither decoded nor
 * encoded again. Fields come in field-number order, so the bytes are the ones
 * `SubscribeResponse.encode` makes.
 *
 * `events` are the serialized events, or a writer that puts them in place (a codec that
 * decompresses them straight into the message: `StreamCodec.openEntryInto`). The message is
 * written by hand into one buffer of its exact size: through BinaryWriter (its growing chunks,
 * fork and join) it cost as much as the decompression. Versions past 2^53 and times before 1970
 * (negative timestamp fields) take BinaryWriter's path.
 */
export function encodeStoredEntryMessage(version: bigint, recordedAt: Date, events: Uint8Array | EventsWriter): Encoded {
  let bytes = EMPTY;
  const end = writeStoredEntryMessage(version, recordedAt, events, (size) => {
    bytes = Buffer.allocUnsafe(size);
    return { bytes, at: 0 };
  });
  if (end === undefined) return encodeWithWriter(version, recordedAt, asWriter(events));
  return new Encoded(bytes, recordedAt);
}

/** Where a message of `size` bytes is to be written: a buffer and the offset in it. */
export type Reserve = (size: number) => { bytes: Buffer; at: number };

/**
 * Writes the message of `encodeStoredEntryMessage` at the place `reserve` gives for its size, once
 * that size is known; answers the offset after it, or undefined (nothing reserved) for the values
 * the hand-written encoding leaves to BinaryWriter.
 */
export function writeStoredEntryMessage(
  version: bigint,
  recordedAt: Date,
  events: Uint8Array | EventsWriter,
  reserve: Reserve,
): number | undefined {
  const millis = recordedAt.getTime();
  if (!(millis >= 0) || version < 0n || version > MAX_SAFE_VERSION) return undefined;
  const timestampLength = timestampBodyLength(millis);
  const versionNumber = Number(version);
  let bytes: Buffer = EMPTY;
  let at = -1;
  asWriter(events)((size) => {
    const entryLength = varintFieldLength(versionNumber) + size + 1 + varintLength(timestampLength) + timestampLength;
    const place = reserve(1 + varintLength(entryLength) + entryLength);
    bytes = place.bytes;
    bytes[place.at] = SUBSCRIBE_RESPONSE_ENTRY;
    const offset = writeVarintField(bytes, writeVarint(bytes, place.at + 1, entryLength), ENTRY_VERSION, versionNumber);
    at = offset + size;
    return bytes.subarray(offset, offset + size);
  });
  if (at < 0) throw new Error('the events writer wrote nothing');
  bytes[at++] = ENTRY_RECORDED_AT;
  at = writeVarint(bytes, at, timestampLength);
  return writeTimestampBody(bytes, at, millis);
}

function asWriter(events: Uint8Array | EventsWriter): EventsWriter {
  return typeof events === 'function' ? events : (allocate) => allocate(events.byteLength).set(events);
}

const EMPTY: Buffer = Buffer.alloc(0);
const MAX_SAFE_VERSION = BigInt(Number.MAX_SAFE_INTEGER);

/** The bytes of a varint holding `value`, a non-negative safe integer. */
export function varintLength(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 128; rest = Math.floor(rest / 128)) length++;
  return length;
}

/** The bytes of a varint field (a one-byte tag) holding `value`: none for 0, which proto3 leaves out. */
export function varintFieldLength(value: number): number {
  return value !== 0 ? 1 + varintLength(value) : 0;
}

/** Writes a varint field (a one-byte tag) unless `value` is 0; answers the offset after it. */
export function writeVarintField(bytes: Buffer, at: number, tag: number, value: number): number {
  if (value === 0) return at;
  bytes[at] = tag;
  return writeVarint(bytes, at + 1, value);
}

/** The bytes of the body of the google.protobuf.Timestamp of `millis`, a time at or after 1970. */
export function timestampBodyLength(millis: number): number {
  return varintFieldLength(Math.trunc(millis / 1000)) + varintFieldLength((millis % 1000) * 1_000_000);
}

/** Writes the body of the google.protobuf.Timestamp of `millis` (at or after 1970); answers the offset after it. */
export function writeTimestampBody(bytes: Buffer, at: number, millis: number): number {
  const afterSeconds = writeVarintField(bytes, at, TIMESTAMP_SECONDS, Math.trunc(millis / 1000));
  return writeVarintField(bytes, afterSeconds, TIMESTAMP_NANOS, (millis % 1000) * 1_000_000);
}

/** Writes `value` (a non-negative safe integer) as a varint at `at`; answers the offset after it. */
export function writeVarint(bytes: Buffer, at: number, value: number): number {
  let offset = at;
  let rest = value;
  while (rest >= 128) {
    bytes[offset++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  bytes[offset++] = rest;
  return offset;
}

/** The same message through BinaryWriter, for the values the hand-written path leaves out. */
function encodeWithWriter(version: bigint, recordedAt: Date, write: EventsWriter): Encoded {
  let events = EMPTY;
  write((size) => (events = Buffer.allocUnsafe(size)));
  const writer = new BinaryWriter();
  writer.uint32(SUBSCRIBE_RESPONSE_ENTRY).fork();
  if (version !== 0n) writer.uint32(ENTRY_VERSION).int64(version);
  writer.raw(events);
  const millis = recordedAt.getTime();
  Timestamp.encode(
    { seconds: BigInt(Math.trunc(millis / 1000)), nanos: (millis % 1000) * 1_000_000 },
    writer.uint32(ENTRY_RECORDED_AT).fork(),
  ).join();
  writer.join();
  return new Encoded(Buffer.from(writer.finish()), recordedAt);
}

const READ_RESPONSE_MORE = (2 << 3) | 0; // field 2, varint
const READ_RESPONSE_NEXT_VERSION = (3 << 3) | 0; // field 3, varint
const READ_RESPONSE_HEAD_VERSION = (4 << 3) | 0; // field 4, varint

/**
 * A serialized ReadResponse written as its entries are opened: each entry's message goes straight
 * into the one buffer of the response, around the stored events, which are neither decoded nor
 * encoded again. ReadResponse.entries is field 1, length-delimited, as SubscribeResponse.entry
 * is, so an entry's message is written as `encodeStoredEntryMessage` writes it; the other fields
 * follow, as ReadResponse.encode writes them (left out when zero or false). Until 1 December the
 * entries' messages were made one buffer each and gathered at the end: a buffer, a copy and their
 * garbage more per entry of a page.
 */
export class ReadResponseWriter {
  private bytes: Buffer;
  private length = 0;
  private lastStart = 0;

  /** `expectedBytes`: what the page will probably take; the buffer grows past it if need be. */
  constructor(expectedBytes: number) {
    this.bytes = Buffer.allocUnsafe(Math.max(64, expectedBytes));
  }

  /** Writes the message of an entry after the others (as `encodeStoredEntryMessage` makes it). */
  addEntry(version: bigint, recordedAt: Date, events: EventsWriter): void {
    this.lastStart = this.length;
    const end = writeStoredEntryMessage(version, recordedAt, events, (size) => this.reserve(size));
    if (end !== undefined) {
      this.length = end;
      return;
    }
    const message = encodeWithWriter(version, recordedAt, events).bytes;
    const place = this.reserve(message.byteLength);
    place.bytes.set(message, place.at);
    this.length += message.byteLength;
  }

  /** Takes back the entry written last: it went over the page's bound. */
  dropLast(): void {
    this.length = this.lastStart;
  }

  /** The response: the entries written, then `more`, `next_version` and `head_version`. */
  finish(more: boolean, nextVersion: bigint, headVersion: bigint): Encoded {
    const tail = new BinaryWriter();
    if (more) tail.uint32(READ_RESPONSE_MORE).bool(true);
    if (nextVersion !== 0n) tail.uint32(READ_RESPONSE_NEXT_VERSION).int64(nextVersion);
    if (headVersion !== 0n) tail.uint32(READ_RESPONSE_HEAD_VERSION).int64(headVersion);
    const trailer = tail.finish();
    const place = this.reserve(trailer.byteLength);
    place.bytes.set(trailer, place.at);
    return new Encoded(this.bytes.subarray(0, this.length + trailer.byteLength));
  }

  /** Room for `size` more bytes after those written: the buffer and where they go. */
  private reserve(size: number): { bytes: Buffer; at: number } {
    if (this.length + size > this.bytes.byteLength) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.byteLength * 2, this.length + size));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    return { bytes: this.bytes, at: this.length };
  }
}

const SUBSCRIBE_RESPONSE_ENTRIES = (4 << 3) | 2; // field 4, length-delimited

/**
 * Consecutive entry messages gathered into one `entries` message: at most `maxEntries` of them,
 * stopping before BATCH_BYTES (an empty batch takes any entry). With `maxEntries` 1 every entry
 * leaves alone, as an `entry` message.
 *
 * No entry is encoded again: SubscribeResponse.entry and EntryBatch.entries are both field 1,
 * length-delimited, so the bytes of an `entry` message are those of one item of an EntryBatch,
 * and the batch is a header (field 4 and its length) followed by its entries' messages as they are.
 */
export class EntryBatcher {
  private messages: Encoded[] = [];
  private bytes = 0;

  /**
   * `batchTag`: the tag of the response's batch field (SubscribeResponse.entries by default;
   * SubscribeFeedResponse.entries for the feed, whose `entry` and `FeedEntryBatch.entries` are
   * both field 1 too).
   */
  constructor(
    private readonly maxEntries: number,
    private readonly batchTag = SUBSCRIBE_RESPONSE_ENTRIES,
  ) {}

  /** Whether the batch can take `message` as it stands. */
  fits(message: Encoded): boolean {
    const count = this.messages.length;
    return count === 0 || (count < this.maxEntries && this.bytes + message.bytes.byteLength <= BATCH_BYTES);
  }

  /** Adds an entry message; check `fits` first. */
  add(message: Encoded): void {
    this.messages.push(message);
    this.bytes += message.bytes.byteLength;
  }

  /**
   * The batch as one message, and the batcher empty again; undefined when it was empty. One entry
   * leaves as its own `entry` message. A batch carries its oldest entry's commit time.
   */
  take(): Encoded | undefined {
    const messages = this.messages;
    const first = messages[0];
    if (messages.length <= 1) {
      this.messages = [];
      this.bytes = 0;
      return first;
    }
    const header = new BinaryWriter().uint32(this.batchTag).uint32(this.bytes).finish();
    const bytes = Buffer.allocUnsafe(header.byteLength + this.bytes);
    bytes.set(header, 0);
    let offset = header.byteLength;
    for (const message of messages) {
      bytes.set(message.bytes, offset);
      offset += message.bytes.byteLength;
    }
    this.messages = [];
    this.bytes = 0;
    return new Encoded(bytes, first?.recordedAt);
  }
}
