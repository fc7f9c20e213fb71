import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConsumeResponse, ConsumerDelivery, FeedEntry as ApiFeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { BATCH_BYTES, MAX_ENTRIES_PER_MESSAGE } from '../codec/encoded-messages';
import { ConsumerGroupNotFoundError, ConsumerGroupsUnavailableError, ConsumerMemberNotFoundError, ShuttingDownError } from '../core/errors';
import type { Feed } from '../feed/feed';
import type { StreamReadCheck } from '../feed/feed-filter';
import type { Lifetime } from '../realtime/lifetime';
import type {
  ConsumerGroupDefinition,
  ConsumerGroupPartition,
  ConsumerGroupPartitionUpdate,
  ConsumerGroupServer,
  ConsumerGroupServerView,
  ConsumerGroupSettings,
  ConsumerGroupStore,
  EventStore,
  ParkedEntry,
  PartitionProgress,
  Position,
  StoredConsumerGroup,
} from '../store/port';
import { assignPartitions, serverShare } from './assignment';
import { partitionOf } from './partition-hash';
import { PendingEntries, WaitingEntries } from './waiting-entries';

/** Entries a group's reader keeps read ahead and not done, at most (then it waits for acks). */
const READ_AHEAD = 2000;
/** Entries per read of the feed. */
const READ_PAGE = 500;
/** A reader stopped by READ_AHEAD reads on once acks bring the read-ahead below this: pages, not a read per ack. */
const REFILL_BELOW = READ_AHEAD / 2;
/** Dirty positions are saved this often (a crash replays at most this much of acked work; exported for the tests' bound). */
export const CHECKPOINT_INTERVAL_MS = 1000;
/**
 * Not-done positions stored with a partition's position, at most: past the last of them, what
 * was acked out of order is delivered again by the next server to hold the partition (a few KB
 * per record at most: the positions are stored as small deltas).
 */
const MAX_STORED_NOT_DONE = 500;
/** The reader looks at the feed this often even without a commit announced here. */
const POLL_INTERVAL_MS = 1000;

/** A partition lease lasts this long unless renewed (docs/consumer-groups.md, "Across servers"). */
export const DEFAULT_GROUP_LEASE_MS = 15_000;
/** A server renews its leases and its membership record this often. */
export const DEFAULT_GROUP_LEASE_RENEW_MS = 5_000;

export interface ConsumerGroupsOptions {
  store: EventStore;
  feed: Feed;
  logger: Logger;
  heartbeatIntervalMs: number;
  /** How long a partition lease and a server's membership record last unless renewed. */
  leaseMs?: number;
  /** How often a server renews them (and looks at the other servers' records). */
  leaseRenewMs?: number;
}

/** How far a group's partition is behind, for DescribeConsumerGroup and the gauges. */
export interface PartitionStatus {
  partition: number;
  position: Position;
  memberId: string | undefined;
  inFlight: number;
  lagEntries: number;
  lagSeconds: number;
  /** This server holds the partition's lease. */
  held: boolean;
  /** The server holding its lease, when one does (as last read from the store). */
  serverId: string | undefined;
}

export interface MemberStatus {
  /** The server the member is connected to. */
  serverId: string;
  memberId: string;
  memberName: string;
  partitions: number[];
  inFlight: number;
  joinedAt: Date;
}

export interface GroupStatus {
  group: StoredConsumerGroup;
  partitions: PartitionStatus[];
  members: MemberStatus[];
  parkedCount: number;
  readPosition: Position;
}

/** One sample of a group's lag, for the Prometheus gauges. */
export interface GroupLagSample {
  group: string;
  partition: number;
  lagEntries: number;
  lagSeconds: number;
  position: Position;
  held: boolean;
}

/** What a member joining with Consume brings. */
export interface JoinOptions {
  memberName: string;
  /** Its key's read check (undefined without auth): entries of streams it may not read are parked. */
  mayRead: StreamReadCheck | undefined;
  lifetime: Lifetime;
  /** Deliveries per message it takes (ConsumeRequest.max_deliveries_per_message; 1 when unset). */
  maxDeliveriesPerMessage?: number;
}

/**
 * About the bytes an entry takes in a message (its payloads, names and metadata), for the batch
 * budget: cheaper than encoding it twice, and close enough for a bound on a message's size.
 */
function approximateBytes(entry: ApiFeedEntry): number {
  let bytes = 32 + entry.stream.length;
  for (const event of entry.events) {
    bytes += 16 + event.data.byteLength + event.id.length + event.type.length + event.contentType.length;
    for (const key in event.metadata) bytes += 4 + key.length + (event.metadata[key]?.length ?? 0);
  }
  return bytes;
}

/** The outbox's last message while it still takes deliveries (a member that asked for batches). */
interface OpenBatch {
  message: ConsumeResponse;
  deliveries: ConsumerDelivery[];
  bytes: number;
}

/** An entry read from the feed and not done yet: waiting, or in flight to a member. */
export interface Work {
  entry: ApiFeedEntry;
  partition: number;
  /** Deliveries so far. */
  deliveries: number;
  /** While in flight: to whom, and since when (performance.now()). */
  member?: Member | undefined;
  deliveredAt?: number;
  /** In flight from before a reset: its ack only releases its stream. */
  stale?: boolean;
  /** Acked or parked (PendingEntries). */
  done?: boolean;
}

