import type { Metadata, ServerUnaryCall, ServerWritableStream, StatusObject, handleUnaryCall, sendUnaryData } from '@grpc/grpc-js';
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
  type EventHorizonServer,
  type GetSnapshotRequest,
  type GetSnapshotResponse,
  type ListChildrenRequest,
  type ListChildrenResponse,
  type PutSnapshotRequest,
  type PutSnapshotResponse,
  type AckRequest,
  type ConsumeRequest,
  type ConsumeResponse,
  type CreateConsumerGroupRequest,
  type DeleteConsumerGroupRequest,
  type DescribeConsumerGroupRequest,
  type ResetConsumerGroupRequest,
  type UpdateConsumerGroupRequest,
  type ReadFeedRequest,
  type ReadFeedResponse,
  type ReadRequest,
  type ReadResponse,
  type RotateStreamKeyRequest,
  type RotateStreamKeyResponse,
  type ShredStreamRequest,
  type ShredStreamResponse,
  type SubscribeFeedRequest,
  type SubscribeFeedResponse,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { Encoded, OutgoingReadResponse, OutgoingSubscribeMessage } from '../codec/encoded-messages';
import type { Limits } from '../config/config';
import type { EventStoreCore } from '../core/event-store-core';
import { CallCancellation, type CallSignal } from '../core/call-signal';
import { ShuttingDownError, StreamNotFoundError } from '../core/errors';
import type { StreamReadCheck } from '../feed/feed-filter';
import type { OutgoingFeedMessage } from '../feed/feed-messages';
import { Admission } from '../realtime/admission';
import { requestContextOf } from '../observability/request-context';
import type { CallWriter } from '../realtime/hub';
import { Lifetime } from '../realtime/lifetime';
import type { ConsumerGroups } from '../groups/consumer-groups';
import { ConsumerGroupsApi } from './consumer-groups-api';
import { toStatus } from './errors';
import { throwIfMalformed } from './malformed-request';
import {
  Violations,
  checkPerspective,
  checkRequestId,
  checkStream,
  checkPosition,
  checkVersion,
  contentTypeOf,
  feedSelectionOf,
  pageSize,
  prepareEvents,
} from './validation';

/**
 * Subscriptions that start (catch-up read, first writes) in one turn of the event loop; more wait
 * for the next turns. About 10 ms of work per turn on the shared 2-core test machine.
 */
const SUBSCRIPTIONS_STARTED_PER_TURN = 32;

export interface GrpcApiOptions {
  core: EventStoreCore;
  limits: Limits;
  logger: Logger;
  /**
   * Which streams the caller of a call may read, by its metadata (its key's policy, as it is
   * when asked); undefined without auth. A feed delivers only those streams' entries.
   */
  readCheck?: (metadata: Metadata) => StreamReadCheck | undefined;
  /** The consumer groups of this process (docs/consumer-groups.md). */
  groups: ConsumerGroups;
}

/** Checkpoint defaults of SubscribeFeed (the request's 0). */
const DEFAULT_CHECKPOINT_EVERY = 1000;
const DEFAULT_CHECKPOINT_INTERVAL_MS = 5000;
/** Checkpoints no more often than this: a smaller interval is refused. */
const MIN_CHECKPOINT_INTERVAL_MS = 100;

/**
 * What serving a server-streaming call needs of it: grpc-js's ServerWritableStream, or the web
 * console's HTTP adapter (src/console/console-calls.ts), which serves the same subscriptions.
 */
