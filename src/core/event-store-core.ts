import type { Entry, Event, Snapshot } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import {
  MAX_ENTRIES_PER_MESSAGE,
  ReadResponseWriter,
  encodeStoredEntryMessage,
  type Encoded,
  type OutgoingSubscribeMessage,
} from '../codec/encoded-messages';
import type { Codecs } from '../codec/stream-codec';
import { ROOT, SYSTEM_ROOT, ancestorsOf, isSystemPath, parentOf } from '../model/stream-path';
import type { Feed } from '../feed/feed';
import type { CallWriter, Hub } from '../realtime/hub';
import type { Lifetime } from '../realtime/lifetime';
import { subscription } from '../realtime/subscription';
import type { EventStore, ReadDirection, Version } from '../store/port';
import type { CallSignal } from './call-signal';
import {
  EncryptionDisabledError,
  ParentNotFoundError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  StreamNotShreddableError,
  StreamShreddedError,
} from './errors';
import { CHILD_CREATED, STREAM_STARTED, systemEvent } from './system-events';

/**
 * A read page stops before this many bytes, stored and decoded alike, to stay well inside the
 * 4 MiB message clients accept by default. One entry alone may pass it (an entry may hold up to
 * maxEntryBytes of events).
 */
const MAX_PAGE_BYTES = 3 * 1024 * 1024;
/** An entry message's bytes around its events (tag, length, version, time), at most: a Read buffer's first guess. */
const ENTRY_MESSAGE_OVERHEAD = 32;
/** A ReadResponse's bytes after its entries (more, next_version, head_version), at most. */
const READ_RESPONSE_OVERHEAD = 32;
/** Entries per store read while a subscriber catches up. */
const CATCH_UP_PAGE = 500;
const LAST_VERSION = (1n << 63n) - 1n;

export interface CoreOptions {
  store: EventStore;
  codecs: Codecs;
  hub: Hub;
  /** The feed, told of every commit made here. */
  feed: Feed;
  heartbeatIntervalMs: number;
  subscriberBufferEntries: number;
}

/** A position in a stream. */
export interface Cursor {
  stream: string;
  version: Version;
}

export interface CreatedStream {
  head: Cursor;
  /** The streams this call created (parents first), or the original call's when deduplicated. */
  created: string[];
  /** A retry of a create that succeeded before: nothing was written now. */
  deduplicated: boolean;
}

export interface AppendedEntry {
  cursor: Cursor;
  deduplicated: boolean;
}

/** A page of decoded entries. */
export interface EntryPage {
  entries: Entry[];
  more: boolean;
  /** Where to continue reading. */
  nextVersion: Version;
  headVersion: Version;
}

export interface SnapshotWithEntries {
  snapshot: Snapshot | undefined;
  entries: Entry[];
  more: boolean;
  nextVersion: Version;
}

export interface StreamDescription {
  stream: string;
  headVersion: Version;
  createdAt: Date;
  childCount: bigint;
  bytesStored: bigint;
  snapshotPerspectives: string[];
}

/**
 * The event store's rules, without a transport: creating streams (with parents, recognising
 * retries), appending (encode, seal, store, publish to the hub), reading within decoded bounds,
 * snapshots, key rotation and shredding, and hiding the system streams from listings. Callers
 * (the gRPC API, the auth stream, the CLI's admin commands) validate their input first: the core
 * takes valid paths and prepared events. It depends only on the store port, the codecs and the
 * realtime hub.
 */
export class EventStoreCore {
  readonly store: EventStore;
  readonly codecs: Codecs;
  readonly hub: Hub;
  readonly feed: Feed;

  constructor(private readonly options: CoreOptions) {
    this.store = options.store;
    this.codecs = options.codecs;
    this.hub = options.hub;
    this.feed = options.feed;
  }

