import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  Direction,
  type AppendRequest,
  type AppendResponse,
  type CreateStreamRequest,
  type CreateStreamResponse,
  type DeleteSnapshotRequest,
  type DeleteSnapshotResponse,
  type DescribeStreamRequest,
  type DescribeStreamResponse,
  type Entry,
  type Event,
  type EventHorizonServer,
  type GetSnapshotRequest,
  type GetSnapshotResponse,
  type ListChildrenRequest,
  type ListChildrenResponse,
  type PutSnapshotRequest,
  type PutSnapshotResponse,
  type ReadRequest,
  type ReadResponse,
  type RotateStreamKeyRequest,
  type RotateStreamKeyResponse,
  type ShredStreamRequest,
  type ShredStreamResponse,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { Codecs } from '../codec/stream-codec';
import type { Limits } from '../config/config';
import { ROOT, SYSTEM_ROOT, ancestorsOf, isSystemPath, parentOf } from '../model/stream-path';
import { Admission } from '../realtime/admission';
import { Hub } from '../realtime/hub';
import { Lifetime } from '../realtime/lifetime';
import { subscription } from '../realtime/subscription';
import {
  CallAbandonedError,
  EncryptionDisabledError,
  ParentNotFoundError,
  ShuttingDownError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  StreamNotShreddableError,
  StreamShreddedError,
} from '../store/errors';
import type { EventStore, ReadDirection, Version } from '../store/port';
import { encodeStoredEntryMessage, type OutgoingSubscribeMessage } from './encoded-messages';
import { toStatus } from './errors';
import { throwIfMalformed } from './malformed-request';
import {
  Violations,
  checkPerspective,
  checkRequestId,
  checkStream,
  checkVersion,
  contentTypeOf,
  pageSize,
  prepareEvents,
} from './validation';

/** Event types the server itself writes. */
export const STREAM_STARTED = '$stream.started';
export const CHILD_CREATED = '$stream.child-created';

/**
 * A read page stops before this many bytes, stored and decoded alike, to stay well inside the
 * 4 MiB message clients accept by default. One entry alone may pass it (an entry may hold up to
 * maxEntryBytes of events).
 */
const MAX_PAGE_BYTES = 3 * 1024 * 1024;
/** Entries per store read while a subscriber catches up. */
const CATCH_UP_PAGE = 500;
const LAST_VERSION = (1n << 63n) - 1n;
/**
 * Subscriptions that start (catch-up read, first writes) in one turn of the event loop; more wait
 * for the next turns. About 10 ms of work per turn on the shared 2-core test machine.
 */
const SUBSCRIPTIONS_STARTED_PER_TURN = 32;

export interface ServiceOptions {
  store: EventStore;
  codecs: Codecs;
  hub: Hub;
  limits: Limits;
  heartbeatIntervalMs: number;
  subscriberBufferEntries: number;
  logger: Logger;
}

/**
 * The EventHorizon gRPC service: validate → call the store → map errors. It depends only on the
 * store port, the codecs and the realtime hub.
 */
export class EventHorizonService {
  /**
   * The lifetimes of the open subscriptions, ended when the server shuts down. A Set rather than
   * listeners of one AbortSignal: an EventTarget looks through all its listeners on every add,
   * so 2000 subscriptions opening at once cost O(n²).
   */
  private readonly open = new Set<Lifetime>();
  private shuttingDown = false;
  private readonly admission = new Admission(SUBSCRIPTIONS_STARTED_PER_TURN);

  constructor(private readonly options: ServiceOptions) {}