class Member {
  readonly joinedAt = new Date();
  readonly partitions = new Set<number>();
  readonly inFlight = new Map<Position, Work>();
  readonly outbox: ConsumeResponse[] = [];
  /** Deliveries that join the outbox's last message rather than go in one of their own. */
  private openBatch: OpenBatch | undefined;
  /** The call ended: no new deliveries, but its acks count while it holds entries. */
  gone = false;
  /** Ends the member's call with this error (group deleted). */
  failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly mayRead: StreamReadCheck | undefined,
    /** Deliveries per message it takes (1: one `delivery` message each, as for clients that do not ask). */
    readonly maxPerMessage: number,
  ) {}

  failed(): boolean {
    return this.failure !== undefined;
  }

  send(message: ConsumeResponse): void {
    this.openBatch = undefined;
    this.outbox.push(message);
    this.notify();
  }

  /**
   * Queues a delivery: in the outbox's last message while that is a batch with room (up to
   * `maxPerMessage` and BATCH_BYTES), so that what is handed out before the member's call takes
   * its next message leaves in one; else in a `delivery` message of its own, which the next
   * delivery may turn into a batch.
   */
  deliver(delivery: ConsumerDelivery): void {
    const bytes = delivery.entry ? approximateBytes(delivery.entry) : 0;
    const open = this.openBatch;
    if (open && open.deliveries.length < this.maxPerMessage && open.bytes + bytes <= BATCH_BYTES) {
      open.deliveries.push(delivery);
      open.bytes += bytes;
      open.message.message = { $case: 'deliveries', value: { deliveries: open.deliveries } };
      return;
    }
    const message: ConsumeResponse = { message: { $case: 'delivery', value: delivery } };
    this.outbox.push(message);
    this.openBatch = this.maxPerMessage > 1 ? { message, deliveries: [delivery], bytes } : undefined;
    this.notify();
  }

  /** The next message to send, taken from the outbox (it takes no more deliveries). */
  next(): ConsumeResponse | undefined {
    const message = this.outbox.shift();
    if (message && message === this.openBatch?.message) this.openBatch = undefined;
    return message;
  }

  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves when something is sent, or after `ms`, or when the lifetime ends. */
  wait(ms: number, lifetime: Lifetime): Promise<void> {
    if (this.outbox.length > 0 || this.failure || lifetime.ended) return Promise.resolve();
    return new Promise((resolve) => {
      let stopListening = (): void => undefined;
      const done = (): void => {
        clearTimeout(timer);
        stopListening();
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopListening = lifetime.onEnd(done);
      this.wake = done;
    });
  }
}

export class PartitionState {
  /** Every entry of the partition at or before it is done (as last computed). */
  position: Position;
  /** The stored revision (saves compare it). */
  revision: bigint;
  /** Saved position differs from `position`. */
  dirty = false;
  /** Entries read and not in flight, per stream; `waiting.take` gives the next that may go. */
  readonly waiting = new WaitingEntries<Work>();
  /** Entries in flight (not stale), by position. */
  readonly inFlight = new Map<Position, Work>();
  /** Entries read and not done (waiting or in flight), in position order: the oldest is the first. */
  private readonly pending = new PendingEntries<Work>();
  owner: Member | undefined;
  /** This server holds the partition's lease: it reads, delivers and saves the partition. */
  held = false;
  /** Held and being handed back: nothing new goes out; the lease is cleared once nothing of it is in flight here. */
  releasing = false;
  /** The write handing it back is under way: it cannot be kept any more (nothing may go out meanwhile). */
  handingBack = false;
  /** performance.now() until which the lease counts here (each save renews it). */
  leaseUntil = 0;
  /** performance.now() after which the lease is renewed even without a position to save. */
  renewAt = 0;
  /** performance.now() from which its entries go out (a takeover waits out the old owner's ack wait). */
  deliverableAt = 0;
  /** The lease holder as last read from the store (partitions held elsewhere). */
  storedOwner: string | undefined;
  /**
   * While held: the reader has taken every entry of the partition up to here (into `waiting`,
   * or done already). Entries at or before it are never taken again, even when the reader reads
   * from further back for a partition taken meanwhile: one acked out of order would be delivered twice.
   */
  readUpTo: Position = 0n;
  /**
   * What the server that held the partition before knew done past its position (stored with it):
   * the reader skips those entries, until it has read past `through`.
   */
  private carried: { through: Position; notDone: Set<Position> } | undefined;

  constructor(
    readonly index: number,
    position: Position,
    revision: bigint,
  ) {
    this.position = position;
    this.revision = revision;
  }

  /** Taken (or reset) at a stored position, with the progress stored past it. */
  startAt(position: Position, progress: PartitionProgress | undefined): void {
    this.position = position;
    this.readUpTo = position;
    this.dirty = false;
    this.carried = progress && progress.through > position ? { through: progress.through, notDone: new Set(progress.notDone) } : undefined;
  }

  /** Whether the reader's entry was done before this server took the partition (acked out of order). */
  doneBefore(position: Position): boolean {
    const carried = this.carried;
    return carried !== undefined && position <= carried.through && !carried.notDone.has(position);
  }

  /** The reader took every entry up to here. */
  readTo(position: Position): void {
    if (this.readUpTo < position) this.readUpTo = position;
    if (this.carried && this.readUpTo >= this.carried.through) this.carried = undefined;
  }

  /**
   * What to store with the position: every entry after it and up to `through` is done but those
   * at `notDone`, the oldest MAX_STORED_NOT_DONE of them (with the entries not read yet here that
   * the progress taken over names). Undefined when nothing past the position is known done.
   */
  progress(): PartitionProgress | undefined {
    const notDone = this.pending.notDone(MAX_STORED_NOT_DONE + 1).map((work) => work.entry.position);
    let through = this.readUpTo;
    if (this.carried && this.carried.through > through) {
      for (const at of this.carried.notDone) if (at > this.readUpTo) notDone.push(at);
      notDone.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      through = this.carried.through;
    }
    const past = notDone.filter((at) => at > this.position);
    if (past.length > MAX_STORED_NOT_DONE) {
      // Known done no further than just before the first not-done position left out.
      through = (past[MAX_STORED_NOT_DONE] as Position) - 1n;
      past.length = MAX_STORED_NOT_DONE;
    }
    return through > this.position ? { through, notDone: past } : undefined;
  }

  /** An entry read from the feed (after every entry taken before: see readUpTo). */
  add(work: Work): void {
    this.waiting.push(work);
    this.pending.push(work);
  }