  /**
   * Creates a stream (and its missing ancestors with `createParents`). With a request id, a
   * retry of a create that succeeded gets the original answer.
   */
  async createStream(
    stream: string,
    events: Event[],
    { requestId, createParents }: { requestId: string | undefined; createParents: boolean },
  ): Promise<CreatedStream> {
    if (stream === ROOT) throw new StreamAlreadyExistsError(ROOT);
    const created: string[] = [];
    if (createParents) {
      for (const ancestor of ancestorsOf(stream)) {
        if (ancestor === ROOT || (await this.store.describe(ancestor))) continue;
        try {
          await this.createOne(ancestor, [], requestId);
          created.push(ancestor);
        } catch (error) {
          // Another caller created it meanwhile: just as good.
          if (!(error instanceof StreamAlreadyExistsError)) throw error;
        }
      }
    }
    try {
      const headVersion = await this.createOne(stream, events, requestId);
      created.push(stream);
      return { head: { stream, version: headVersion }, created, deduplicated: false };
    } catch (error) {
      if (!(error instanceof StreamAlreadyExistsError) || requestId === undefined) throw error;
      if (!(await this.createdBy(stream, requestId))) throw error;
      // A retry of a create that succeeded (its reply was lost): the original answer.
      const createdBefore: string[] = [];
      for (const ancestor of createParents ? ancestorsOf(stream) : []) {
        if (ancestor !== ROOT && (await this.createdBy(ancestor, requestId))) createdBefore.push(ancestor);
      }
      const head = { stream, version: events.length > 0 ? 1n : 0n };
      return { head, created: [...createdBefore, stream], deduplicated: true };
    }
  }

  /** Whether the stream's `$stream.started` event records this request id (it created the stream). */
  private async createdBy(stream: string, requestId: string): Promise<boolean> {
    try {
      const page = await this.store.read(stream, { fromVersion: 0n, direction: 'forward', limit: 1, maxBytes: 1 });
      const first = page.entries[0];
      if (!first || first.version !== 0n) return false;
      const started = (await this.codecs.forReading(stream, [first.payload])).decodeEntry(first).events[0];
      if (started?.type !== STREAM_STARTED) return false;
      const data: unknown = JSON.parse(Buffer.from(started.data).toString('utf8'));
      return typeof data === 'object' && data !== null && 'requestId' in data && data.requestId === requestId;
    } catch {
      // Unreadable (shredded, a key missing): the create cannot be recognised, so it is not.
      return false;
    }
  }

  /** Creates one stream whose parent exists, and tells the subscribers of both. */
  private async createOne(stream: string, initialEvents: Event[], requestId?: string): Promise<Version> {
    const parent = parentOf(stream);
    const recordedAt = new Date();
    const started = [systemEvent(STREAM_STARTED, { stream, parent, ...(requestId !== undefined ? { requestId } : {}) })];
    const childCreated = [systemEvent(CHILD_CREATED, { child: stream })];
    const parentCodec = await this.codecs.forStream(parent, 'write').catch((error: unknown) => {
      throw error instanceof StreamNotFoundError ? new ParentNotFoundError(stream, parent) : error;
    });
    const codec = await this.codecs.forStream(stream, 'create');
    const result = await this.store.createStream({
      stream,
      parent,
      recordedAt,
      startedPayload: codec.entryPayload(started)(0n),
      childCreatedPayload: parentCodec.entryPayload(childCreated),
      ...(initialEvents.length > 0 ? { initialPayload: codec.entryPayload(initialEvents)(1n) } : {}),
    });
    const { hub } = this;
    hub.publish(parent, { version: result.parentVersion, events: childCreated, recordedAt });
    hub.publish(stream, { version: 0n, events: started, recordedAt });
    if (initialEvents.length > 0) hub.publish(stream, { version: 1n, events: initialEvents, recordedAt });
    this.feed.committed();
    return result.headVersion;
  }

