/**
 * The storage port: everything the service needs from a store, and nothing more. Payloads are
 * opaque bytes produced by `src/codec/`; stores never look inside them. Every operation is one
 * atomic write or one consistent read, so an implementation on DynamoDB needs one write request
 * per append.
 *
 * Stores throw the domain errors of `./errors.ts` (StreamNotFoundError, WrongExpectedVersionError,
 * ...) and nothing store-specific for conditions a client can cause.
 */

import type { CallSignal } from '../core/call-signal';

export type Version = bigint;

/** One stored entry: its version, commit time and encoded events. */
export interface StoredEntry {
  version: Version;
  recordedAt: Date;
  payload: Uint8Array;
}

export interface StreamInfo {
  path: string;
  headVersion: Version;
  createdAt: Date;
  childCount: bigint;
  /** Sum of the stored payload sizes of the stream's entries. */
  bytesStored: bigint;
}

/**
 * Builds an entry's stored payload once its version is known. Stores call it exactly when they
 * assign the version (and again if a retry lands on another version), so that the payload can be
 * bound to its position (encryption's associated data).
 */
export type PayloadAt = (version: Version) => Uint8Array;

export interface CreateStreamCommand {
  stream: string;
  parent: string;
  recordedAt: Date;
  /** Entry 0 of the new stream (the `$stream.started` event). */
  startedPayload: Uint8Array;
  /** The parent's new entry (the `$stream.child-created` event), at the parent's next version. */
  childCreatedPayload: PayloadAt;
  /** Optional entry 1 of the new stream: its initial events. */
  initialPayload?: Uint8Array;
}

export interface CreateStreamResult {
  /** The new stream's head: 0, or 1 with initial events. */
  headVersion: Version;
  /** The version of the parent's `$stream.child-created` entry. */
  parentVersion: Version;
}

export interface AppendCommand {
  stream: string;
  payload: PayloadAt;
  recordedAt: Date;
  /** When set, the stream's head must be exactly this version. */
  expectedVersion?: Version;
  /** When set, a committed append with the same id is returned instead of writing again. */
  requestId?: string;
  /**
   * Fires when the caller gives up (deadline, cancel). An append still waiting for its write is
   * then dropped with CallAbandonedError, never written; one already sent runs to its end.
   */
  signal?: CallSignal;
}

export interface AppendResult {
  version: Version;
  recordedAt: Date;
  /** True when the request id was already committed and nothing was written. */
  deduplicated: boolean;
}

export type ReadDirection = 'forward' | 'backward';

export interface ReadQuery {
  /** First version to return, inclusive; clamped to the stream's range. */
  fromVersion: Version;
  direction: ReadDirection;
  /** At most this many entries (at least one is returned when any exists). */
  limit: number;
  /** Stop before the page's payloads exceed this many bytes (at least one entry is returned). */
  maxBytes: number;
  /** Fires when the caller gives up: a store that waits on the network may stop early. */
  signal?: CallSignal;
  /**
   * The caller copies out what it needs of the payloads at once (it encodes them into messages)
   * and keeps none of them: the store may then give views into one buffer for the whole page,
   * which costs less than a buffer per entry (the SQLite store's joined read). Whoever kept one
   * such payload would keep the whole page in memory.
   */
  transientPayloads?: boolean;
}

export interface ReadPage {
  entries: StoredEntry[];
  /** Whether entries exist past this page in the direction read. */
  more: boolean;
  headVersion: Version;
}

/**
 * An entry's place in the feed: one order over every stream's entries, the same for every reader
 * and stable forever. Strictly increasing in commit order; it may skip numbers, never reorder.
 * 0n is before the first entry.
 */
export type Position = bigint;

/** One entry of the feed: a stored entry with its stream and position. */
export interface FeedEntry extends StoredEntry {
  stream: string;
  position: Position;
  /**
   * Set on a stream's shred fence (DynamoDB): no payload, the stream's entries can no longer be
   * read and none follows. Readers of the feed learn of a shred made elsewhere from it.
   */
  shredded?: boolean;
}

/** The streams a feed read covers: one stream, or a stream and all its descendants. */
export interface Subtree {
  path: string;
  descendants: boolean;
}

export interface FeedQuery {
  /** Entries after this position (exclusive): 0n for the beginning. */
  after: Position;
  subtree: Subtree;
  /**
   * Only the entries of the streams this accepts are returned (`reached` still covers the
   * others): a store that fetches entries apart from its index fetches only these.
   */
  only?: (stream: string) => boolean;
  /** At most this many entries (at least one is returned when any is found). */
  limit: number;
  /** Stop before the page's payloads exceed this many bytes (at least one entry is returned). */
  maxBytes: number;
  /** Fires when the caller gives up: a store that waits on the network may stop early. */
  signal?: CallSignal;
}

