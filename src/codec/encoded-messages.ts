import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { SubscribeResponse, type Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Timestamp } from '../../clients/ts/src/gen/google/protobuf/timestamp';

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
  return message instanceof Encoded ? message.bytes : Buffer.from(SubscribeResponse.encode(message).finish());
}

/** An entry wrapped in a SubscribeResponse and serialized. */
export function encodeEntryMessage(entry: Entry): Encoded {
  return new Encoded(Buffer.from(SubscribeResponse.encode({ message: { $case: 'entry', value: entry } }).finish()), entry.recordedAt);
}

const SUBSCRIBE_RESPONSE_ENTRY = (1 << 3) | 2; // field 1, length-delimited
const ENTRY_VERSION = (1 << 3) | 0; // field 1, varint
const ENTRY_RECORDED_AT = (3 << 3) | 2; // field 3, length-delimited

/**
 * The SubscribeResponse of a stored entry, from the serialized `Entry` the store keeps (events
 * only, field 2): version and time are written around those bytes, which are copied as they are,
 * so the events are neither decoded nor encoded again. Fields come in field-number order, so the
 * bytes are the ones `SubscribeResponse.encode` makes.
 */
export function encodeStoredEntryMessage(version: bigint, recordedAt: Date, serializedEvents: Uint8Array): Encoded {
  const writer = new BinaryWriter();
  writer.uint32(SUBSCRIBE_RESPONSE_ENTRY).fork();
  if (version !== 0n) writer.uint32(ENTRY_VERSION).int64(version);
  writer.raw(serializedEvents);
  const millis = recordedAt.getTime();
  Timestamp.encode(
    { seconds: BigInt(Math.trunc(millis / 1000)), nanos: (millis % 1000) * 1_000_000 },
    writer.uint32(ENTRY_RECORDED_AT).fork(),
  ).join();
  writer.join();
  return new Encoded(Buffer.from(writer.finish()), recordedAt);
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

  constructor(private readonly maxEntries: number) {}

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
    const header = new BinaryWriter().uint32(SUBSCRIBE_RESPONSE_ENTRIES).uint32(this.bytes).finish();
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