export interface StreamingCall<Req, Out> {
  readonly request: Req;
  readonly metadata: Metadata;
  /** Whether the client went away (grpc-js destroys a cancelled call). */
  readonly cancelled: boolean;
  /** Writes a message; false when the client should read before the next one ('drain'). */
  write(message: Out): boolean;
  /** Whether writes wait for a 'drain' (the hub writes live entries only to a call that does not). */
  readonly writableNeedDrain: boolean;
  end(): void;
  on(event: 'cancelled' | 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
  /** Ends the call with an error status. */
  emit(event: 'error', status: StatusObject): boolean;
}

/** A unary method's work, as the gRPC handler and the console call it. */
type UnaryHandle = (request: unknown, signal: CallSignal, metadata: Metadata) => Promise<unknown>;

/**
 * The EventHorizon gRPC service: validate → call the core → map errors. The rules of the event
 * store live in the core (src/core/); this class only speaks gRPC.
 */
export class GrpcApi {
  /**
   * The lifetimes of the open subscriptions, ended when the server shuts down. A Set rather than
   * listeners of one AbortSignal: an EventTarget looks through all its listeners on every add,
   * so 2000 subscriptions opening at once cost O(n²).
   */
  private readonly open = new Set<Lifetime>();
  private shuttingDown = false;
  private readonly admission = new Admission(SUBSCRIPTIONS_STARTED_PER_TURN);
  private readonly core: EventStoreCore;
  private readonly groups: ConsumerGroupsApi;
  /** The unary methods' work by method name, filled by `handlers()`. */
  private readonly unaryHandles = new Map<string, UnaryHandle>();
  private served: EventHorizonServer | undefined;

  constructor(private readonly options: GrpcApiOptions) {
    this.core = options.core;
    this.groups = new ConsumerGroupsApi(options.groups, options.core.store, (stream) => this.mustExist(stream));
  }

  /** The grpc-js implementation object (built once). */
  handlers(): EventHorizonServer {
    this.served ??= this.buildHandlers();
    return this.served;
  }

  /**
   * Serves a unary call for another transport (the web console): the very work the gRPC handler
   * of `method` does, with the same validation and the same core call. The caller has
   * authorized the call as the auth interceptor does; errors are thrown as domain errors.
   */
  invokeUnary(method: string, request: unknown, signal: CallSignal, metadata: Metadata): Promise<unknown> {
    this.handlers();
    const handle = this.unaryHandles.get(method);
    if (!handle) return Promise.reject(new Error(`no unary method ${method}`));
    return Promise.resolve().then(() => {
      throwIfMalformed(request);
      return handle(request, signal, metadata);
    });
  }