  /** Puts an entry back first of its stream (a redelivery goes before the stream's later entries). */
  putBack(work: Work): void {
    this.waiting.putBack(work);
  }

  /** An entry is done (acked or parked): the position may pass it. */
  finish(work: Work): void {
    this.pending.finish(work);
  }

  /** Drops the waiting entries (the partition is no longer served here); those in flight stay counted. */
  dropWaiting(): void {
    this.waiting.clear();
    this.pending.retain((work) => this.inFlight.get(work.entry.position) === work);
  }

  /** The oldest entry not done, by position. */
  oldest(): Work | undefined {
    return this.pending.oldest();
  }
}

/** How a save touches a partition record. */
type SaveKind = 'save' | 'acquire' | 'release' | 'expire';

interface PlannedUpdate {
  state: PartitionState;
  kind: SaveKind;
  update: ConsumerGroupPartitionUpdate;
  /** Acquire: the record as read (who held it, until when). */
  stored?: ConsumerGroupPartition;
}

/** Where a GroupRuntime stands with the other servers of its group. */
interface Coordination {
  serverId: string;
  leaseMs: number;
  renewMs: number;
  /**
   * The store is this process's alone (the embedded store): no other server can hold a lease, so
   * a lease left by an earlier run of this process is free at once, with no ack wait to wait out.
   */
  exclusive: boolean;
  /** The group is gone (deleted, or created again elsewhere): drop this runtime. */
  onGone: () => void;
}

/**
 * One consumer group served by this process: its reader of the feed, partitions, members,
 * in-flight entries, the ack-wait timer and the batched saves of its positions
 * (docs/consumer-groups.md).
 *
 * Across servers (docs/consumer-groups.md, "Across servers"), it serves only the partitions whose
 * lease it holds: `coordinate()` records this server's live members of the group, computes its
 * share of the partitions from every server's records, takes free or expired leases up to that
 * share and hands the excess back; every save of a held partition renews its lease, and a save
 * refused (the revision moved: someone else took it, or a reset) drops the partition here. On the
 * embedded store the same code runs with this server alone, so it holds every partition.
 */
