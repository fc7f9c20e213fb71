import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** A message type as ts-proto generates it: it encodes into the writer it is given. */
export interface EncodableType<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

/**
 * A writer kept while the messages it writes stay small: beyond this, the next message gets a
 * new writer, so that one large entry does not hold its buffer for the process's life.
 */
const KEPT_WRITER_BYTES = 64 * 1024;

/**
 * The writer every encode on the event loop shares. A new BinaryWriter starts at 128 bytes and
 * doubles, copying, until the message fits: an entry of one 300-byte event took three allocations
 * and two copies before `finish` copied it once more, and `Buffer.from` of the result once again.
 * This one keeps the buffer it grew (`finish` resets the position and returns a copy of the bytes,
 * so nothing handed out shares it).
 */
let shared = new BinaryWriter();

/** `type.encode(message).finish()` as a Buffer, written by the shared writer (one copy in all). */
export function encodeMessage<T>(type: EncodableType<T>, message: T): Buffer {
  let bytes: Uint8Array;
  try {
    bytes = type.encode(message, shared).finish();
  } catch (error) {
    // Half a message may be in it: the next one must not start after it.
    shared = new BinaryWriter();
    throw error;
  }
  if (bytes.byteLength > KEPT_WRITER_BYTES) shared = new BinaryWriter();
  // A view of finish()'s own copy, not a second copy.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