  private buildHandlers(): EventHorizonServer {
    return {
      createStream: this.unary('CreateStream', (request: CreateStreamRequest) => this.createStream(request)),
      append: this.unary('Append', (request: AppendRequest, signal) => this.append(request, signal)),
      // server.ts installs serializeReadResponse for Read, which also takes an Encoded page: read()
      // answers OutgoingReadResponse, which grpc-js's types (made for the default serializer) do not know.
      read: this.unary('Read', (request: ReadRequest, signal) => this.read(request, signal)) as handleUnaryCall<ReadRequest, ReadResponse>,
      putSnapshot: this.unary('PutSnapshot', (request: PutSnapshotRequest) => this.putSnapshot(request)),
      getSnapshot: this.unary('GetSnapshot', (request: GetSnapshotRequest) => this.getSnapshot(request)),
      deleteSnapshot: this.unary('DeleteSnapshot', (request: DeleteSnapshotRequest) => this.deleteSnapshot(request)),
      describeStream: this.unary('DescribeStream', (request: DescribeStreamRequest) => this.describeStream(request)),
      listChildren: this.unary('ListChildren', (request: ListChildrenRequest) => this.listChildren(request)),
      rotateStreamKey: this.unary('RotateStreamKey', (request: RotateStreamKeyRequest) => this.rotateStreamKey(request)),
      shredStream: this.unary('ShredStream', (request: ShredStreamRequest) => this.shredStream(request)),
      // server.ts installs serializeSubscribeResponse for Subscribe, which also takes Encoded messages:
      // subscribe() writes OutgoingSubscribeMessage to the call.
      // void: subscribe catches its errors and ends the call with them; it does not reject.
      subscribe: (call: ServerWritableStream<SubscribeRequest, SubscribeResponse>) =>
        void this.subscribe(call),
      // server.ts installs serializeSubscribeFeedResponse for SubscribeFeed, as for Subscribe.
      subscribeFeed: (call: ServerWritableStream<SubscribeFeedRequest, SubscribeFeedResponse>) =>
        void this.subscribeFeed(call),
      readFeed: this.unary('ReadFeed', (request: ReadFeedRequest, _signal, metadata) => this.readFeed(request, metadata)),
      createConsumerGroup: this.unary('CreateConsumerGroup', (request: CreateConsumerGroupRequest) => this.groups.create(request)),
      describeConsumerGroup: this.unary('DescribeConsumerGroup', (request: DescribeConsumerGroupRequest) => this.groups.describe(request)),
      listConsumerGroups: this.unary('ListConsumerGroups', () => this.groups.list()),
      updateConsumerGroup: this.unary('UpdateConsumerGroup', (request: UpdateConsumerGroupRequest) => this.groups.update(request)),
      deleteConsumerGroup: this.unary('DeleteConsumerGroup', (request: DeleteConsumerGroupRequest) => this.groups.delete(request)),
      resetConsumerGroup: this.unary('ResetConsumerGroup', (request: ResetConsumerGroupRequest) => this.groups.reset(request)),
      // void: serveStream catches its errors and ends the call with them.
      consume: (call: ServerWritableStream<ConsumeRequest, ConsumeResponse>) =>
        void this.serveStream('Consume', call, (request) => this.groups.prepareConsume(request, this.options.readCheck?.(call.metadata))),
      ack: this.unary('Ack', (request: AckRequest) => this.groups.ack(request)),
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
  private unary<Req, Res>(name: string, handle: (request: Req, signal: CallSignal, metadata: Metadata) => Promise<Res>) {
    // The request type is the method's own: `invokeUnary` passes what its deserializer made.
    this.unaryHandles.set(name, handle as UnaryHandle);
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      // Not an AbortController per call: most calls are never cancelled (call-signal.ts).
      const abandoned = new CallCancellation();
      let answered = false;
      // grpc-js reports 'cancelled' after every call it finished too: only an unanswered one counts.
      call.once('cancelled', () => {
        if (!answered) abandoned.cancel();
      });
      const answer: sendUnaryData<Res> = (error, response) => {
        answered = true;
        callback(error, response);
      };
      // The decoding check runs inside the promise so that it fails like any other validation
      // (and so do the handlers' own checks, which throw before they return a promise).
      Promise.resolve()
        .then(() => {
          throwIfMalformed(call.request);
          return handle(call.request, abandoned, call.metadata);
        })
        .then(
          (response) => answer(null, response),
          (error: unknown) => answer(this.fail(name, error, call.metadata)),
        );
    };
  }

  /** The status of a failed call; an unexpected error is logged, with the call's request context. */
  fail(method: string, error: unknown, metadata: Metadata) {
    const statusObject = toStatus(error);
    if (statusObject.unexpected) {
      this.options.logger.error({ ...requestContextOf(metadata), err: error, method }, 'unexpected error');
    }
    return statusObject;
  }

  createStream(request: CreateStreamRequest): Promise<CreateStreamResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    const events =
      request.events.length > 0 ? prepareEvents(violations, 'events', request.events, this.options.limits) : [];
    checkRequestId(violations, 'request_id', request.requestId);
    violations.throwIfAny();
    return this.core.createStream(request.stream, events, {
      requestId: request.requestId === '' ? undefined : request.requestId,
      createParents: request.createParents,
    });
  }

  // Not async, and the core's answer is the response as it is: no extra await or object per Append.
  append(request: AppendRequest, signal?: CallSignal): Promise<AppendResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkVersion(violations, 'expected_version', request.expectedVersion);
    checkRequestId(violations, 'request_id', request.requestId);
    const events = prepareEvents(violations, 'events', request.events, this.options.limits);
    violations.throwIfAny();
    const requestId = request.requestId !== '' ? request.requestId : undefined;
    return this.core.append(request.stream, events, request.expectedVersion, requestId, signal);
  }