class GroupRuntime {
  private readonly members = new Map<string, Member>();
  /** Members whose call ended and who still hold entries: their acks still count. */
  private readonly leaving = new Map<string, Member>();
  /** Join order of the live members. */
  private order: Member[] = [];
  /** Streams with an entry in flight (stale ones included): never two at once. */
  private readonly busy = new Set<string>();
  private readonly isBusy = (stream: string): boolean => this.busy.has(stream);
  private readonly parkedToSave: ParkedEntry[] = [];
  /** Leases to take at the next save (read from the store by coordinate()). */
  private toAcquire: ConsumerGroupPartition[] = [];
  private readPosition: Position;
  private buffered = 0;
  private reading = false;
  private readAgain = false;
  /** The reader stopped at READ_AHEAD with more to read: acks wake it (refill). Else commits and the poll do. */
  private readAheadFull = false;
  /** Bumped by a reset or a rewind: pages read before it are dropped. */
  private generation = 0;
  private parkedCount: number;
  private saving: Promise<void> = Promise.resolve();
  private coordinating: Promise<void> = Promise.resolve();
  private coordinationQueued = false;
  /** Members this server last recorded in the store (0: no record). */
  private recordedMembers = 0;
  /** The other servers' unexpired records, as last read (their views complete Describe). */
  private otherServers: ConsumerGroupServer[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopListening: () => void;
  /** Handing its partitions back before it stops: nothing new goes out. */
  private stopping = false;
  private stopped = false;

  constructor(
    public group: StoredConsumerGroup,
    private readonly partitions: PartitionState[],
    parkedCount: number,
    private readonly groups: ConsumerGroupStore,
    private readonly options: ConsumerGroupsOptions,
    private readonly coordination: Coordination,
  ) {
    this.parkedCount = parkedCount;
    // Moved by rewind() when partitions are taken; until then (a group only described) for Describe.
    this.readPosition = partitions.reduce((min, p) => (p.position < min ? p.position : min), partitions[0]?.position ?? 0n);
    this.stopListening = options.feed.onCommitted(() => this.read());
    const tick = Math.min(1000, Math.max(50, Math.floor(group.settings.ackWaitMs / 10)));
    this.timers.push(
      setInterval(() => this.expire(), tick),
      setInterval(() => void this.save(), CHECKPOINT_INTERVAL_MS),
      setInterval(() => this.read(), POLL_INTERVAL_MS),
      setInterval(() => void this.coordinate(), coordination.renewMs),
    );
    for (const timer of this.timers) timer.unref();
  }

  get settings(): ConsumerGroupSettings {
    return this.group.settings;
  }

  /** A member joins: it gets partitions, then deliveries, until its call ends. */
  async *join(options: JoinOptions): AsyncGenerator<ConsumeResponse> {
    if (this.stopped || this.stopping) throw new ConsumerGroupNotFoundError(this.group.name);
    const perMessage = Math.min(Math.max(1, options.maxDeliveriesPerMessage ?? 1), MAX_ENTRIES_PER_MESSAGE);
    const member = new Member(randomUUID(), options.memberName, options.mayRead, perMessage);
    this.members.set(member.id, member);
    this.order.push(member);
    member.send({ message: { $case: 'joined', value: { memberId: member.id, group: undefined } } });
    this.rebalance();
    this.read();
    void this.coordinate();
    const { lifetime } = options;
    try {
      while (!lifetime.ended) {
        const message = member.next();
        if (message) {
          yield message;
          continue;
        }
        if (member.failure) throw member.failure;
        await member.wait(this.options.heartbeatIntervalMs, lifetime);
        // (The wait may have set a failure: the loop's top throws it.)
        if (member.outbox.length === 0 && !member.failed() && !lifetime.ended) {
          yield { message: { $case: 'heartbeat', value: { time: new Date() } } };
        }
      }
    } finally {
      this.leave(member);
    }
  }

  /** The member's call ended: its partitions go to others; its entries stay its own until acked or expired. */
  private leave(member: Member): void {
    if (member.gone) return;
    member.gone = true;
    this.members.delete(member.id);
    this.order = this.order.filter((m) => m !== member);
    if (member.inFlight.size > 0) this.leaving.set(member.id, member);
    this.rebalance();
    if (!this.stopped) void this.coordinate();
  }

  ack(memberId: string, positions: Position[], upTo: Array<{ partition: number; position: Position }>): { acked: number; ignored: number } {
    const member = this.members.get(memberId) ?? this.leaving.get(memberId);
    if (!member) throw new ConsumerMemberNotFoundError(this.group.name, memberId);
    let acked = 0;
    let ignored = 0;
    for (const position of positions) {
      const work = member.inFlight.get(position);
      if (work) {
        this.done(work);
        acked++;
      } else {
        ignored++;
      }
    }
    if (upTo.length > 0) {
      // One pass over what the member holds, however many partitions the ack names.
      const limits = new Map<number, Position>();
      for (const { partition, position } of upTo) {
        const limit = limits.get(partition);
        if (limit === undefined || position > limit) limits.set(partition, position);
      }
      const covered = [...member.inFlight.values()].filter((work) => {
        const limit = limits.get(work.partition);
        return limit !== undefined && work.entry.position <= limit;
      });
      for (const work of covered) this.done(work);
      acked += covered.length;
    }
    if (member.gone && member.inFlight.size === 0) this.leaving.delete(member.id);
    this.dispatch();
    this.refill();
    return { acked, ignored };
  }

  /** An in-flight entry is done (acked or parked): its stream and the member's slot are free. */
  private done(work: Work): void {
    this.release(work);
    const partition = this.partitions[work.partition];
    if (!work.stale && partition) {
      this.buffered--;
      partition.inFlight.delete(work.entry.position);
      partition.finish(work);
      // Saved even when the position stays (an older entry still not done): its progress moved.
      if (partition.held) partition.dirty = true;
      this.advance(work.partition);
    }
    // The stream's next entry may go.
    partition?.waiting.wake(work.entry.stream);
  }

  /** Frees the entry's member slot and its stream (the caller wakes the stream once its entries are in place). */
  private release(work: Work): void {
    work.member?.inFlight.delete(work.entry.position);
    this.busy.delete(work.entry.stream);
    if (work.member?.gone && work.member.inFlight.size === 0) this.leaving.delete(work.member.id);
    work.member = undefined;
  }

  /** Recomputes a held partition's position: just before its oldest entry not done, else how far the reader got. */
  private advance(index: number): void {
    const partition = this.partitions[index];
    if (!partition?.held) return;
    const oldest = partition.oldest();
    let position = oldest ? oldest.entry.position - 1n : partition.readUpTo;
    if (position < partition.position) position = partition.position;
    if (position !== partition.position) {
      partition.position = position;
      partition.dirty = true;
    }
  }

  /** Partitions this server may give its members: held, not being handed back. */
  private assignable(): number[] {
    if (this.stopping) return [];
    return this.partitions.filter((p) => p.held && !p.releasing && !p.handingBack).map((p) => p.index);
  }

  /** Spreads the partitions held here over the live members and tells those whose partitions changed. */
  private rebalance(): void {
    const current = new Map<number, string>();
    for (const partition of this.partitions) if (partition.owner && !partition.owner.gone) current.set(partition.index, partition.owner.id);
    const assigned = assignPartitions(this.assignable(), this.order.map((m) => m.id), current);
    const changed = new Set<Member>();
    for (const partition of this.partitions) {
      const next = this.members.get(assigned.get(partition.index) ?? '');
      if (next === partition.owner) continue;
      if (partition.owner) {
        partition.owner.partitions.delete(partition.index);
        changed.add(partition.owner);
      }
      partition.owner = next;
      if (next) {
        next.partitions.add(partition.index);
        changed.add(next);
      }
    }
    for (const member of changed) {
      if (!member.gone) member.send({ message: { $case: 'assignment', value: { partitions: [...member.partitions].sort((a, b) => a - b) } } });
    }
    this.dispatch();
  }

  /**
   * Hands waiting entries to their partitions' owners: in position order, skipping streams with
   * an entry in flight, up to each member's max in flight; only of partitions whose lease counts
   * here and whose takeover wait is over. No scan: a partition's `waiting` gives the next entry
   * of a free stream, and a stream comes back there when its entry in flight is done.
   */
  private dispatch(): void {
    const max = this.settings.maxInFlight;
    const now = performance.now();
    for (const partition of this.partitions) {
      const owner = partition.owner;
      if (!owner || owner.gone || owner.inFlight.size >= max || partition.waiting.length === 0) continue;
      if (!partition.held || partition.releasing || partition.handingBack || this.stopping) continue;
      if (now < partition.deliverableAt || now >= partition.leaseUntil) continue;
      while (owner.inFlight.size < max) {
        const work = partition.waiting.take(this.isBusy);
        if (!work) break;
        if (owner.mayRead && !owner.mayRead(work.entry.stream)) {
          this.park(work, 'denied');
          partition.waiting.wake(work.entry.stream);
          continue;
        }
        work.deliveries++;
        work.member = owner;
        work.deliveredAt = performance.now();
        owner.inFlight.set(work.entry.position, work);
        partition.inFlight.set(work.entry.position, work);
        this.busy.add(work.entry.stream);
        owner.deliver({ entry: work.entry, partition: partition.index, deliveryCount: work.deliveries });
      }
    }
  }

  /** The one ack-wait timer: expired entries go back to their stream's front, or are parked. */
  private expire(): void {
    const limit = performance.now() - this.settings.ackWaitMs;
    const expired: Work[] = [];
    const holders = [...this.members.values(), ...this.leaving.values()];
    for (const member of holders) {
      for (const work of member.inFlight.values()) if ((work.deliveredAt ?? 0) <= limit) expired.push(work);
    }
    for (const work of expired) {
      this.release(work);
      const partition = this.partitions[work.partition];
      if (!work.stale) {
        partition?.inFlight.delete(work.entry.position);
        if (work.deliveries >= this.settings.maxDeliveries) {
          this.park(work, 'max-deliveries');
        } else {
          partition?.putBack(work);
        }
      }
      partition?.waiting.wake(work.entry.stream);
    }
    // Also where a takeover's wait just ended.
    this.dispatch();
  }

  /** Gives up on an entry: kept in the parked list, and its partition moves on. */
  private park(work: Work, reason: string): void {
    const { entry } = work;
    this.parkedToSave.push({ position: entry.position, stream: entry.stream, version: entry.version, deliveries: work.deliveries, reason, parkedAt: new Date() });
    this.parkedCount++;
    this.options.logger.warn({ group: this.group.name, stream: entry.stream, version: entry.version, position: entry.position, deliveries: work.deliveries, reason }, 'consumer group parked an entry');
    this.buffered--;
    this.partitions[work.partition]?.finish(work);
    this.advance(work.partition);
    // Rare: saved now rather than at the next checkpoint, so that it is listed at once.
    void this.save();
  }

  /**
   * After acks: the reader goes on only if it stopped at the read-ahead's cap and the acks brought
   * it below REFILL_BELOW, so that it reads a few pages at a time rather than one at every ack
   * (at the feed's head it waits for commits and the poll, not for acks).
   */
  private refill(): void {
    if (this.readAheadFull && this.buffered < REFILL_BELOW) this.read();
  }

  /** Reads the feed after `readPosition` while the read-ahead has room, someone consumes and a partition is held. */
  read(): void {
    if (this.stopped || this.members.size === 0 || !this.partitions.some((p) => p.held)) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void this.readPages()
      .catch((error: unknown) => this.options.logger.error({ err: error, group: this.group.name }, 'consumer group: reading the feed failed; retried at the next poll'))
      .finally(() => {
        this.reading = false;
        if (this.readAgain) {
          this.readAgain = false;
          this.read();
        }
      });
  }

  private async readPages(): Promise<void> {
    const { group } = this;
    const selection = { subtree: group.subtree, eventTypes: group.eventTypes };
    for (;;) {
      this.readAheadFull = this.buffered >= READ_AHEAD;
      if (this.stopped || this.readAheadFull) return;
      const generation = this.generation;
      const page = await this.options.feed.read(selection, this.readPosition, READ_PAGE, undefined);
      if (generation !== this.generation || this.stopped) continue;
      for (const entry of page.entries) {
        const index = partitionOf(entry.stream, this.partitions.length);
        const partition = this.partitions[index];
        // Only partitions held here, and what the reader has not taken yet (see readUpTo).
        if (!partition?.held || entry.position <= partition.position || entry.position <= partition.readUpTo || partition.doneBefore(entry.position)) continue;
        partition.add({ entry, partition: index, deliveries: 0 });
        this.buffered++;
      }
      this.readPosition = page.reached;
      for (const partition of this.partitions) if (partition.held) partition.readTo(page.reached);
      for (const partition of this.partitions) this.advance(partition.index);
      this.dispatch();
      if (!page.more) return;
    }
  }

  /**
   * Reads again from the lowest point a held partition was read to (a partition was taken whose
   * position is behind the reader, or a reset): the others skip what they have taken already.
   */
  private rewind(): void {
    this.generation++;
    const held = this.partitions.filter((p) => p.held);
    this.readPosition = held.reduce((min, p) => (p.readUpTo < min ? p.readUpTo : min), held[0]?.readUpTo ?? this.readPosition);
    this.read();
  }

  /** Entries in flight here per partition, stale ones included (their streams are still busy). */
  private inFlightHere(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const member of [...this.members.values(), ...this.leaving.values()]) {
      for (const work of member.inFlight.values()) counts.set(work.partition, (counts.get(work.partition) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * The lease is gone (its revision moved: another server took it after it expired, or a reset
   * moved the position): nothing of it goes out here any more; what is in flight stays with its
   * members, as stale (their acks only free the streams).
   */
  private lose(partition: PartitionState): void {
    if (!partition.held) return;
    this.options.logger.warn({ group: this.group.name, partition: partition.index }, 'consumer group: a partition lease was lost (taken over, or reset); no longer served here');
    partition.held = false;
    partition.releasing = false;
    partition.dirty = false;
    for (const work of partition.inFlight.values()) work.stale = true;
    this.buffered -= partition.inFlight.size + partition.waiting.length;
    partition.inFlight.clear();
    partition.dropWaiting();
  }

  /**
   * One round with the other servers (serialized; queued once at most): record this server's
   * live members, read every server's record and the partitions' leases, then hand back the
   * excess of this server's share or take free and expired leases up to it (at the save that
   * follows, which also renews the held ones).
   */
  coordinate(refresh = false): Promise<void> {
    if (this.coordinationQueued && !refresh) return this.coordinating;
    this.coordinationQueued = true;
    this.coordinating = this.coordinating
      .then(() => {
        this.coordinationQueued = false;
        return this.coordinateNow(refresh);
      })
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error, group: this.group.name }, 'consumer group: coordinating with the other servers failed; retried');
      });
    return this.coordinating;
  }