  /**
   * Appends one entry of (prepared) events and tells the stream's subscribers. Positional
   * arguments: this is the hot path, and an options object would be one more allocation per call.
   */
  async append(
    stream: string,
    events: Event[],
    expectedVersion: Version | undefined,
    requestId: string | undefined,
    signal?: CallSignal,
  ): Promise<AppendedEntry> {
    const recordedAt = new Date();
    const codec = await this.codecs.forStream(stream, 'write');
    const result = await this.store.append({
      stream,
      payload: codec.entryPayload(events),
      recordedAt,
      ...(expectedVersion !== undefined ? { expectedVersion } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
      ...(signal ? { signal } : {}),
    });
    if (!result.deduplicated) {
      this.hub.publish(stream, { version: result.version, events, recordedAt });
      this.feed.committed();
    }
    return { cursor: { stream, version: result.version }, deduplicated: result.deduplicated };
  }

  /** A page of decoded entries; from the start (forward) or the head (backward) by default. */
  read(
    stream: string,
    fromVersion: Version | undefined,
    direction: ReadDirection,
    limit: number,
    signal?: CallSignal,
  ): Promise<EntryPage> {
    const from = fromVersion ?? (direction === 'forward' ? 0n : LAST_VERSION);
    return this.readEntries(stream, from, direction, limit, signal);
  }

  /**
   * A page as a serialized ReadResponse: what `read` answers, with the stored events framed as
   * they are (decompressed into place, or copied) rather than decoded into objects and encoded
   * again (codec/encoded-messages.ts). Bounded alike, by decoded bytes.
   */
  async readEncoded(
    stream: string,
    fromVersion: Version | undefined,
    direction: ReadDirection,
    limit: number,
    signal?: CallSignal,
  ): Promise<Encoded> {
    const from = fromVersion ?? (direction === 'forward' ? 0n : LAST_VERSION);
    const page = await this.store.read(stream, {
      fromVersion: from,
      direction,
      limit,
      maxBytes: MAX_PAGE_BYTES,
      // Each payload is opened into its message below and not kept.
      transientPayloads: true,
      ...(signal ? { signal } : {}),
    });
    const codec = await this.codecs.forReading(stream, page.entries.map((stored) => stored.payload));
    let storedBytes = 0;
    for (const stored of page.entries) storedBytes += stored.payload.byteLength;
    // Each entry's message is written into the response as its entry is opened.
    const response = new ReadResponseWriter(storedBytes + page.entries.length * ENTRY_MESSAGE_OVERHEAD + READ_RESPONSE_OVERHEAD);
    // The size of each entry's events is known only once it is opened: the entry that would
    // pass the bound is opened, then left for the next page.
    const decoded = { bytes: 0, over: false };
    let written = 0;
    for (const stored of page.entries) {
      response.addEntry(stored.version, stored.recordedAt, (allocate) =>
        codec.openEntryInto(stored, (size) => {
          decoded.over = written > 0 && decoded.bytes + size > MAX_PAGE_BYTES;
          decoded.bytes += size;
          return allocate(size);
        }),
      );
      if (decoded.over) {
        response.dropLast();
        break;
      }
      written++;
    }
    const last = page.entries[written - 1];
    const nextVersion = last ? last.version + (direction === 'forward' ? 1n : -1n) : from;
    const more = page.more || written < page.entries.length;
    return response.finish(more, nextVersion, page.headVersion);
  }

  /**
   * A page of entries, bounded by `limit` and MAX_PAGE_BYTES. `reservedBytes` are already taken
   * in the response by something else (GetSnapshot's snapshot): they count in the bound, and the
   * page may then be empty (with `more` set), since that response is not empty anyway.
   */
  private async readEntries(
    stream: string,
    fromVersion: Version,
    direction: ReadDirection,
    limit: number,
    signal?: CallSignal,
    reservedBytes = 0,
  ): Promise<EntryPage> {
    const page = await this.store.read(stream, {
      fromVersion,
      direction,
      limit,
      // The store returns at least one entry whatever the bound: it is trimmed below if need be.
      maxBytes: Math.max(1, MAX_PAGE_BYTES - reservedBytes),
      ...(signal ? { signal } : {}),
    });
    const codec = await this.codecs.forReading(stream, page.entries.map((stored) => stored.payload));
    // The store bounds the page by stored bytes, which are compressed: the decoded page is
    // bounded again here, or well-compressed entries could make a response over the send limit.
    const entries: Entry[] = [];
    let decodedBytes = reservedBytes;
    for (const stored of page.entries) {
      const opened = codec.openEntry(stored);
      if ((entries.length > 0 || reservedBytes > 0) && decodedBytes + opened.byteLength > MAX_PAGE_BYTES) break;
      decodedBytes += opened.byteLength;
      entries.push(codec.decodeOpenedEntry(stored, opened));
    }
    const last = entries[entries.length - 1];
    const step = direction === 'forward' ? 1n : -1n;
    const nextVersion = last ? last.version + step : fromVersion;
    const more = page.more || entries.length < page.entries.length;
    return { entries, more, nextVersion, headVersion: page.headVersion };
  }

  /**
   * Stored entries as serialized subscription messages, without decoding their events: what
   * a catch-up sends is the stored bytes with version and time around them.
   */
  private async readEncodedEntries(stream: string, fromVersion: Version, limit: number, signal?: AbortSignal) {
    const page = await this.store.read(stream, {
      fromVersion,
      direction: 'forward',
      limit,
      maxBytes: MAX_PAGE_BYTES,
      // Each payload is opened into its message below and not kept.
      transientPayloads: true,
      ...(signal ? { signal } : {}),
    });
    const codec = await this.codecs.forReading(stream, page.entries.map((stored) => stored.payload));
    const entries = page.entries.map((stored) => ({
      version: stored.version,
      // The events are decompressed (or copied) straight into the message.
      message: encodeStoredEntryMessage(stored.version, stored.recordedAt, (allocate) => codec.openEntryInto(stored, allocate)),
    }));
    return { entries, more: page.more };
  }

  /**
   * The messages of a subscription to one stream: catch-up from `fromVersion`, then live entries
   * from the hub, heartbeats while idle; until `lifetime` ends. A missing stream is found by the
   * first catch-up read, which throws StreamNotFoundError (the store port's contract): no
   * separate describe, one store lookup less per subscription. Entries ready together leave up to
   * `maxEntriesPerMessage` per message (1: one `entry` message each). With `writer` (the call the
   * messages are written to), live entries reach an idle subscriber's call from the hub directly.
   */
  subscribe(
    stream: string,
    fromVersion: Version,
    lifetime: Lifetime,
    maxEntriesPerMessage = 1,
    writer?: CallWriter,
  ): AsyncIterable<OutgoingSubscribeMessage> {
    return subscription({
      stream,
      fromVersion,
      hub: this.hub,
      // A network read stops when the subscription ends, rather than keep it (and its feed in
      // the hub) until the read returns; a local read is done before it could, and makes no signal.
      readPage: async (from, lifetime) =>
        this.readEncodedEntries(
          stream,
          from,
          CATCH_UP_PAGE,
          this.store.features.abandonedReadsStop ? lifetime.signal() : undefined,
        ),
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      bufferEntries: this.options.subscriberBufferEntries,
      maxEntriesPerMessage: Math.min(Math.max(1, maxEntriesPerMessage), MAX_ENTRIES_PER_MESSAGE),
      lifetime,
      ...(writer ? { writer } : {}),
      // Other replicas' entries come through the feed's reader: it must be reading first.
      ...(this.store.features.sharedWithOtherProcesses ? { ready: () => this.feed.dispatcher.listen() } : {}),
    });
  }

  /** Stores a snapshot (sealed like the stream's entries) unless a newer one is stored. */
  async putSnapshot(
    stream: string,
    snapshot: { perspective: string; version: Version; data: Uint8Array; contentType: string },
  ): Promise<{ stored: boolean; storedVersion: Version }> {
    const codec = await this.codecs.forStream(stream, 'write');
    const result = await this.store.putSnapshot(
      stream,
      {
        perspective: snapshot.perspective,
        version: snapshot.version,
        payload: codec.snapshotPayload(snapshot.perspective, snapshot.version, snapshot.data),
        contentType: snapshot.contentType,
        storedAt: new Date(),
      },
      // The keys may be cached from before a shred on another replica: the store checks.
      { sealed: codec.sealing },
    );
    return { stored: result.stored, storedVersion: result.storedVersion };
  }

  /** The perspective's snapshot and, with `entriesAfter`, a page of the entries after it. */
  async getSnapshot(
    stream: string,
    perspective: string,
    { entriesAfter, limit }: { entriesAfter: boolean; limit: number },
  ): Promise<SnapshotWithEntries> {
    const record = await this.store.getSnapshot(stream, perspective);
    const codec = await this.codecs.forReading(stream, record ? [record.payload] : []);
    const snapshot = record && {
      perspective: record.perspective,
      version: record.version,
      data: Buffer.from(codec.openSnapshot(record.perspective, record.version, record.payload)),
      contentType: record.contentType,
      storedAt: record.storedAt,
    };
    if (!entriesAfter) return { snapshot, entries: [], more: false, nextVersion: 0n };
    const from = snapshot ? snapshot.version + 1n : 0n;
    // The snapshot shares the response with the entries: a large one leaves room for fewer (or
    // none), and the client reads the rest from `next_version`.
    const page = await this.readEntries(stream, from, 'forward', limit, undefined, snapshot?.data.byteLength ?? 0);
    return { snapshot, entries: page.entries, more: page.more, nextVersion: page.nextVersion };
  }

  deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    return this.store.deleteSnapshot(stream, perspective);
  }

