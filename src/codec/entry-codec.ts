import { Entry, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { StoredEntry } from '../store/port';
import type { PayloadCodec } from './payload-codec';

/**
 * Entries are stored as the protobuf encoding of an `Entry` holding only its events (version and
 * time live in the store's own columns), sealed by the payload codec.
 */
export class EntryCodec {
  constructor(private readonly payloads: PayloadCodec) {}

  /** The stored payload of an entry holding these events. */
  encode(events: Event[]): Uint8Array {
    return this.payloads.seal(Entry.encode({ version: 0n, events }).finish());
  }

  /** The API entry of a stored one. */
  decode(stored: StoredEntry): Entry {
    const entry = Entry.decode(this.payloads.open(stored.payload));
    entry.version = stored.version;
    entry.recordedAt = stored.recordedAt;
    return entry;
  }
}