  private async coordinateNow(refresh: boolean): Promise<void> {
    if (this.stopped || this.stopping) return;
    const live = this.members.size;
    const holding = this.partitions.some((p) => p.held);
    // A runtime loaded only to answer Describe costs nothing between Describes.
    if (!refresh && live === 0 && this.recordedMembers === 0 && !holding) return;
    const { name } = this.group;
    const { serverId, leaseMs } = this.coordination;
    const stored = await this.groups.getGroup(name);
    if (!stored || stored.createdAt.getTime() !== this.group.createdAt.getTime()) {
      await this.gone();
      return;
    }
    if (stored.revision !== this.group.revision) this.group = stored;
    if (live > 0 || this.recordedMembers > 0) {
      await this.groups.saveGroupServer(name, { serverId, members: live, expiresAt: new Date(Date.now() + leaseMs), view: this.view() });
      this.recordedMembers = live;
    }
    const [servers, records] = await Promise.all([this.groups.listGroupServers(name), this.groups.getGroupPartitions(name)]);
    if (this.stopped || this.stopping) return;
    const now = Date.now();
    this.otherServers = this.coordination.exclusive ? [] : servers.filter((s) => s.serverId !== serverId && s.expiresAt.getTime() > now);
    for (const record of records) {
      const state = this.partitions[record.partition];
      if (!state) continue;
      state.storedOwner = record.owner;
      if (!state.held) {
        state.position = record.position;
        state.revision = record.revision;
      }
    }
    const share = live === 0 ? 0 : serverShare(this.partitions.length, serverId, [...this.otherServers, { serverId, members: live }]);
    const kept = this.partitions.filter((p) => p.held && !p.releasing);
    if (kept.length > share) {
      // Hand back those with the least in flight here: they are free soonest.
      const inFlight = this.inFlightHere();
      const excess = kept.sort((a, b) => (inFlight.get(a.index) ?? 0) - (inFlight.get(b.index) ?? 0)).slice(0, kept.length - share);
      for (const partition of excess) partition.releasing = true;
      this.rebalance();
    } else if (kept.length < share) {
      let wanted = share - kept.length;
      for (const partition of this.partitions) {
        if (wanted > 0 && partition.held && partition.releasing && !partition.handingBack) {
          partition.releasing = false;
          wanted--;
        }
      }
      const takeable = records.filter((record) => {
        const state = this.partitions[record.partition];
        if (!state || state.held) return false;
        if (this.coordination.exclusive || record.owner === undefined || record.owner === serverId) return true;
        return (record.leaseExpiresAt?.getTime() ?? 0) <= now;
      });
      // Free ones first (handed back cleanly: no wait), then expired ones.
      takeable.sort((a, b) => Number(a.owner !== undefined) - Number(b.owner !== undefined));
      this.toAcquire = takeable.slice(0, wanted);
      this.rebalance();
    }
    await this.save();
  }