export interface FeedPage {
  /** The subtree's entries in (after, reached], in position order. */
  entries: FeedEntry[];
  /**
   * How far the page covers the feed: every entry of the subtree with a position in (after,
   * reached] is in `entries`. A read of a quiet subtree may return no entry and still move
   * `reached` on (the store scans a bounded range per read): continue after it.
   */
  reached: Position;
  /** Whether positions past `reached` existed when the page was read. */
  more: boolean;
}

export interface SnapshotRecord {
  perspective: string;
  version: Version;
  payload: Uint8Array;
  contentType: string;
  storedAt: Date;
}

export interface PutSnapshotOptions {
  /**
   * The payload is sealed with the stream's data key. Such a snapshot of a shredded stream could
   * never be read, so it is refused (StreamShreddedError) by the write itself, whatever keys the
   * caller still caches. The embedded store checks every snapshot (the check is free there);
   * DynamoDB only sealed ones, as it costs a transaction (an unsealed one stays readable).
   */
  sealed?: boolean;
}

export interface PutSnapshotResult {
  stored: boolean;
  /** The version of the snapshot stored after the call. */
  storedVersion: Version;
}

/**
 * One version of a stream's data-encryption key (DEK), as stored: wrapped (encrypted) by a
 * key-encryption key (KEK) that never leaves the server's keyring. Stores keep these opaque.
 */
export interface WrappedKey {
  /** 1, 2, ...: entries record the DEK version they were encrypted with. */
  dekVersion: number;
  /** Id of the KEK that wrapped this DEK. */
  kekId: string;
  wrapped: Uint8Array;
  createdAt: Date;
}

/** A stream's keys: every DEK version, or none once the stream was crypto-shredded. */
export interface StreamKeys {
  keys: WrappedKey[];
  shredded: boolean;
}

/**
 * How long a committed request id is recognised (AppendCommand.requestId): for the stream's whole
 * life, or while its entry is among the stream's `count` newest entries. A retry past a bounded
 * window is not recognised: it is a new append (written again, or refused with
 * WrongExpectedVersionError when it carries the expected version the original had).
 */
export type IdempotencyWindow = { kind: 'unbounded' } | { kind: 'entries'; count: number };

/**
 * What a store supports, as data, so the service never asks which store it has. The conformance
 * suite reads it and tests each side. docs/dynamodb.md ("How it differs from the embedded store")
 * describes each field.
 */
export interface StoreFeatures {
  /** Appends made by other processes are visible only by polling (the realtime hub tails them). */
  sharedWithOtherProcesses: boolean;
  /** How far back a retried request id is recognised. */
  idempotencyWindow: IdempotencyWindow;
  /**
   * The largest stored payload (an entry's or a snapshot's, as the codec made it) the store holds:
   * a larger one is refused with LimitExceededError and nothing is written. Undefined: no limit of
   * the store's own. The server refuses to start with limits that could make larger payloads
   * (wiring.ts, checkStoreLimits), so that every entry the limits allow is stored on every store.
   */
  maxPayloadBytes?: number;
  /**
   * Whether a read reaching a shredded stream's head is refused with StreamShreddedError (the
   * DynamoDB shred fence). Otherwise its entries stay readable as stored (ciphertext nobody can
   * decrypt any more).
   */
  readsRefusedAfterShred: boolean;
  /**
   * Whether a read whose signal has fired stops with CallAbandonedError (a store that waits on the
   * network); otherwise the read completes (a local read is done before it could stop).
   */
  abandonedReadsStop: boolean;
}

/** How a consumer group shares and retries its work (docs/consumer-groups.md). */
export interface ConsumerGroupSettings {
  /** Streams are spread over this many partitions by a stable hash of their path; fixed at creation. */
  partitions: number;
  /** An entry unacked this long is delivered again. */
  ackWaitMs: number;
  /** After this many deliveries an entry that is still unacked is parked. */
  maxDeliveries: number;
  /** Unacked entries one member holds at most. */
  maxInFlight: number;
}

/** A consumer group as created: what of the feed it reads, where it started, its settings. */
export interface ConsumerGroupDefinition {
  name: string;
  subtree: Subtree;
  /** Exact types or "prefix.*", as the feed's; empty: every event. */
  eventTypes: string[];
  settings: ConsumerGroupSettings;
  /** Every partition started after this position. */
  startPosition: Position;
  createdAt: Date;
}

/** A stored group: its definition and the revision its settings updates compare. */
export interface StoredConsumerGroup extends ConsumerGroupDefinition {
  revision: bigint;
}