  /** The grpc-js implementation object. */
  handlers(): EventHorizonServer {
    return {
      createStream: this.unary('CreateStream', (request: CreateStreamRequest) => this.createStream(request)),
      append: this.unary('Append', (request: AppendRequest, signal) => this.append(request, signal)),
      read: this.unary('Read', (request: ReadRequest, signal) => this.read(request, signal)),
      putSnapshot: this.unary('PutSnapshot', (request: PutSnapshotRequest) => this.putSnapshot(request)),
      getSnapshot: this.unary('GetSnapshot', (request: GetSnapshotRequest) => this.getSnapshot(request)),
      deleteSnapshot: this.unary('DeleteSnapshot', (request: DeleteSnapshotRequest) => this.deleteSnapshot(request)),
      describeStream: this.unary('DescribeStream', (request: DescribeStreamRequest) => this.describeStream(request)),
      listChildren: this.unary('ListChildren', (request: ListChildrenRequest) => this.listChildren(request)),
      rotateStreamKey: this.unary('RotateStreamKey', (request: RotateStreamKeyRequest) => this.rotateStreamKey(request)),
      shredStream: this.unary('ShredStream', (request: ShredStreamRequest) => this.shredStream(request)),
      // server.ts installs serializeSubscribeResponse for Subscribe, which also takes Encoded messages.
      subscribe: (call: ServerWritableStream<SubscribeRequest, SubscribeResponse>) =>
        void this.subscribe(call as unknown as ServerWritableStream<SubscribeRequest, OutgoingSubscribeMessage>),
    };
  }

  /** Ends every subscription with UNAVAILABLE so that clients resume elsewhere. */
  closeSubscriptions(): void {
    this.shuttingDown = true;
    for (const lifetime of this.open) lifetime.end();
  }