  /** The group was deleted (or created again) elsewhere: members' calls end with NOT_FOUND. */
  private async gone(): Promise<void> {
    if (this.stopped) return;
    this.coordination.onGone();
    this.stopping = true;
    this.finish(new ConsumerGroupNotFoundError(this.group.name));
  }

  /** Saves dirty positions and parked entries, renews, takes and hands back leases: one conditional write. */
  save(): Promise<void> {
    this.saving = this.saving.then(() => this.saveNow()).catch((error: unknown) => {
      this.options.logger.error({ err: error, group: this.group.name }, 'consumer group: saving positions failed; retried');
    });
    return this.saving;
  }

  private plan(): PlannedUpdate[] {
    const { serverId, leaseMs } = this.coordination;
    const now = performance.now();
    const lease = new Date(Date.now() + leaseMs);
    const planned: PlannedUpdate[] = [];
    const inFlight = this.inFlightHere();
    for (const state of this.partitions) {
      if (!state.held) continue;
      const idle = !inFlight.has(state.index);
      const saved = (): ConsumerGroupPartitionUpdate => {
        const progress = state.progress();
        return { partition: state.index, position: state.position, expectedRevision: state.revision, ...(progress ? { progress } : {}) };
      };
      if ((state.releasing || this.stopping) && idle) {
        // Nothing of it in flight here: handed back at once, no wait for the next holder.
        state.handingBack = true;
        planned.push({ state, kind: 'release', update: saved() });
      } else if (this.stopping) {
        // Stopping with entries in flight: the lease ends now, and the next holder waits out their ack wait.
        state.handingBack = true;
        planned.push({ state, kind: 'expire', update: { ...saved(), owner: serverId, leaseExpiresAt: new Date() } });
      } else if (state.dirty || now >= state.renewAt) {
        planned.push({ state, kind: 'save', update: { ...saved(), owner: serverId, leaseExpiresAt: lease } });
      }
    }
    for (const record of this.toAcquire.splice(0)) {
      const state = this.partitions[record.partition];
      if (!state || state.held) continue;
      // Its stored progress stays with it, for whoever holds it after this server.
      const { progress } = record;
      planned.push({
        state,
        kind: 'acquire',
        stored: record,
        update: { partition: record.partition, position: record.position, expectedRevision: record.revision, owner: serverId, leaseExpiresAt: lease, ...(progress ? { progress } : {}) },
      });
    }
    return planned;
  }

  private async saveNow(): Promise<void> {
    const planned = this.plan();
    const parked = this.parkedToSave.splice(0);
    if (planned.length === 0 && parked.length === 0) return;
    const dirty = planned.filter((p) => p.state.dirty);
    for (const { state } of dirty) state.dirty = false;
    const sentAt = performance.now();
    let saved: Array<ConsumerGroupPartition | undefined>;
    try {
      saved = await this.groups.saveGroupPartitions(this.group.name, planned.map((p) => p.update), parked);
    } catch (error) {
      for (const { state } of planned) state.handingBack = false;
      if (error instanceof ConsumerGroupNotFoundError) {
        await this.gone();
        return;
      }
      for (const { state } of dirty) state.dirty = true;
      this.parkedToSave.unshift(...parked);
      throw error;
    }
    const { leaseMs, renewMs } = this.coordination;
    // The lease counts here a little less than in the store: a margin for clocks and the write's own time.
    const until = sentAt + leaseMs - Math.min(1000, leaseMs / 5);
    let taken = false;
    saved.forEach((record, i) => {
      const plannedUpdate = planned[i];
      if (!plannedUpdate) return;
      const { state, kind } = plannedUpdate;
      state.handingBack = false;
      if (!record) {
        if (kind !== 'acquire') this.lose(state);
        return;
      }
      state.revision = record.revision;
      state.storedOwner = record.owner;
      if (kind === 'release' || kind === 'expire') {
        state.held = false;
        state.releasing = false;
        this.buffered -= state.waiting.length;
        state.dropWaiting();
        return;
      }
      state.leaseUntil = until;
      state.renewAt = sentAt + renewMs;
      if (kind === 'acquire') {
        const previous = plannedUpdate.stored;
        state.held = true;
        state.releasing = false;
        state.startAt(record.position, record.progress);
        // Taken from another server whose lease expired: its members may still ack what it
        // delivered before then, until the ack wait ends; none of it goes out again before that.
        const waitMs =
          !this.coordination.exclusive && previous?.owner !== undefined && previous.owner !== this.coordination.serverId
            ? (previous.leaseExpiresAt?.getTime() ?? 0) + this.settings.ackWaitMs - Date.now()
            : 0;
        state.deliverableAt = sentAt + Math.max(0, waitMs);
        taken = true;
      }
    });
    if (taken) this.rewind();
    if (planned.some((p) => p.kind !== 'save')) this.rebalance();
  }