/**
 * One partition of a group as stored: every entry of the partition at or before `position` is
 * done. `revision` grows with every save, which compares it (one writer wins). `owner` and
 * `leaseExpiresAt` name the process holding the partition where several share a store.
 */
export interface ConsumerGroupPartition {
  partition: number;
  position: Position;
  revision: bigint;
  owner?: string;
  leaseExpiresAt?: Date;
  /** What is done past `position` (entries acked out of order); absent: nothing known. */
  progress?: PartitionProgress;
}

/**
 * A partition's progress past its position, so that the next server to hold it does not deliver
 * again what was acked after an older entry still in flight: every entry of the partition after
 * `position` and at or before `through` is done, except those at `notDone` (ascending, each
 * after `position` and at or before `through`). JetStream keeps the same beside its ack floor.
 */
export interface PartitionProgress {
  through: Position;
  notDone: Position[];
}

/** A save of one partition, applied only if its stored revision is still `expectedRevision`. */
export interface ConsumerGroupPartitionUpdate {
  partition: number;
  position: Position;
  expectedRevision: bigint;
  owner?: string;
  leaseExpiresAt?: Date;
  /** Stored with the position, replacing what was stored; absent: none. */
  progress?: PartitionProgress;
}

/**
 * A server serving members of a group, as it records itself (docs/consumer-groups.md, "Across
 * servers"): servers spread the group's partitions in proportion to their live members.
 */
export interface ConsumerGroupServer {
  serverId: string;
  /** Its live members of the group. */
  members: number;
  /** The record counts until then (the server renews it well before). */
  expiresAt: Date;
  /**
   * What the server serves, as of the record's write: its members and the partitions it holds,
   * so that DescribeConsumerGroup on any server shows the whole group. Opaque to the store.
   */
  view?: ConsumerGroupServerView;
}

/** A server's part of a group, for DescribeConsumerGroup elsewhere (at most a renew interval old). */
export interface ConsumerGroupServerView {
  members: Array<{ memberId: string; memberName: string; partitions: number[]; inFlight: number; joinedAt: Date }>;
  partitions: Array<{ partition: number; position: Position; memberId: string | undefined; inFlight: number; lagEntries: number; lagSeconds: number }>;
}

/** An entry a group gave up on (kept, listed, replayable by a reset before it). */
export interface ParkedEntry {
  position: Position;
  stream: string;
  version: Version;
  deliveries: number;
  /** "max-deliveries", or "denied" (a member's key may not read the stream). */
  reason: string;
  parkedAt: Date;
}

/**
 * Where consumer groups keep their state. Stores that have it expose it as `EventStore.groups`;
 * a store without it leaves that undefined and the server refuses group calls.
 */
export interface ConsumerGroupStore {
  /**
   * Stores a new group with its partitions 0..n-1 at `startPosition`, revision 1. Throws
   * ConsumerGroupAlreadyExistsError when the name is taken.
   */
  createGroup(definition: ConsumerGroupDefinition): Promise<StoredConsumerGroup>;
  getGroup(name: string): Promise<StoredConsumerGroup | undefined>;
  /** Every group, by name. */
  listGroups(): Promise<StoredConsumerGroup[]>;
  /**
   * Replaces the settings if the group's revision is still `expectedRevision`; returns the stored
   * group, or undefined on a conflict. Throws ConsumerGroupNotFoundError.
   */
  updateGroupSettings(name: string, settings: ConsumerGroupSettings, expectedRevision: bigint): Promise<StoredConsumerGroup | undefined>;
  /** Deletes the group, its partitions and its parked entries; returns whether it existed. */
  deleteGroup(name: string): Promise<boolean>;
  /** The group's partitions in order; empty for an unknown group. */
  getGroupPartitions(name: string): Promise<ConsumerGroupPartition[]>;
  /**
   * In one atomic write: stores the parked entries (again: no effect) and each partition update
   * whose revision matches. Returns, per update in order, the partition as stored now, or
   * undefined when its revision did not match (nothing of it was written). Throws
   * ConsumerGroupNotFoundError for a group that does not exist (any more).
   */
  saveGroupPartitions(name: string, updates: ConsumerGroupPartitionUpdate[], parked: ParkedEntry[]): Promise<Array<ConsumerGroupPartition | undefined>>;
  /** Parked entries after a position, in position order. */
  listParked(name: string, after: Position, limit: number): Promise<ParkedEntry[]>;
  /**
   * Removes the parked entries after a position from the list (a reset to it delivers them again);
   * returns how many there were.
   */
  unparkAfter(name: string, after: Position): Promise<number>;
  countParked(name: string): Promise<number>;
  /**
   * Records (replaces) a server's membership of the group; `members` 0 removes the record.
   * Throws ConsumerGroupNotFoundError for a group that does not exist.
   */
  saveGroupServer(name: string, server: ConsumerGroupServer): Promise<void>;
  /** The servers recorded for the group, expired ones included, by id; empty for an unknown group. */
  listGroupServers(name: string): Promise<ConsumerGroupServer[]>;
}