  async describe(stream: string): Promise<StreamDescription> {
    const info = await this.store.describe(stream);
    if (!info) throw new StreamNotFoundError(stream);
    // The system stream "/$" is not counted among the root's children, as ListChildren hides it.
    const hidden = stream === ROOT && (await this.store.describe(SYSTEM_ROOT)) ? 1n : 0n;
    return {
      stream: info.path,
      headVersion: info.headVersion,
      createdAt: info.createdAt,
      childCount: info.childCount - hidden,
      bytesStored: info.bytesStored,
      snapshotPerspectives: await this.store.listPerspectives(stream),
    };
  }

  /** Up to `limit` children after `after`, in path order, system streams left out. */
  async listChildren(stream: string, after: string | undefined, limit: number): Promise<{ children: string[]; more: boolean }> {
    // The root may have the system stream "/$" as a child: the API refuses that path, so it is not
    // listed. One more is fetched for it, so that `more` stays exact.
    const hidden = stream === ROOT ? 1 : 0;
    const fetched = await this.store.listChildren(stream, after, limit + 1 + hidden);
    const children = fetched.filter((child) => !isSystemPath(child)).slice(0, limit + 1);
    const more = children.length > limit;
    return { children: more ? children.slice(0, limit) : children, more };
  }

  /** A new data key for the stream; returns its version. */
  async rotateStreamKey(stream: string): Promise<number> {
    const keys = await this.existingStreamKeys(stream);
    return keys.rotate(stream);
  }

  /** Destroys the stream's keys: its entries and snapshots can no longer be read. */
  async shredStream(stream: string): Promise<void> {
    if (stream === ROOT) {
      throw new StreamNotShreddableError(ROOT, 'every top-level stream records its creation in the root');
    }
    const keys = await this.existingStreamKeys(stream);
    await keys.shred(stream);
    // Subscriptions open here end now, with the error any later call gets; those on other
    // replicas end when their feed reader reaches the shred fence (FeedEntry.shredded).
    this.hub.close(stream, new StreamShreddedError(stream));
  }

  /** The key manager, for an existing stream; encryption must be on. */
  private async existingStreamKeys(stream: string) {
    const keys = this.codecs.keys;
    if (!keys) throw new EncryptionDisabledError();
    if (!(await this.store.describe(stream))) throw new StreamNotFoundError(stream);
    return keys;
  }
}