  /** Moves every partition to `position`, wherever its lease is; entries in flight stay with their members, as stale. */
  async reset(position: Position): Promise<void> {
    this.generation++;
    await this.save();
    // What was parked after the position is delivered again: it leaves the parked list (and is
    // parked again if it fails again). After the save above, so that nothing parked before the
    // reset is written to the list after this.
    await this.groups.unparkAfter(this.group.name, position);
    this.parkedCount = await this.groups.countParked(this.group.name);
    const reset = this.saving.then(() => this.resetNow(position));
    this.saving = reset.catch(() => undefined);
    await reset;
    this.rewind();
  }

  /**
   * Writes the position into every partition record, compared with its revision as read, its
   * lease kept: the server holding one finds out at its next save (refused), drops it and takes
   * it again at the new position.
   */
  private async resetNow(position: Position): Promise<void> {
    const done = new Set<number>();
    for (let attempt = 0; done.size < this.partitions.length; attempt++) {
      if (attempt >= 20) throw new Error(`consumer group ${this.group.name}: the reset kept losing to other writers`);
      const records = (await this.groups.getGroupPartitions(this.group.name)).filter((r) => !done.has(r.partition));
      if (records.length === 0) break;
      const updates = records.map((r): ConsumerGroupPartitionUpdate => ({
        partition: r.partition,
        position,
        expectedRevision: r.revision,
        ...(r.owner !== undefined && r.leaseExpiresAt !== undefined ? { owner: r.owner, leaseExpiresAt: r.leaseExpiresAt } : {}),
      }));
      const saved = await this.groups.saveGroupPartitions(this.group.name, updates, []);
      saved.forEach((record) => {
        if (!record) return;
        done.add(record.partition);
        const state = this.partitions[record.partition];
        if (!state) return;
        state.revision = record.revision;
        state.startAt(position, undefined);
        if (!state.held) return;
        for (const work of state.inFlight.values()) work.stale = true;
        this.buffered -= state.inFlight.size + state.waiting.length;
        state.inFlight.clear();
        state.dropWaiting();
      });
    }
  }

  /** The parked entries counted in the store (other servers park too). */
  countParked(count: number): void {
    this.parkedCount = count;
  }

  /** The group as this server serves it: its members, and the partitions as it knows them. */
  status(): GroupStatus {
    const now = Date.now();
    const { serverId } = this.coordination;
    const partitions = this.partitions.map((p): PartitionStatus => {
      const oldest = p.oldest();
      const recordedAt = oldest?.entry.recordedAt?.getTime();
      return {
        partition: p.index,
        position: p.position,
        memberId: p.owner?.id,
        inFlight: p.inFlight.size,
        lagEntries: p.waiting.length + p.inFlight.size,
        lagSeconds: recordedAt === undefined ? 0 : Math.max(0, (now - recordedAt) / 1000),
        held: p.held,
        serverId: p.held ? serverId : p.storedOwner,
      };
    });
    const members = this.order.map((m) => ({
      serverId,
      memberId: m.id,
      memberName: m.name,
      partitions: [...m.partitions].sort((a, b) => a - b),
      inFlight: m.inFlight.size,
      joinedAt: m.joinedAt,
    }));
    return { group: this.group, partitions, members, parkedCount: this.parkedCount, readPosition: this.readPosition };
  }

  /**
   * The whole group, across servers: this server's part, and for the partitions other servers
   * hold, and their members, what those servers recorded at their last renewal (at most a renew
   * interval old).
   */
  describe(): GroupStatus {
    const status = this.status();
    for (const server of this.otherServers) {
      if (!server.view) continue;
      for (const member of server.view.members) status.members.push({ serverId: server.serverId, ...member });
      for (const part of server.view.partitions) {
        const mine = status.partitions[part.partition];
        if (!mine || mine.held) continue;
        status.partitions[part.partition] = {
          ...part,
          position: part.position > mine.position ? part.position : mine.position,
          held: false,
          serverId: server.serverId,
        };
      }
    }
    return status;
  }

  /** What this server serves, recorded with its membership record for Describe on the others. */
  private view(): ConsumerGroupServerView {
    const { members, partitions } = this.status();
    return {
      members: members.map(({ serverId: _server, ...member }) => member),
      partitions: partitions.filter((p) => p.held).map(({ held: _held, serverId: _server, ...partition }) => partition),
    };
  }


  /**
   * Stops serving: positions are saved and leases handed back (a partition with entries in
   * flight here: its lease ends now, so its next holder waits out their ack wait), this server's
   * record removed, then members' calls end with `error`.
   */
  async stop(error: Error): Promise<void> {
    if (this.stopped || this.stopping) return;
    this.stopping = true;
    this.rebalance();
    await this.save();
    if (this.recordedMembers > 0) {
      await this.groups
        .saveGroupServer(this.group.name, { serverId: this.coordination.serverId, members: 0, expiresAt: new Date() })
        .catch((failure: unknown) => this.options.logger.warn({ err: failure, group: this.group.name }, 'consumer group: removing this server\'s record failed; it expires'));
      this.recordedMembers = 0;
    }
    this.finish(error);
  }