  /**
   * The page serialized by the core from the stored events (server.ts installs
   * serializeReadResponse for Read, which passes it through).
   */
  read(request: ReadRequest, signal?: CallSignal): Promise<OutgoingReadResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkVersion(violations, 'from_version', request.fromVersion);
    const limit = pageSize(violations, 'limit', request.limit);
    violations.throwIfAny();
    const direction = request.direction === Direction.DIRECTION_BACKWARD ? 'backward' : 'forward';
    return this.core.readEncoded(request.stream, request.fromVersion, direction, limit, signal);
  }

  subscribe(call: StreamingCall<SubscribeRequest, OutgoingSubscribeMessage>): Promise<void> {
    return this.serveStream('Subscribe', call, (request) => {
      const violations = new Violations();
      checkStream(violations, 'stream', request.stream);
      checkVersion(violations, 'from_version', request.fromVersion);
      violations.throwIfAny();
      // Unset, 0 and 1 alike: one entry per message, as for a client that predates the field.
      // serveStream writes each message before it asks for the next: the hub may write live
      // entries to the call itself while the subscription waits (CallWriter).
      return (lifetime) =>
        this.core.subscribe(request.stream, request.fromVersion ?? 0n, lifetime, request.maxEntriesPerMessage ?? 1, new StreamCallWriter(call, lifetime));
    });
  }

  subscribeFeed(call: StreamingCall<SubscribeFeedRequest, OutgoingFeedMessage>): Promise<void> {
    return this.serveStream('SubscribeFeed', call, (request) => {
      const violations = new Violations();
      const selection = feedSelectionOf(violations, 'selector', request.selector);
      checkPosition(violations, 'after_position', request.afterPosition);
      const intervalMs = request.checkpointIntervalMs === 0 ? DEFAULT_CHECKPOINT_INTERVAL_MS : request.checkpointIntervalMs;
      if (intervalMs < MIN_CHECKPOINT_INTERVAL_MS) {
        violations.add('checkpoint_interval_ms', `must be 0 (${DEFAULT_CHECKPOINT_INTERVAL_MS}) or at least ${MIN_CHECKPOINT_INTERVAL_MS}`);
      }
      violations.throwIfAny();
      const mayRead = this.options.readCheck?.(call.metadata);
      return async (lifetime) => {
        await this.mustExist(selection.subtree.path);
        return this.core.feed.subscribe(selection, {
          after: request.fromNow ? undefined : request.afterPosition,
          checkpointEvery: request.checkpointEveryEntries === 0 ? DEFAULT_CHECKPOINT_EVERY : request.checkpointEveryEntries,
          checkpointIntervalMs: intervalMs,
          mayRead,
          // Unset, 0 and 1 alike: one entry per message, as for a client that predates the field.
          maxEntriesPerMessage: request.maxEntriesPerMessage ?? 1,
          lifetime,
        });
      };
    });
  }

  async readFeed(request: ReadFeedRequest, metadata?: Metadata): Promise<ReadFeedResponse> {
    const violations = new Violations();
    const selection = feedSelectionOf(violations, 'selector', request.selector);
    checkPosition(violations, 'after_position', request.afterPosition);
    const limit = pageSize(violations, 'limit', request.limit);
    violations.throwIfAny();
    await this.mustExist(selection.subtree.path);
    const mayRead = metadata && this.options.readCheck?.(metadata);
    const page = await this.core.feed.read(selection, request.afterPosition, limit, mayRead);
    return { entries: page.entries, nextAfterPosition: page.reached, more: page.more, headPosition: page.head };
  }

  /** Throws StreamNotFoundError unless the stream exists. */
  private async mustExist(stream: string): Promise<void> {
    if (!(await this.core.store.describe(stream))) throw new StreamNotFoundError(stream);
  }

  /**
   * Serves a server-streaming call: `prepare` validates the request (throwing its errors) and
   * returns how to start the messages; they are written with flow control until they end, the
   * client goes, or the server shuts down (UNAVAILABLE).
   */
  private async serveStream<Req, Out>(
    method: string,
    call: StreamingCall<Req, Out>,
    prepare: (request: Req) => (lifetime: Lifetime) => AsyncIterable<Out> | Promise<AsyncIterable<Out>>,
  ): Promise<void> {
    const request = call.request;
    const lifetime = new Lifetime();
    this.open.add(lifetime);
    call.on('cancelled', () => lifetime.end());
    try {
      if (this.shuttingDown) throw new ShuttingDownError();
      throwIfMalformed(request);
      const start = prepare(request);
      // A burst of new subscriptions starts a few per turn of the event loop (admission.ts).
      await this.admission.enter();
      if (!lifetime.ended) {
        const messages = await start(lifetime);
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
      if (!call.cancelled) call.emit('error', this.fail(method, error, call.metadata));
    } finally {
      this.open.delete(lifetime);
      lifetime.end();
    }
  }

  putSnapshot(request: PutSnapshotRequest): Promise<PutSnapshotResponse> {
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
    return this.core.putSnapshot(request.stream, {
      perspective: request.perspective,
      version: request.version,
      data: request.data,
      contentType,
    });
  }

  getSnapshot(request: GetSnapshotRequest): Promise<GetSnapshotResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkPerspective(violations, 'perspective', request.perspective);
    const limit = pageSize(violations, 'limit', request.limit);
    violations.throwIfAny();
    return this.core.getSnapshot(request.stream, request.perspective, { entriesAfter: request.entriesAfter, limit });
  }

  async deleteSnapshot(request: DeleteSnapshotRequest): Promise<DeleteSnapshotResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    checkPerspective(violations, 'perspective', request.perspective);
    violations.throwIfAny();
    return { deleted: await this.core.deleteSnapshot(request.stream, request.perspective) };
  }

  describeStream(request: DescribeStreamRequest): Promise<DescribeStreamResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    violations.throwIfAny();
    return this.core.describe(request.stream);
  }

  async listChildren(request: ListChildrenRequest): Promise<ListChildrenResponse> {
    const violations = new Violations();
    checkStream(violations, 'stream', request.stream);
    const limit = pageSize(violations, 'limit', request.limit);
    const after = request.pageToken === '' ? undefined : decodePageToken(request.pageToken);
    if (after === null) violations.add('page_token', 'is not a token returned by ListChildren');
    violations.throwIfAny();
    const { children, more } = await this.core.listChildren(request.stream, after ?? undefined, limit);
    const last = children[children.length - 1];
    return { children, nextPageToken: more && last ? encodePageToken(last) : '' };
  }

  async rotateStreamKey(request: RotateStreamKeyRequest): Promise<RotateStreamKeyResponse> {
    checkStreamOnly(request.stream);
    return { dekVersion: await this.core.rotateStreamKey(request.stream) };
  }

  async shredStream(request: ShredStreamRequest): Promise<ShredStreamResponse> {
    // System streams ("/$...") are refused as invalid paths by the validation, like in every call.
    checkStreamOnly(request.stream);
    await this.core.shredStream(request.stream);
    return {};
  }
}

/** Validates a request whose only field is its stream. */
function checkStreamOnly(stream: string): void {
  const violations = new Violations();
  checkStream(violations, 'stream', stream);
  violations.throwIfAny();
}

/** Resolves when the call can take more (`drain`) or when the subscription ends. */
function drained<Req, Out>(call: StreamingCall<Req, Out>, lifetime: Lifetime): Promise<void> {
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

/** A subscription's call as the hub writes live entries to it (hub.ts). */
class StreamCallWriter implements CallWriter {
  constructor(
    private readonly call: StreamingCall<SubscribeRequest, OutgoingSubscribeMessage>,
    private readonly lifetime: Lifetime,
  ) {}

  write(message: Encoded): boolean {
    return this.call.write(message);
  }

  get blocked(): boolean {
    return this.lifetime.ended || this.call.writableNeedDrain;
  }

  drained(): Promise<void> {
    return drained(this.call, this.lifetime);
  }
}

/** Page tokens are opaque to clients: the last path of the page, base64url-encoded. */
function encodePageToken(lastPath: string): string {
  return Buffer.from(lastPath, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string | null {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  return decoded.startsWith('/') && encodePageToken(decoded) === token ? decoded : null;
}