  /**
   * A unary handler. `handle` gets a signal that fires when the caller gives up before it is
   * answered (its deadline passed, or it cancelled), so the store does not write for, or keep
   * waiting on behalf of, a caller that is gone.
   */
  private unary<Req, Res>(name: string, handle: (request: Req, signal: AbortSignal) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const abandoned = new AbortController();
      let answered = false;
      // grpc-js reports 'cancelled' after every call it finished too: only an unanswered one counts.
      call.once('cancelled', () => {
        if (!answered) abandoned.abort(new CallAbandonedError());
      });
      const answer: sendUnaryData<Res> = (error, response) => {
        answered = true;
        callback(error, response);
      };
      // The decoding check runs inside the promise so that it fails like any other validation.
      Promise.resolve()
        .then(() => {
          throwIfMalformed(call.request);
          return handle(call.request, abandoned.signal);
        })
        .then(
          (response) => answer(null, response),
          (error: unknown) => answer(this.fail(name, error)),
        );
    };
  }

  private fail(method: string, error: unknown) {
    const statusObject = toStatus(error);
    if (statusObject.unexpected) this.options.logger.error({ err: error, method }, 'unexpected error');
    return statusObject;
  }

  async createStream(request: CreateStreamRequest): Promise<CreateStreamResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    const events =
      request.events.length > 0 ? prepareEvents(violations, 'events', request.events, this.options.limits) : [];
    checkRequestId(violations, 'request_id', request.requestId);
    violations.throwIfAny();
    if (request.stream === ROOT) throw new StreamAlreadyExistsError(ROOT);
    const requestId = request.requestId === '' ? undefined : request.requestId;

    const created: string[] = [];
    if (request.createParents) {
      for (const ancestor of ancestorsOf(request.stream)) {
        if (ancestor === ROOT || (await this.options.store.describe(ancestor))) continue;
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
      const headVersion = await this.createOne(request.stream, events, requestId);
      created.push(request.stream);
      return { head: { stream: request.stream, version: headVersion }, created, deduplicated: false };
    } catch (error) {
      if (!(error instanceof StreamAlreadyExistsError) || requestId === undefined) throw error;
      if (!(await this.createdBy(request.stream, requestId))) throw error;
      // A retry of a create that succeeded (its reply was lost): the original answer.
      const createdBefore: string[] = [];
      for (const ancestor of request.createParents ? ancestorsOf(request.stream) : []) {
        if (ancestor !== ROOT && (await this.createdBy(ancestor, requestId))) createdBefore.push(ancestor);
      }
      const head = { stream: request.stream, version: events.length > 0 ? 1n : 0n };
      return { head, created: [...createdBefore, request.stream], deduplicated: true };
    }
  }

  /** Whether the stream's `$stream.started` event records this request id (it created the stream). */
  private async createdBy(stream: string, requestId: string): Promise<boolean> {
    try {
      const page = await this.options.store.read(stream, { fromVersion: 0n, direction: 'forward', limit: 1, maxBytes: 1 });
      const first = page.entries[0];
      if (!first || first.version !== 0n) return false;
      const started = (await this.options.codecs.forReading(stream, [first.payload])).decodeEntry(first).events[0];
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
    const parentCodec = await this.options.codecs.forStream(parent, 'write').catch((error: unknown) => {
      throw error instanceof StreamNotFoundError ? new ParentNotFoundError(stream, parent) : error;
    });
    const codec = await this.options.codecs.forStream(stream, 'create');
    const result = await this.options.store.createStream({
      stream,
      parent,
      recordedAt,
      startedPayload: codec.entryPayload(started)(0n),
      childCreatedPayload: parentCodec.entryPayload(childCreated),
      ...(initialEvents.length > 0 ? { initialPayload: codec.entryPayload(initialEvents)(1n) } : {}),
    });
    const { hub } = this.options;
    hub.publish(parent, { version: result.parentVersion, events: childCreated, recordedAt });
    hub.publish(stream, { version: 0n, events: started, recordedAt });
    if (initialEvents.length > 0) hub.publish(stream, { version: 1n, events: initialEvents, recordedAt });
    return result.headVersion;
  }

  async append(request: AppendRequest, signal?: AbortSignal): Promise<AppendResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkVersion(violations, 'expected_version', request.expectedVersion);
    checkRequestId(violations, 'request_id', request.requestId);
    const events = prepareEvents(violations, 'events', request.events, this.options.limits);
    violations.throwIfAny();

    const recordedAt = new Date();
    const codec = await this.options.codecs.forStream(request.stream, 'write');
    const result = await this.options.store.append({
      stream: request.stream,
      payload: codec.entryPayload(events),
      recordedAt,
      ...(request.expectedVersion !== undefined ? { expectedVersion: request.expectedVersion } : {}),
      ...(request.requestId !== '' ? { requestId: request.requestId } : {}),
      ...(signal ? { signal } : {}),
    });
    if (!result.deduplicated) {
      this.options.hub.publish(request.stream, { version: result.version, events, recordedAt });
    }
    return { cursor: { stream: request.stream, version: result.version }, deduplicated: result.deduplicated };
  }

  async read(request: ReadRequest, signal?: AbortSignal): Promise<ReadResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkVersion(violations, 'from_version', request.fromVersion);
    const limit = pageSize(violations, 'limit', request.limit);
    violations.throwIfAny();
    const direction: ReadDirection = request.direction === Direction.DIRECTION_BACKWARD ? 'backward' : 'forward';
    const from = request.fromVersion ?? (direction === 'forward' ? 0n : LAST_VERSION);
    const page = await this.readEntries(request.stream, from, direction, limit, signal);
    return { entries: page.entries, more: page.more, nextVersion: page.nextVersion, headVersion: page.headVersion };
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
    signal?: AbortSignal,
    reservedBytes = 0,
  ) {
    const page = await this.options.store.read(stream, {
      fromVersion,
      direction,
      limit,
      // The store returns at least one entry whatever the bound: it is trimmed below if need be.
      maxBytes: Math.max(1, MAX_PAGE_BYTES - reservedBytes),
      ...(signal ? { signal } : {}),
    });
    const codec = await this.options.codecs.forReading(stream, page.entries.map((stored) => stored.payload));
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
  private async readEncodedEntries(stream: string, fromVersion: Version, limit: number) {
    const page = await this.options.store.read(stream, { fromVersion, direction: 'forward', limit, maxBytes: MAX_PAGE_BYTES });
    const codec = await this.options.codecs.forReading(stream, page.entries.map((stored) => stored.payload));
    const entries = page.entries.map((stored) => ({
      version: stored.version,
      message: encodeStoredEntryMessage(stored.version, stored.recordedAt, codec.openEntry(stored)),
    }));
    return { entries, more: page.more };
  }

  async subscribe(call: ServerWritableStream<SubscribeRequest, OutgoingSubscribeMessage>): Promise<void> {
    const request = call.request;
    const lifetime = new Lifetime();
    this.open.add(lifetime);
    call.on('cancelled', () => lifetime.end());
    try {
      if (this.shuttingDown) throw new ShuttingDownError();
      throwIfMalformed(request);
      const violations = new Violations();
      checkStream(violations, 'stream', request.stream);
      checkVersion(violations, 'from_version', request.fromVersion);
      violations.throwIfAny();
      // A burst of new subscriptions starts a few per turn of the event loop (admission.ts).
      await this.admission.enter();
      if (!lifetime.ended) {
        // A missing stream is found by the first catch-up read, which throws StreamNotFoundError
        // (the store port's contract): no separate describe, one store lookup less per subscription.
        const messages = subscription({
          stream: request.stream,
          fromVersion: request.fromVersion ?? 0n,
          hub: this.options.hub,
          readPage: async (from) => this.readEncodedEntries(request.stream, from, CATCH_UP_PAGE),
          heartbeatIntervalMs: this.options.heartbeatIntervalMs,
          bufferEntries: this.options.subscriberBufferEntries,
          lifetime,
        });
        for await (const message of messages) {
          // Flow control: wait until the client has read, or the call ends.
          if (!call.write(message)) await drained(call, lifetime);
          if (lifetime.ended) break;
        }
      }
      if (this.shuttingDown && !call.cancelled) throw new ShuttingDownError();
      // grpc-js has destroyed a cancelled call: ending it would only build an error to ignore.
      if (!call.cancelled) call.end();
    } catch (error) {
      if (!call.cancelled) call.emit('error', this.fail('Subscribe', error));
    } finally {
      this.open.delete(lifetime);
      lifetime.end();
    }
  }

  async putSnapshot(request: PutSnapshotRequest): Promise<PutSnapshotResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkPerspective(violations, 'perspective', request.perspective);
    checkVersion(violations, 'version', request.version);
    const contentType = contentTypeOf(violations, 'content_type', request.contentType);
    const { limits } = this.options;
    if (request.data.byteLength > limits.maxSnapshotBytes) {
      violations.add('data', `must be at most max_snapshot_bytes = ${limits.maxSnapshotBytes} bytes`);
    }
    violations.throwIfAny();
    const codec = await this.options.codecs.forStream(request.stream, 'write');
    const result = await this.options.store.putSnapshot(
      request.stream,
      {
        perspective: request.perspective,
        version: request.version,
        payload: codec.snapshotPayload(request.perspective, request.version, request.data),
        contentType,
        storedAt: new Date(),
      },
      // The keys may be cached from before a shred on another replica: the store checks.
      { sealed: codec.sealing },
    );
    return { stored: result.stored, storedVersion: result.storedVersion };
  }

  async getSnapshot(request: GetSnapshotRequest): Promise<GetSnapshotResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkPerspective(violations, 'perspective', request.perspective);
    const limit = pageSize(violations, 'limit', request.limit);
    violations.throwIfAny();
    const record = await this.options.store.getSnapshot(request.stream, request.perspective);
    const codec = await this.options.codecs.forReading(request.stream, record ? [record.payload] : []);
    const snapshot = record && {
      perspective: record.perspective,
      version: record.version,
      data: Buffer.from(codec.openSnapshot(record.perspective, record.version, record.payload)),
      contentType: record.contentType,
      storedAt: record.storedAt,
    };
    if (!request.entriesAfter) return { snapshot, entries: [], more: false, nextVersion: 0n };
    const from = snapshot ? snapshot.version + 1n : 0n;
    // The snapshot shares the response with the entries: a large one leaves room for fewer (or
    // none), and the client reads the rest from `next_version`.
    const page = await this.readEntries(request.stream, from, 'forward', limit, undefined, snapshot?.data.byteLength ?? 0);
    return { snapshot, entries: page.entries, more: page.more, nextVersion: page.nextVersion };
  }

  async deleteSnapshot(request: DeleteSnapshotRequest): Promise<DeleteSnapshotResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkPerspective(violations, 'perspective', request.perspective);
    violations.throwIfAny();
    return { deleted: await this.options.store.deleteSnapshot(request.stream, request.perspective) };
  }

  async describeStream(request: DescribeStreamRequest): Promise<DescribeStreamResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    violations.throwIfAny();
    const info = await this.options.store.describe(request.stream);
    if (!info) throw new StreamNotFoundError(request.stream);
    // The system stream "/$" is not counted among the root's children, as ListChildren hides it.
    const hidden = request.stream === ROOT && (await this.options.store.describe(SYSTEM_ROOT)) ? 1n : 0n;
    return {
      stream: info.path,
      headVersion: info.headVersion,
      createdAt: info.createdAt,
      childCount: info.childCount - hidden,
      bytesStored: info.bytesStored,
      snapshotPerspectives: await this.options.store.listPerspectives(request.stream),
    };
  }

  async listChildren(request: ListChildrenRequest): Promise<ListChildrenResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    const limit = pageSize(violations, 'limit', request.limit);
    const after = request.pageToken === '' ? undefined : decodePageToken(request.pageToken);
    if (after === null) violations.add('page_token', 'is not a token returned by ListChildren');
    violations.throwIfAny();
    // The root may have the system stream "/$" as a child: the API refuses that path, so it is not
    // listed. One more is fetched for it, so that `more` stays exact.
    const hidden = request.stream === ROOT ? 1 : 0;
    const fetched = await this.options.store.listChildren(request.stream, after ?? undefined, limit + 1 + hidden);
    const children = fetched.filter((child) => !isSystemPath(child)).slice(0, limit + 1);
    const more = children.length > limit;
    const page = more ? children.slice(0, limit) : children;
    const last = page[page.length - 1];
    return { children: page, nextPageToken: more && last ? encodePageToken(last) : '' };
  }

  async rotateStreamKey(request: RotateStreamKeyRequest): Promise<RotateStreamKeyResponse> {
    const keys = await this.existingStreamKeys(request.stream);
    return { dekVersion: await keys.rotate(request.stream) };
  }

  async shredStream(request: ShredStreamRequest): Promise<ShredStreamResponse> {
    // System streams ("/$...") are refused as invalid paths by the validation, like in every call.
    if (request.stream === ROOT) {
      throw new StreamNotShreddableError(ROOT, 'every top-level stream records its creation in the root');
    }
    const keys = await this.existingStreamKeys(request.stream);
    await keys.shred(request.stream);
    // Subscriptions open here end now, with the error any later call gets; those on other
    // replicas end when their tailer's next poll reaches the shred fence.
    this.options.hub.close(request.stream, new StreamShreddedError(request.stream));
    return {};
  }

  /** The key manager, for a valid existing stream; encryption must be on. */
  private async existingStreamKeys(stream: string) {
    const violations = new Violations();
    checkStream(violations, 'stream', stream);
    violations.throwIfAny();
    const keys = this.options.codecs.keys;
    if (!keys) throw new EncryptionDisabledError();
    if (!(await this.options.store.describe(stream))) throw new StreamNotFoundError(stream);
    return keys;
  }
}

/** Resolves when the call can take more (`drain`) or when the subscription ends. */
function drained(call: ServerWritableStream<SubscribeRequest, OutgoingSubscribeMessage>, lifetime: Lifetime): Promise<void> {
  if (lifetime.ended) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      stopListening();
      resolve();
    };
    call.on('drain', done);
    const stopListening = lifetime.onEnd(done);
  });
}

/** The root's entry 0, written once when the store is first initialised. */
export function rootStartedEvents(): Event[] {
  return [systemEvent(STREAM_STARTED, { stream: ROOT })];
}

function systemEvent(type: string, data: Record<string, string>): Event {
  return {
    id: crypto.randomUUID(),
    type,
    data: Buffer.from(JSON.stringify(data)),
    contentType: 'application/json',
    metadata: {},
    occurredAt: undefined,
  };
}

/** Page tokens are opaque to clients: the last path of the page, base64url-encoded. */
function encodePageToken(lastPath: string): string {
  return Buffer.from(lastPath, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string | null {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  return decoded.startsWith('/') && encodePageToken(decoded) === token ? decoded : null;
}