  private finish(error: Error): void {
    this.stopped = true;
    this.stopListening();
    for (const timer of this.timers) clearInterval(timer);
    for (const member of this.members.values()) {
      member.failure = error;
      member.notify();
    }
  }
}

/**
 * The consumer groups of this process (docs/consumer-groups.md): their definitions in the
 * store, and a runtime per group that somebody consumes or asked about, loaded on first use.
 * On the embedded store one process serves everything.
 */
export class ConsumerGroups {
  private readonly runtimes = new Map<string, Promise<GroupRuntime>>();
  private stopped = false;
  /** This server among the servers of a group (partition leases name it); new at every start. */
  readonly serverId = randomUUID();

  constructor(private readonly options: ConsumerGroupsOptions) {}

  private get store(): ConsumerGroupStore {
    const groups = this.options.store.groups;
    if (!groups) throw new ConsumerGroupsUnavailableError();
    return groups;
  }

  async create(definition: ConsumerGroupDefinition): Promise<StoredConsumerGroup> {
    return this.store.createGroup(definition);
  }

  async get(name: string): Promise<StoredConsumerGroup> {
    const group = await this.store.getGroup(name);
    if (!group) throw new ConsumerGroupNotFoundError(name);
    return group;
  }

  list(): Promise<StoredConsumerGroup[]> {
    return this.store.listGroups();
  }

  async update(name: string, settings: Partial<ConsumerGroupSettings>): Promise<StoredConsumerGroup> {
    for (;;) {
      const group = await this.get(name);
      const updated = await this.store.updateGroupSettings(name, { ...group.settings, ...settings }, group.revision);
      if (!updated) continue; // someone else updated it meanwhile: apply ours over theirs
      const runtime = this.runtimes.get(name);
      if (runtime) (await runtime).group = updated;
      return updated;
    }
  }

  async delete(name: string): Promise<void> {
    const runtime = this.runtimes.get(name);
    this.runtimes.delete(name);
    this.settled.delete(name);
    if (runtime) await (await runtime.catch(() => undefined))?.stop(new ConsumerGroupNotFoundError(name));
    if (!(await this.store.deleteGroup(name))) throw new ConsumerGroupNotFoundError(name);
  }

  async reset(name: string, position: Position): Promise<void> {
    await this.get(name);
    const runtime = await this.runtime(name);
    await runtime.reset(position);
  }

  /** The group's state here, after saving what was pending (so the stored parked list is complete). */
  async status(name: string): Promise<GroupStatus> {
    const runtime = await this.runtime(name);
    // Positions of partitions held by other servers, as stored now.
    await runtime.coordinate(true);
    await runtime.save();
    // Other servers park entries too.
    runtime.countParked(await this.store.countParked(name));
    return runtime.describe();
  }

  async join(name: string, options: JoinOptions): Promise<AsyncIterable<ConsumeResponse>> {
    const runtime = await this.runtime(name);
    return runtime.join(options);
  }

  async ack(name: string, memberId: string, positions: Position[], upTo: Array<{ partition: number; position: Position }>) {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new ConsumerMemberNotFoundError(name, memberId);
    return (await runtime).ack(memberId, positions, upTo);
  }

  /** The lag of every loaded group, per partition (for the gauges). */
  lagSamples(): GroupLagSample[] {
    return this.loaded.flatMap((runtime) =>
      runtime.status().partitions.map((p) => ({
        group: runtime.group.name,
        partition: p.partition,
        lagEntries: p.lagEntries,
        lagSeconds: p.lagSeconds,
        position: p.position,
        held: p.held,
      })),
    );
  }

  /** Parked entries of every loaded group. */
  parkedSamples(): Array<{ group: string; parked: number }> {
    return this.loaded.map((runtime) => ({ group: runtime.group.name, parked: runtime.status().parkedCount }));
  }

  private readonly settled = new Map<string, GroupRuntime>();

  private get loaded(): GroupRuntime[] {
    return [...this.settled.values()];
  }

  /** Saves every group's positions and ends its members' calls (server shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    const runtimes = [...this.runtimes.values()];
    this.runtimes.clear();
    this.settled.clear();
    for (const runtime of runtimes) await (await runtime.catch(() => undefined))?.stop(new ShuttingDownError());
  }

  private runtime(name: string): Promise<GroupRuntime> {
    if (this.stopped) return Promise.reject(new ShuttingDownError());
    let runtime = this.runtimes.get(name);
    if (!runtime) {
      runtime = this.load(name);
      this.runtimes.set(name, runtime);
      runtime.catch(() => this.runtimes.delete(name));
    }
    return runtime;
  }

  /** Drops a runtime whose group is gone (deleted or created again by another server). */
  private forget(name: string, runtime: GroupRuntime): void {
    if (this.settled.get(name) !== runtime) return;
    this.settled.delete(name);
    this.runtimes.delete(name);
  }

  private async load(name: string): Promise<GroupRuntime> {
    const store = this.store;
    const group = await store.getGroup(name);
    if (!group) throw new ConsumerGroupNotFoundError(name);
    const stored = await store.getGroupPartitions(name);
    const partitions = stored.map((p) => new PartitionState(p.partition, p.position, p.revision));
    const leaseMs = this.options.leaseMs ?? DEFAULT_GROUP_LEASE_MS;
    const runtime = new GroupRuntime(group, partitions, await store.countParked(name), store, this.options, {
      serverId: this.serverId,
      leaseMs,
      renewMs: this.options.leaseRenewMs ?? Math.min(DEFAULT_GROUP_LEASE_RENEW_MS, Math.floor(leaseMs / 3)),
      exclusive: !this.options.store.features.sharedWithOtherProcesses,
      onGone: () => this.forget(name, runtime),
    });
    this.settled.set(name, runtime);
    return runtime;
  }
}
