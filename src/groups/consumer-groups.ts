import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConsumeResponse, FeedEntry as ApiFeedEntry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { ConsumerGroupNotFoundError, ConsumerGroupsUnavailableError, ConsumerMemberNotFoundError, ShuttingDownError } from '../core/errors';
import type { Feed } from '../feed/feed';
import type { StreamReadCheck } from '../feed/feed-filter';
import type { Lifetime } from '../realtime/lifetime';
import type {
  ConsumerGroupDefinition,
  ConsumerGroupSettings,
  ConsumerGroupStore,
  EventStore,
  ParkedEntry,
  Position,
  StoredConsumerGroup,
} from '../store/port';
import { assignPartitions } from './assignment';
import { partitionOf } from './partition-hash';

/** Entries a group's reader keeps read ahead and not done, at most (then it waits for acks). */
const READ_AHEAD = 2000;
/** Entries per read of the feed. */
const READ_PAGE = 500;
/** Dirty positions are saved this often (a crash replays at most this much of acked work). */
const CHECKPOINT_INTERVAL_MS = 1000;
/** The reader looks at the feed this often even without a commit announced here. */
const POLL_INTERVAL_MS = 1000;

export interface ConsumerGroupsOptions {
  store: EventStore;
  feed: Feed;
  logger: Logger;
  heartbeatIntervalMs: number;
}

/** How far a group's partition is behind, for DescribeConsumerGroup and the gauges. */
export interface PartitionStatus {
  partition: number;
  position: Position;
  memberId: string | undefined;
  inFlight: number;
  lagEntries: number;
  lagSeconds: number;
}

export interface MemberStatus {
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
}

/** What a member joining with Consume brings. */
export interface JoinOptions {
  memberName: string;
  /** Its key's read check (undefined without auth): entries of streams it may not read are parked. */
  mayRead: StreamReadCheck | undefined;
  lifetime: Lifetime;
}

/** An entry read from the feed and not done yet: waiting, or in flight to a member. */
interface Work {
  entry: ApiFeedEntry;
  partition: number;
  /** Deliveries so far. */
  deliveries: number;
  /** While in flight: to whom, and since when (performance.now()). */
  member?: Member | undefined;
  deliveredAt?: number;
  /** In flight from before a reset: its ack only releases its stream. */
  stale?: boolean;
}

class Member {
  readonly joinedAt = new Date();
  readonly partitions = new Set<number>();
  readonly inFlight = new Map<Position, Work>();
  readonly outbox: ConsumeResponse[] = [];
  /** The call ended: no new deliveries, but its acks count while it holds entries. */
  gone = false;
  /** Ends the member's call with this error (group deleted). */
  failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly mayRead: StreamReadCheck | undefined,
  ) {}

  failed(): boolean {
    return this.failure !== undefined;
  }

  send(message: ConsumeResponse): void {
    this.outbox.push(message);
    this.notify();
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

class PartitionState {
  /** Every entry of the partition at or before it is done (as last computed). */
  position: Position;
  /** The stored revision (saves compare it). */
  revision: bigint;
  /** Saved position differs from `position`. */
  dirty = false;
  /** Entries read and not in flight, in position order. */
  readonly waiting: Work[] = [];
  /** Entries in flight (not stale). */
  readonly inFlight = new Set<Work>();
  owner: Member | undefined;

  constructor(
    readonly index: number,
    position: Position,
    revision: bigint,
  ) {
    this.position = position;
    this.revision = revision;
  }

  /** Puts an entry back in position order (a redelivery goes before later ones). */
  putBack(work: Work): void {
    const position = work.entry.position;
    let low = 0;
    let high = this.waiting.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.waiting[middle]?.entry.position ?? 0n) < position) low = middle + 1;
      else high = middle;
    }
    this.waiting.splice(low, 0, work);
  }

  /** The oldest entry not done, by position. */
  oldest(): Work | undefined {
    let oldest = this.waiting[0];
    for (const work of this.inFlight) if (!oldest || work.entry.position < oldest.entry.position) oldest = work;
    return oldest;
  }
}

/**
 * One consumer group served by this process: its reader of the feed, partitions, members,
 * in-flight entries, the ack-wait timer and the batched saves of its positions
 * (docs/consumer-groups.md).
 */
class GroupRuntime {
  private readonly members = new Map<string, Member>();
  /** Members whose call ended and who still hold entries: their acks still count. */
  private readonly leaving = new Map<string, Member>();
  /** Join order of the live members. */
  private order: Member[] = [];
  /** Streams with an entry in flight (stale ones included): never two at once. */
  private readonly busy = new Set<string>();
  private readonly parkedToSave: ParkedEntry[] = [];
  private readPosition: Position;
  private buffered = 0;
  private reading = false;
  private readAgain = false;
  /** Bumped by a reset: pages read before it are dropped. */
  private generation = 0;
  private parkedCount: number;
  private saving: Promise<void> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopListening: () => void;
  private stopped = false;

