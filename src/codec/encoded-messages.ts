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
