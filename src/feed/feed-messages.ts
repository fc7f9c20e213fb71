import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  Entry,
  SubscribeFeedResponse,
  type Event,
  type FeedEntry as ApiFeedEntry,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Timestamp } from '../../clients/ts/src/gen/google/protobuf/timestamp';
import {
  Encoded,
  timestampBodyLength,
  varintFieldLength,
  varintLength,
  writeTimestampBody,
  writeVarint,
  writeVarintField,
} from '../codec/encoded-messages';
import type { FeedEntry, Position } from '../store/port';
import type { FeedFilter } from './feed-filter';
import { encodeMessage } from '../codec/message-writer';

/** What a feed subscription writes: a message to serialize, or one serialized already. */
export type OutgoingFeedMessage = SubscribeFeedResponse | Encoded;

/** The grpc-js serializer of SubscribeFeed responses that passes `Encoded` messages through. */
export function serializeSubscribeFeedResponse(message: OutgoingFeedMessage): Buffer {
  return message instanceof Encoded ? message.bytes : encodeMessage(SubscribeFeedResponse, message);
}

/**
 * A feed entry opened once for every consumer that gets it: the stored entry and its serialized
 * events (decrypted, decompressed). The message with every event, and the decoded events (for
 * consumers filtering by type), are made on first use and shared.
 */
export class OpenedFeedEntry {
  private whole: Encoded | undefined;
  private decoded: Event[] | undefined;

  constructor(
    readonly stored: FeedEntry,
    /** The entry's events as the `Entry` message serializes them (field 2 only). */
    readonly opened: Uint8Array,
  ) {}

  get position(): Position {
    return this.stored.position;
  }

  get events(): Event[] {
    this.decoded ??= Entry.decode(this.opened).events;
    return this.decoded;
  }

  /** The SubscribeFeedResponse of this entry with every event, serialized once. */
  wholeMessage(): Encoded {
    this.whole ??= encodeStoredFeedEntry(this.stored, this.opened);
    return this.whole;
  }

  /** The message a consumer gets of this entry, or undefined when none of its events is wanted. */
  messageFor(filter: FeedFilter): Encoded | undefined {
    if (filter.allEvents) return this.wholeMessage();
    const events = this.events;
    const wanted = filter.selectEvents(events);
    if (wanted.length === 0) return undefined;
    if (wanted.length === events.length) return this.wholeMessage();
    const entry: ApiFeedEntry = { ...this.apiEntry(), events: wanted };
    return new Encoded(encodeMessage(SubscribeFeedResponse, { message: { $case: 'entry', value: entry } }), this.stored.recordedAt);
  }

  /** The API's FeedEntry with the wanted events, or undefined when none is (ReadFeed). */
  apiEntryFor(filter: FeedFilter): ApiFeedEntry | undefined {
    const events = filter.selectEvents(this.events);
    return events.length === 0 ? undefined : { ...this.apiEntry(), events };
  }

  private apiEntry(): Omit<ApiFeedEntry, 'events'> {
    const { stored } = this;
    return { version: stored.version, recordedAt: stored.recordedAt, stream: stored.stream, position: stored.position };
  }
}

/** A checkpoint (or, with `caughtUp`, the caught-up message) at a position. */
export function checkpointMessage(position: Position, caughtUp = false): Encoded {
  const message: SubscribeFeedResponse = {
    message: caughtUp ? { $case: 'caughtUp', value: { position } } : { $case: 'checkpoint', value: { position } },
  };
  return new Encoded(encodeMessage(SubscribeFeedResponse, message));
}

const RESPONSE_ENTRY = (1 << 3) | 2; // SubscribeFeedResponse.entry: field 1, length-delimited
/** SubscribeFeedResponse.entries (a FeedEntryBatch): field 5, length-delimited. */
export const FEED_RESPONSE_ENTRIES = (5 << 3) | 2;