/** Work a store needs done in the background of a serving process, started and stopped with it. */
export interface StoreBackground {
  start(): void;
  /** Stops, handing over what it holds (the DynamoDB feed indexer releases its lease). */
  stop(): Promise<void>;
}

/** Where background work reports. */
export type BackgroundLog = (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;

export interface EventStore {
  readonly features: StoreFeatures;

  /** Consumer groups' state, when the store keeps it (docs/consumer-groups.md). */
  readonly groups?: ConsumerGroupStore | undefined;

  /**
   * The store's background work in a serving process, if it has any (DynamoDB: the feed
   * indexer's contender; one replica of the deployment holds the lease and indexes). The server
   * starts it; the CLI's short-lived commands do not.
   */
  background?(log: BackgroundLog): StoreBackground | undefined;

  /**
   * Prepares the store (schema or tables, created or checked) without writing any stream, so that
   * keys can be read before the root is written. Idempotent; `init` calls it too.
   */
  open(): Promise<void>;

  /** Opens the store and creates the root stream when missing, with `rootPayload` as entry 0. */
  init(rootPayload: Uint8Array, recordedAt: Date): Promise<void>;

  /** Creates a stream and records it in its parent, atomically. */
  createStream(command: CreateStreamCommand): Promise<CreateStreamResult>;

  /** Appends one entry atomically at head + 1. */
  append(command: AppendCommand): Promise<AppendResult>;

  /**
   * Reads one page of entries. Throws StreamNotFoundError for a missing stream; may throw
   * StreamShreddedError for a shredded one (DynamoDB, when the page reaches its shred fence).
   * `headVersion` agrees with the page: the head as of one moment at which the page is exact.
   */
  read(stream: string, query: ReadQuery): Promise<ReadPage>;

  /**
   * One page of the feed: the entries of a subtree in position order. Entries appear in the
   * feed once committed (DynamoDB: once indexed), each stream's in version order.
   */
  readFeed(query: FeedQuery): Promise<FeedPage>;

  /** The newest position in the feed, 0n when it is empty. */
  feedHead(): Promise<Position>;

  /** The stream's summary, or undefined when it does not exist. */
  describe(stream: string): Promise<StreamInfo | undefined>;

  /** Up to `limit` children of an existing stream, in byte order, after `after` when given. */
  listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]>;

  /**
   * Stores the snapshot when newer than the stored one. Throws SnapshotAheadOfStreamError, and
   * StreamShreddedError once the stream was shredded (see PutSnapshotOptions.sealed).
   */
  putSnapshot(stream: string, snapshot: SnapshotRecord, options?: PutSnapshotOptions): Promise<PutSnapshotResult>;

  getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined>;

  /** Deletes a snapshot; returns whether one existed. */
  deleteSnapshot(stream: string, perspective: string): Promise<boolean>;

  listPerspectives(stream: string): Promise<string[]>;

  /**
   * The stream's wrapped keys. Keys are keyed by path and may exist before the stream does (they
   * are written just before it is created).
   */
  getStreamKeys(stream: string): Promise<StreamKeys>;

  /**
   * Adds a key version unless that version already exists or the stream was shredded.
   * Returns whether it was added (false means: re-read the keys, someone else won).
   */
  addStreamKey(stream: string, key: WrappedKey): Promise<boolean>;

  /** Re-wraps one key version under a new KEK if it is still wrapped by `expectedKekId`. */
  rewrapStreamKey(stream: string, dekVersion: number, expectedKekId: string, kekId: string, wrapped: Uint8Array): Promise<boolean>;

  /**
   * Destroys every key of the stream for good and remembers that it was shredded. Once it has
   * returned, no append to the stream and no create under it succeeds, from any process sharing
   * the store (StreamShreddedError), whatever keys the caller still holds: the check is part of
   * the store's own append write. A retried request id committed before still gets its cursor.
   */
  shredStreamKeys(stream: string, shreddedAt: Date): Promise<void>;

  /** Streams holding keys, in path order after `after`, with their keys (for KEK rotation). */
  listStreamKeys(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>>;

  /** Whether the backend answers (for health checks). */
  ping(): Promise<boolean>;

  /** Finishes pending writes and releases resources. */
  close(): Promise<void>;
}