  constructor(
    public group: StoredConsumerGroup,
    private readonly partitions: PartitionState[],
    parkedCount: number,
    private readonly groups: ConsumerGroupStore,
    private readonly options: ConsumerGroupsOptions,
  ) {
    this.parkedCount = parkedCount;
    this.readPosition = partitions.reduce((min, p) => (p.position < min ? p.position : min), partitions[0]?.position ?? 0n);
    this.stopListening = options.feed.onCommitted(() => this.read());
    const tick = Math.min(1000, Math.max(50, Math.floor(group.settings.ackWaitMs / 10)));
    this.timers.push(
      setInterval(() => this.expire(), tick),
      setInterval(() => void this.save(), CHECKPOINT_INTERVAL_MS),
      setInterval(() => this.read(), POLL_INTERVAL_MS),
    );
    for (const timer of this.timers) timer.unref();
  }

  get settings(): ConsumerGroupSettings {
    return this.group.settings;
  }

  /** A member joins: it gets partitions, then deliveries, until its call ends. */
  async *join(options: JoinOptions): AsyncGenerator<ConsumeResponse> {
    if (this.stopped) throw new ConsumerGroupNotFoundError(this.group.name);
    const member = new Member(randomUUID(), options.memberName, options.mayRead);
    this.members.set(member.id, member);
    this.order.push(member);
    member.send({ message: { $case: 'joined', value: { memberId: member.id, group: undefined } } });
    this.rebalance();
    this.read();
    const { lifetime } = options;
    try {
      while (!lifetime.ended) {
        const message = member.outbox.shift();
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
    for (const { partition, position } of upTo) {
      for (const work of [...member.inFlight.values()]) {
        if (work.partition === partition && work.entry.position <= position) {
          this.done(work);
          acked++;
        }
      }
    }
    if (member.gone && member.inFlight.size === 0) this.leaving.delete(member.id);
    this.dispatch();
    this.read();
    return { acked, ignored };
  }

  /** An in-flight entry is done (acked or parked): its stream and the member's slot are free. */
  private done(work: Work): void {
    this.release(work);
    if (!work.stale) {
      this.buffered--;
      this.partitions[work.partition]?.inFlight.delete(work);
      this.advance(work.partition);
    }
  }

  private release(work: Work): void {
    work.member?.inFlight.delete(work.entry.position);
    this.busy.delete(work.entry.stream);
    if (work.member?.gone && work.member.inFlight.size === 0) this.leaving.delete(work.member.id);
    work.member = undefined;
  }

  /** Recomputes a partition's position: just before its oldest entry not done, else how far the reader got. */
  private advance(index: number): void {
    const partition = this.partitions[index];
    if (!partition) return;
    const oldest = partition.oldest();
    let position = oldest ? oldest.entry.position - 1n : this.readPosition;
    if (position < partition.position) position = partition.position;
    if (position !== partition.position) {
      partition.position = position;
      partition.dirty = true;
    }
  }

  /** Spreads partitions over the live members and tells those whose partitions changed. */
  private rebalance(): void {
    const current = new Map<number, string>();
    for (const partition of this.partitions) if (partition.owner && !partition.owner.gone) current.set(partition.index, partition.owner.id);
    const assigned = assignPartitions(this.partitions.length, this.order.map((m) => m.id), current);
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
   * an entry in flight, up to each member's max in flight.
   */
  private dispatch(): void {
    const max = this.settings.maxInFlight;
    for (const partition of this.partitions) {
      const owner = partition.owner;
      if (!owner || owner.gone || owner.inFlight.size >= max || partition.waiting.length === 0) continue;
      for (let i = 0; i < partition.waiting.length && owner.inFlight.size < max; ) {
        const work = partition.waiting[i];
        if (!work || this.busy.has(work.entry.stream)) {
          i++;
          continue;
        }
        partition.waiting.splice(i, 1);
        if (owner.mayRead && !owner.mayRead(work.entry.stream)) {
          this.park(work, 'denied');
          continue;
        }
        work.deliveries++;
        work.member = owner;
        work.deliveredAt = performance.now();
        owner.inFlight.set(work.entry.position, work);
        partition.inFlight.add(work);
        this.busy.add(work.entry.stream);
        owner.send({ message: { $case: 'delivery', value: { entry: work.entry, partition: partition.index, deliveryCount: work.deliveries } } });
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
    if (expired.length === 0) return;
    for (const work of expired) {
      this.release(work);
      if (work.stale) continue;
      const partition = this.partitions[work.partition];
      partition?.inFlight.delete(work);
      if (work.deliveries >= this.settings.maxDeliveries) {
        this.park(work, 'max-deliveries');
      } else {
        partition?.putBack(work);
      }
    }
    this.dispatch();
  }

  /** Gives up on an entry: kept in the parked list, and its partition moves on. */
  private park(work: Work, reason: string): void {
    const { entry } = work;
    this.parkedToSave.push({ position: entry.position, stream: entry.stream, version: entry.version, deliveries: work.deliveries, reason, parkedAt: new Date() });
    this.parkedCount++;
    this.options.logger.warn({ group: this.group.name, stream: entry.stream, version: entry.version, position: entry.position, deliveries: work.deliveries, reason }, 'consumer group parked an entry');
    this.buffered--;
    this.advance(work.partition);
    // Rare: saved now rather than at the next checkpoint, so that it is listed at once.
    void this.save();
  }

  /** Reads the feed after `readPosition` while the read-ahead has room and someone consumes. */
  read(): void {
    if (this.stopped || this.members.size === 0) return;
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
      if (this.stopped || this.buffered >= READ_AHEAD) return;
      const generation = this.generation;
      const page = await this.options.feed.read(selection, this.readPosition, READ_PAGE, undefined);
      if (generation !== this.generation || this.stopped) continue;
      for (const entry of page.entries) {
        const index = partitionOf(entry.stream, this.partitions.length);
        const partition = this.partitions[index];
        if (!partition || entry.position <= partition.position) continue;
        partition.waiting.push({ entry, partition: index, deliveries: 0 });
        this.buffered++;
      }
      this.readPosition = page.reached;
      for (const partition of this.partitions) this.advance(partition.index);
      this.dispatch();
      if (!page.more) return;
    }
  }

  /** Saves dirty positions and parked entries, one conditional write for the group. */
  save(): Promise<void> {
    this.saving = this.saving.then(() => this.saveNow()).catch((error: unknown) => {
      this.options.logger.error({ err: error, group: this.group.name }, 'consumer group: saving positions failed; retried');
    });
    return this.saving;
  }

  private async saveNow(): Promise<void> {
    const dirty = this.partitions.filter((p) => p.dirty);
    const parked = this.parkedToSave.splice(0);
    if (dirty.length === 0 && parked.length === 0) return;
    for (const partition of dirty) partition.dirty = false;
    const updates = dirty.map((p) => ({ partition: p.index, position: p.position, expectedRevision: p.revision }));
    try {
      const saved = await this.groups.saveGroupPartitions(this.group.name, updates, parked);
      saved.forEach((stored, i) => {
        const partition = dirty[i];
        if (!partition) return;
        if (stored) partition.revision = stored.revision;
        else this.options.logger.error({ group: this.group.name, partition: partition.index }, 'consumer group: a partition was saved by someone else; its position here is not saved');
      });
    } catch (error) {
      if (error instanceof ConsumerGroupNotFoundError) return;
      for (const partition of dirty) partition.dirty = true;
      this.parkedToSave.unshift(...parked);
      throw error;
    }
  }

  /** Moves every partition to `position`; entries in flight stay with their members, as stale. */
  async reset(position: Position): Promise<void> {
    this.generation++;
    await this.save();
    for (const partition of this.partitions) {
      for (const work of partition.inFlight) work.stale = true;
      partition.inFlight.clear();
      partition.waiting.length = 0;
      partition.position = position;
      partition.dirty = true;
    }
    this.buffered = 0;
    this.readPosition = position;
    await this.save();
    this.read();
  }

  status(): GroupStatus {
    const now = Date.now();
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
      };
    });
    const members = this.order.map((m) => ({
      memberId: m.id,
      memberName: m.name,
      partitions: [...m.partitions].sort((a, b) => a - b),
      inFlight: m.inFlight.size,
      joinedAt: m.joinedAt,
    }));
    return { group: this.group, partitions, members, parkedCount: this.parkedCount, readPosition: this.readPosition };
  }

  /** Stops serving: members' calls end with `error`; positions are saved first. */
  async stop(error: Error): Promise<void> {
    if (this.stopped) return;
    await this.save();
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
    await runtime.save();
    return runtime.status();
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
      runtime.status().partitions.map((p) => ({ group: runtime.group.name, partition: p.partition, lagEntries: p.lagEntries, lagSeconds: p.lagSeconds })),
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

  private async load(name: string): Promise<GroupRuntime> {
    const store = this.store;
    const group = await store.getGroup(name);
    if (!group) throw new ConsumerGroupNotFoundError(name);
    const stored = await store.getGroupPartitions(name);
    const partitions = stored.map((p) => new PartitionState(p.partition, p.position, p.revision));
    const runtime = new GroupRuntime(group, partitions, await store.countParked(name), store, this.options);
    this.settled.set(name, runtime);
    return runtime;
  }
}