/**
 * Whether a serialized SubscribeFeedResponse is an `entry` message (a checkpoint, caught-up or
 * heartbeat is not): the first byte of every message is its one field's tag. Only `entry`
 * messages go into a batch.
 */
export function isEntryMessage(message: Encoded): boolean {
  return message.bytes[0] === RESPONSE_ENTRY;
}
const ENTRY_VERSION = (1 << 3) | 0; // FeedEntry.version: field 1, varint
const ENTRY_RECORDED_AT = (3 << 3) | 2; // field 3, length-delimited
const ENTRY_STREAM = (4 << 3) | 2; // field 4, length-delimited
const ENTRY_POSITION = (5 << 3) | 0; // field 5, varint

/**
 * The SubscribeFeedResponse of a stored entry, around its serialized events (copied as they are,
 * neither decoded nor encoded again). Fields in field-number order, zero values left out: the
 * bytes `SubscribeFeedResponse.encode` makes. Written by hand into one buffer of its exact size,
 * as `encodeStoredEntryMessage` writes a stream's entries: through BinaryWriter (its chunks, forks
 * and joins, and the copy of `finish`) it was a fifth of a feed catch-up's CPU. Versions and
 * positions past 2^53 and times before 1970 take BinaryWriter's path.
 */
function encodeStoredFeedEntry(stored: FeedEntry, serializedEvents: Uint8Array): Encoded {
  const millis = stored.recordedAt.getTime();
  const { version, position } = stored;
  if (!(millis >= 0) || version < 0n || version > MAX_SAFE || position < 0n || position > MAX_SAFE) {
    return encodeStoredFeedEntryWithWriter(stored, serializedEvents);
  }
  const timestampLength = timestampBodyLength(millis);
  const versionNumber = Number(version);
  const positionNumber = Number(position);
  const streamBytes = Buffer.byteLength(stored.stream, 'utf8');
  const entryLength =
    varintFieldLength(versionNumber) +
    serializedEvents.byteLength +
    (1 + varintLength(timestampLength) + timestampLength) +
    (1 + varintLength(streamBytes) + streamBytes) +
    varintFieldLength(positionNumber);
  const bytes = Buffer.allocUnsafe(1 + varintLength(entryLength) + entryLength);
  bytes[0] = RESPONSE_ENTRY;
  let at = writeVarintField(bytes, writeVarint(bytes, 1, entryLength), ENTRY_VERSION, versionNumber);
  bytes.set(serializedEvents, at);
  at += serializedEvents.byteLength;
  bytes[at++] = ENTRY_RECORDED_AT;
  at = writeTimestampBody(bytes, writeVarint(bytes, at, timestampLength), millis);
  bytes[at++] = ENTRY_STREAM;
  at = writeVarint(bytes, at, streamBytes);
  at += bytes.write(stored.stream, at, 'utf8');
  writeVarintField(bytes, at, ENTRY_POSITION, positionNumber);
  return new Encoded(bytes, stored.recordedAt);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The same message through BinaryWriter, for the values the hand-written path leaves out. */
function encodeStoredFeedEntryWithWriter(stored: FeedEntry, serializedEvents: Uint8Array): Encoded {
  const writer = new BinaryWriter();
  writer.uint32(RESPONSE_ENTRY).fork();
  if (stored.version !== 0n) writer.uint32(ENTRY_VERSION).int64(stored.version);
  writer.raw(serializedEvents);
  const millis = stored.recordedAt.getTime();
  Timestamp.encode(
    { seconds: BigInt(Math.trunc(millis / 1000)), nanos: (millis % 1000) * 1_000_000 },
    writer.uint32(ENTRY_RECORDED_AT).fork(),
  ).join();
  writer.uint32(ENTRY_STREAM).string(stored.stream);
  if (stored.position !== 0n) writer.uint32(ENTRY_POSITION).int64(stored.position);
  writer.join();
  return new Encoded(Buffer.from(writer.finish()), stored.recordedAt);
}
