/**
 * `connect(address, options)`: a promise-based Event Horizon client over the generated grpc-js
 * stubs, with deadlines, keepalive, TLS, bearer tokens and typed errors.
 */
import {
  credentials,
  InterceptingCall,
  Metadata,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  type Interceptor,
  type InterceptorOptions,
  type NextCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { toClientError } from './errors';
import {
  AckRequest,
  type AckResponse,
  CreateConsumerGroupRequest,
  type CreateConsumerGroupResponse,
  DeleteConsumerGroupRequest,
  DescribeConsumerGroupRequest,
  type DescribeConsumerGroupResponse,
  ListConsumerGroupsRequest,
  type ListConsumerGroupsResponse,
  ResetConsumerGroupRequest,
  type ResetConsumerGroupResponse,
  UpdateConsumerGroupRequest,
  type UpdateConsumerGroupResponse,
  AppendRequest,
  CreateStreamRequest,
  DeleteSnapshotRequest,
  DescribeStreamRequest,
  EventHorizonClient,
  GetSnapshotRequest,
  ListChildrenRequest,
  PutSnapshotRequest,
  ReadFeedRequest,
  ReadRequest,
  RotateStreamKeyRequest,
  ShredStreamRequest,
  type AppendResponse,
  type CreateStreamResponse,
  type DeepPartial,
  type DeleteSnapshotResponse,
  type DescribeStreamResponse,
  type Entry,
  type GetSnapshotResponse,
  type ListChildrenResponse,
  type PutSnapshotResponse,
  type ReadFeedResponse,
  type ReadResponse,
  type RotateStreamKeyResponse,
  type ShredStreamResponse,
} from './gen/eventhorizon/v1/eventhorizon';
import { consume, type ConsumeHandler, type ConsumeOptions, type GroupConsumer } from './consumer';
import { follow, type FeedItem, type FollowOptions } from './feed';
import { resumableSubscription, type SubscribeOptions, type SubscriptionItem } from './subscription';

/** TLS settings; PEM contents, not file names. */
export interface TlsOptions {
  /** CA certificates that sign the server's certificate (default: the system's roots). */
  ca?: Buffer;
  /** Client certificate chain, for mutual TLS (with `key`). */
  cert?: Buffer;
  /** Client private key, for mutual TLS (with `cert`). */
  key?: Buffer;
  /** Expect this name in the server's certificate instead of the address's host. */
  serverName?: string;
}

/** Where a bearer token comes from: a fixed string or a function asked before every call. */
export type TokenSource = string | (() => string | Promise<string>);

/** Options of `connect`. */
export interface ConnectOptions {
  /** TLS: `true` for the system's roots, or explicit certificates. Default: plaintext. */
  tls?: boolean | TlsOptions;
  /** Sent as `authorization: Bearer <token>` with every call. */
  token?: TokenSource;
  /**
   * Send `token` over a plaintext connection too (local development only). Without it a token
   * on a plaintext connection is refused, since anyone on the path could read it.
   */
  allowInsecureToken?: boolean;
  /** Deadline of each unary call in milliseconds (default 10 000); subscriptions have none. */
  deadlineMs?: number;
  /**
   * HTTP/2 keepalive pings while calls are open, so that a long-lived subscription notices a
   * dead server or a silently dropped connection. Defaults match the server's: 60 s / 20 s.
   */
  keepalive?: { timeMs?: number; timeoutMs?: number };
  /**
   * How grpc-js paces its attempts to re-establish a lost connection (default 1 s growing to
   * 10 s; grpc-js alone would grow to 120 s, too slow for a subscription waiting on a restart).
   */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Further grpc-js channel options, for what this interface does not cover. */
  channelOptions?: ChannelOptions;
}

/** Per-call settings. */
export interface CallSettings {
  /** Overrides the connection's deadline for this call. */
  deadlineMs?: number;
  /** Cancels the call; it then fails with CancelledError. */
  signal?: AbortSignal;
  /** Extra request metadata. */
  metadata?: Metadata;
  /** Wait for the connection to be (re-)established instead of failing at once with UNAVAILABLE. */
  waitForReady?: boolean;
}

/** Options of `readAll`. */
export interface ReadAllOptions extends CallSettings {
  /** First version to read (default 0). */
  fromVersion?: bigint | number;
  /** Entries per page (default: the server's, 100). */
  pageSize?: number;
}

const DEFAULT_DEADLINE_MS = 10_000;

/**
 * The HTTP/2 flow-control window of the client's connections, in bytes (per stream, and per
 * connection). grpc-js keeps HTTP/2's 64 KiB unless told otherwise and never grows it (grpc-go and
 * the C core size theirs by estimating bandwidth × delay): a catch-up then waits for a window
 * update every 64 KiB (slower even on loopback: BENCHMARKS.md, issue 14 target 4), and over a
 * link with 50 ms of delay streams at most 1.3 MB/s. 1 MiB, grpc-java's default: also
 * what a subscription whose loop stops pulling may hold in this process before the server waits.
 * `channelOptions: { 'grpc-node.flow_control_window': n }` sets another.
 */
export const DEFAULT_FLOW_CONTROL_WINDOW = 1024 * 1024;

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/**
 * Connects to an Event Horizon server at `address` ("host:port"). grpc-js connects lazily and
 * reconnects by itself; the returned client may be used at once and should be `close()`d.
 */
export function connect(address: string, options: ConnectOptions = {}): EventHorizon {
  return new EventHorizon(address, options);
}

/** A connected Event Horizon client. Every method throws the typed errors of `errors.ts`. */
export class EventHorizon {
  /** The generated grpc-js client, for what this layer does not wrap. */
  readonly raw: EventHorizonClient;
  private readonly deadlineMs: number;

  /** Prefer `connect()`. */
  constructor(address: string, options: ConnectOptions = {}) {
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const { channel, interceptors } = channelSecurity(options);
    this.raw = new EventHorizonClient(address, channel, {
      'grpc.keepalive_time_ms': options.keepalive?.timeMs ?? 60_000,
      'grpc.keepalive_timeout_ms': options.keepalive?.timeoutMs ?? 20_000,
      'grpc.initial_reconnect_backoff_ms': options.reconnect?.initialMs ?? 1000,
      'grpc.max_reconnect_backoff_ms': options.reconnect?.maxMs ?? 10_000,
      'grpc-node.flow_control_window': DEFAULT_FLOW_CONTROL_WINDOW,
      ...serverNameOptions(options),
      ...options.channelOptions,
      interceptors,
    });
  }

  /** Creates a stream (and its missing parents with `createParents`). */
  createStream(request: DeepPartial<CreateStreamRequest>, settings?: CallSettings): Promise<CreateStreamResponse> {
    return this.unary(this.raw.createStream, CreateStreamRequest.fromPartial(request), settings);
  }

  /**
   * Appends one entry. With `expectedVersion` it fails with ConflictError (carrying the actual
   * head) unless the stream is at exactly that version.
   */
  append(request: DeepPartial<AppendRequest>, settings?: CallSettings): Promise<AppendResponse> {
    return this.unary(this.raw.append, AppendRequest.fromPartial(request), settings);
  }

  /** Reads one page of entries. */
  read(request: DeepPartial<ReadRequest>, settings?: CallSettings): Promise<ReadResponse> {
    return this.unary(this.raw.read, ReadRequest.fromPartial(request), settings);
  }

  /**
   * Reads every entry from `fromVersion` to the head, a page at a time. Each next page is asked
   * for as soon as the page before it arrives, before that page's entries are handed over: the
   * server reads it while they are processed. So at most two pages are held at once.
   */
  async *readAll(stream: string, options: ReadAllOptions = {}): AsyncGenerator<Entry, void, undefined> {
    const limit = options.pageSize ?? 0;
    const readFrom = (fromVersion: bigint) => {
      const page = this.read({ stream, fromVersion, limit }, options);
      // Left unawaited when the caller stops early: its failure then has nobody to reach.
      page.catch(() => undefined);
      return page;
    };
    let next: Promise<ReadResponse> | undefined = readFrom(BigInt(options.fromVersion ?? 0));
    while (next) {
      const page: ReadResponse = await next;
      next = page.more && page.entries.length > 0 ? readFrom(page.nextVersion) : undefined;
      yield* page.entries;
    }
  }

  /**
   * Subscribes to a stream from `fromVersion`: stored entries, a `caughtUp` marker, then live
   * entries, resuming by itself after dropped connections (see `resumableSubscription`). Stop
   * by breaking out of the loop or aborting `signal`.
   */
  subscribe(stream: string, options: SubscribeOptions = {}): AsyncGenerator<SubscriptionItem, void, undefined> {
    return resumableSubscription((request) => this.raw.subscribe(request), stream, options);
  }

  /**
   * Follows the feed of a subtree ("/" for every stream): stored entries after `afterPosition`,
   * a `caughtUp` marker, then live entries, in the one order all readers share, with
   * `checkpoint`s while event-type filters skip entries; resumes by itself after dropped
   * connections from the last position it yielded (see `follow` in feed.ts).
   */
  follow(subtree: string, options: FollowOptions = {}): AsyncGenerator<FeedItem, void, undefined> {
    return follow((request) => this.raw.subscribeFeed(request), subtree, options);
  }

  /**
   * Joins consumer group `group` as a member and runs `handler` on each entry delivered to it,
   * `concurrency` at a time (each stream's entries stay in order), acking after the handler
   * resolves. Retries a failing handler with backoff, joins again by itself after a dropped
   * connection, and `stop()` leaves cleanly (see consumer.ts).
   */
  consume(group: string, handler: ConsumeHandler, options: ConsumeOptions = {}): GroupConsumer {
    return consume(
      { consume: (request) => this.raw.consume(request), ack: (request) => this.ack(request) },
      group,
      handler,
      options,
    );
  }

  /** Acknowledges entries delivered to a member (`consume` does it for you). */
  ack(request: DeepPartial<AckRequest>, settings?: CallSettings): Promise<AckResponse> {
    return this.unary(this.raw.ack, AckRequest.fromPartial(request), settings);
  }

  /** Creates a consumer group. */
  createConsumerGroup(request: DeepPartial<CreateConsumerGroupRequest>, settings?: CallSettings): Promise<CreateConsumerGroupResponse> {
    return this.unary(this.raw.createConsumerGroup, CreateConsumerGroupRequest.fromPartial(request), settings);
  }

  /** Describes a consumer group: positions, lag, members, parked entries. */
  describeConsumerGroup(name: string, settings?: CallSettings): Promise<DescribeConsumerGroupResponse> {
    return this.unary(this.raw.describeConsumerGroup, DescribeConsumerGroupRequest.fromPartial({ name }), settings);
  }

  /** Lists every consumer group. */
  listConsumerGroups(settings?: CallSettings): Promise<ListConsumerGroupsResponse> {
    return this.unary(this.raw.listConsumerGroups, ListConsumerGroupsRequest.fromPartial({}), settings);
  }

  /** Changes a consumer group's settings. */
  updateConsumerGroup(request: DeepPartial<UpdateConsumerGroupRequest>, settings?: CallSettings): Promise<UpdateConsumerGroupResponse> {
    return this.unary(this.raw.updateConsumerGroup, UpdateConsumerGroupRequest.fromPartial(request), settings);
  }

  /** Deletes a consumer group. */
  async deleteConsumerGroup(name: string, settings?: CallSettings): Promise<void> {
    await this.unary(this.raw.deleteConsumerGroup, DeleteConsumerGroupRequest.fromPartial({ name }), settings);
  }

  /** Moves every partition of a consumer group to a position. */
  resetConsumerGroup(request: DeepPartial<ResetConsumerGroupRequest>, settings?: CallSettings): Promise<ResetConsumerGroupResponse> {
    return this.unary(this.raw.resetConsumerGroup, ResetConsumerGroupRequest.fromPartial(request), settings);
  }

  /** Reads one page of the feed (continue with `afterPosition` = `nextAfterPosition` while `more`). */
  readFeed(request: DeepPartial<ReadFeedRequest>, settings?: CallSettings): Promise<ReadFeedResponse> {
    return this.unary(this.raw.readFeed, ReadFeedRequest.fromPartial(request), settings);
  }

  /** Stores a snapshot when it is newer than the stored one. */
  putSnapshot(request: DeepPartial<PutSnapshotRequest>, settings?: CallSettings): Promise<PutSnapshotResponse> {
    return this.unary(this.raw.putSnapshot, PutSnapshotRequest.fromPartial(request), settings);
  }

  /** Fetches a snapshot and, with `entriesAfter`, the first page of entries after it. */
  getSnapshot(request: DeepPartial<GetSnapshotRequest>, settings?: CallSettings): Promise<GetSnapshotResponse> {
    return this.unary(this.raw.getSnapshot, GetSnapshotRequest.fromPartial(request), settings);
  }

  /** Deletes a snapshot. */
  deleteSnapshot(
    request: DeepPartial<DeleteSnapshotRequest>,
    settings?: CallSettings,
  ): Promise<DeleteSnapshotResponse> {
    return this.unary(this.raw.deleteSnapshot, DeleteSnapshotRequest.fromPartial(request), settings);
  }

  /** Describes a stream: head version, children, snapshots. */
  describeStream(
    request: DeepPartial<DescribeStreamRequest>,
    settings?: CallSettings,
  ): Promise<DescribeStreamResponse> {
    return this.unary(this.raw.describeStream, DescribeStreamRequest.fromPartial(request), settings);
  }

  /** Lists a page of a stream's children. */
  listChildren(request: DeepPartial<ListChildrenRequest>, settings?: CallSettings): Promise<ListChildrenResponse> {
    return this.unary(this.raw.listChildren, ListChildrenRequest.fromPartial(request), settings);
  }

  /**
   * Starts a new data-encryption key version for a stream (servers with a keyring only; others
   * answer FailedPreconditionError with reason ENCRYPTION_DISABLED).
   */
  rotateStreamKey(
    request: DeepPartial<RotateStreamKeyRequest>,
    settings?: CallSettings,
  ): Promise<RotateStreamKeyResponse> {
    return this.unary(this.raw.rotateStreamKey, RotateStreamKeyRequest.fromPartial(request), settings);
  }

  /**
   * Crypto-shreds a stream: destroys its keys for good, so its entries and snapshots can never be
   * read again (they then fail with FailedPreconditionError, reason STREAM_SHREDDED).
   */
  shredStream(request: DeepPartial<ShredStreamRequest>, settings?: CallSettings): Promise<ShredStreamResponse> {
    return this.unary(this.raw.shredStream, ShredStreamRequest.fromPartial(request), settings);
  }

  /** Closes the channel; open calls fail with CANCELLED. */
  close(): void {
    this.raw.close();
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, settings: CallSettings = {}): Promise<Res> {
    const { signal } = settings;
    return new Promise<Res>((resolve, reject) => {
      const deadline = Date.now() + (settings.deadlineMs ?? this.deadlineMs);
      const metadata = settings.metadata?.clone() ?? new Metadata();
      // grpc-js takes wait-for-ready as a metadata option rather than a call option.
      if (settings.waitForReady) metadata.setOptions({ waitForReady: true });
      const call = method.call(this.raw, request, metadata, { deadline }, (error, response) => {
        signal?.removeEventListener('abort', cancel);
        if (error) reject(toClientError(error));
        else resolve(response);
      });
      const cancel = () => call.cancel();
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }
}

/**
 * The channel credentials and interceptors for the options. With TLS the token travels as call
 * credentials (grpc-js refuses those on plaintext channels); a plaintext token, when explicitly
 * allowed, is added by an interceptor instead.
 */
function channelSecurity(options: ConnectOptions): { channel: ChannelCredentials; interceptors: Interceptor[] } {
  const tls = options.tls === true ? {} : options.tls === false ? undefined : options.tls;
  const token = options.token;
  if (!tls) {
    if (token === undefined) return { channel: credentials.createInsecure(), interceptors: [] };
    if (!options.allowInsecureToken) {
      throw new Error('a token needs TLS: set `tls`, or `allowInsecureToken` for local development');
    }
    return { channel: credentials.createInsecure(), interceptors: [bearerTokenInterceptor(token)] };
  }
  let channel = credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
  if (token !== undefined) {
    const callCredentials = credentials.createFromMetadataGenerator((_context, callback) => {
      authorizationMetadata(token).then(
        (metadata) => callback(null, metadata),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    });
    channel = credentials.combineChannelCredentials(channel, callCredentials);
  }
  return { channel, interceptors: [] };
}

/** grpc-js takes the name to expect in the server's certificate as channel options. */
function serverNameOptions(options: ConnectOptions): ChannelOptions {
  const serverName = typeof options.tls === 'object' ? options.tls.serverName : undefined;
  return serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {};
}

async function authorizationMetadata(token: TokenSource): Promise<Metadata> {
  const value = typeof token === 'string' ? token : await token();
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${value}`);
  return metadata;
}

function bearerTokenInterceptor(token: TokenSource): Interceptor {
  return (options: InterceptorOptions, nextCall: NextCall): InterceptingCall =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        authorizationMetadata(token).then(
          (extra) => {
            metadata.merge(extra);
            next(metadata, listener);
          },
          (error: unknown) => {
            // Without a token the call cannot be authorized; fail it rather than send it bare.
            listener.onReceiveStatus?.({
              code: status.UNAUTHENTICATED,
              details: `no token: ${error instanceof Error ? error.message : String(error)}`,
              metadata: new Metadata(),
            });
          },
        );
      },
    });
}
