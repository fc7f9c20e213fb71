import type { Limits } from '../config/config';
import { NONCE_BYTES, TAG_BYTES } from '../crypto/aead';

/**
 * How large a stored payload the configured limits let a client cause, so that a store with a
 * limit of its own (DynamoDB: one transaction) can be checked against them at start-up.
 *
 * The limits count an entry's event data and metadata keys and values (`max_entry_bytes`); the
 * stored payload is the protobuf `Entry` of those events, compressed when that saves at least
 * 10 % (never larger), then framed and maybe sealed. What the limits do not count is bounded
 * here per event:
 *
 *   events[] tag and length      1 + 4
 *   id        (≤ 128 chars)      1 + 2 + 128
 *   type      (≤ 256 chars)      1 + 2 + 256
 *   data tag and length          1 + 4
 *   content_type (≤ 256 chars)   1 + 2 + 256
 *   occurred_at (Timestamp)      2 + 11 + 6
 *                                = 678, rounded up to 700
 *
 * Not bounded: the tag and lengths around each metadata entry (up to 11 bytes per key, whose own
 * bytes the limit counts). Only an entry of tens of thousands of metadata keys that zstd cannot
 * shrink gets near the margin this leaves (docs/dynamodb.md, "Large entries").
 */
export const EVENT_FRAMING_BYTES = 700;

/** The payload header and, when sealed, DEK version, nonce and tag (payload-codec.ts). */
export const PAYLOAD_OVERHEAD_BYTES = 1 + 4 + NONCE_BYTES + TAG_BYTES;

/** The largest stored payload of an entry within the limits (metadata framing aside, see above). */
export function maxStoredEntryBytes(limits: Limits): number {
  return limits.maxEntryBytes + limits.maxEventsPerEntry * EVENT_FRAMING_BYTES + PAYLOAD_OVERHEAD_BYTES;
}

/** The largest stored payload of a snapshot within the limits: its data, framed and maybe sealed. */
export function maxStoredSnapshotBytes(limits: Limits): number {
  return limits.maxSnapshotBytes + PAYLOAD_OVERHEAD_BYTES;
}
