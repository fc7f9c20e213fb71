import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { countOf, TalliedHistogram } from './tallied-histogram';

/** Latency buckets in seconds, from a cached read to a slow fsync under load. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the consumer-group gauges read (src/groups/consumer-groups.ts). */
export interface ConsumerGroupLagSource {
  lagSamples(): Array<{ group: string; partition: number; lagEntries: number; lagSeconds: number; position: bigint; held: boolean }>;
  parkedSamples(): Array<{ group: string; parked: number }>;
}

/**
 * Every Prometheus series the server exports, in one registry per server (not prom-client's
 * global one), so that several servers in one process (tests) keep separate counts.
 */
export class Metrics {
  readonly registry = new Registry();

  /**
   * RPC latency from the arrival of the call to its status (for Subscribe: its whole life), by
   * full method name and gRPC status code name: `record(method, code, seconds)` once per call.
   */
  readonly rpcDuration = new TalliedHistogram({
    name: 'eventhorizon_rpc_duration_seconds',
    help: 'RPC latency in seconds by method and gRPC status code',
    labelNames: ['method', 'code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  /** Finished RPCs by full method name and gRPC status code name: rpcDuration's counts. */
  readonly rpcs = countOf(this.rpcDuration, {
    name: 'eventhorizon_rpc_requests_total',
    help: 'Finished RPCs by method and gRPC status code',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });

  /**
   * Counts of the append path kept as plain numbers (countAppend, countPayload) and handed to
   * their counters when scraped: prom-client's `inc` validates (and, with labels, hashes) its
   * arguments at every call, three to five calls per append.
   */
  private readonly appendTally = { appends: 0, events: 0, rawBytes: 0, storedBytes: 0 };

  /** Committed appends (new entries, not deduplicated retries). */
  readonly appends: Counter = new Counter({
    name: 'eventhorizon_appends_total',
    help: 'Entries appended (Append and CreateStream with initial events)',
    registers: [this.registry],
    collect: () => setCounter(this.appends, this.appendTally.appends),
  });

  readonly events: Counter = new Counter({
    name: 'eventhorizon_events_appended_total',
    help: 'Events appended, in all entries',
    registers: [this.registry],
    collect: () => setCounter(this.events, this.appendTally.events),
  });

  /** Payload bytes as serialized ("raw") and as stored after compression ("stored"). */
  readonly payloadBytes: Counter<'form'> = new Counter({
    name: 'eventhorizon_payload_bytes_total',
    help: 'Bytes of entry and snapshot payloads before (form="raw") and after (form="stored") compression',
    labelNames: ['form'] as const,
    registers: [this.registry],
    collect: () => {
      this.payloadBytes.reset();
      // As before: no series until something was compressed.
      if (this.appendTally.rawBytes > 0) this.payloadBytes.inc({ form: 'raw' }, this.appendTally.rawBytes);
      if (this.appendTally.storedBytes > 0) this.payloadBytes.inc({ form: 'stored' }, this.appendTally.storedBytes);
    },
  });

  /** An entry of `events` events appended (not a deduplicated retry). */
  countAppend(events: number): void {
    this.appendTally.appends++;
    this.appendTally.events += events;
  }

  /** A payload compressed: its bytes before and after. */
  countPayload(rawBytes: number, storedBytes: number): void {
    this.appendTally.rawBytes += rawBytes;
    this.appendTally.storedBytes += storedBytes;
  }

  readonly subscriptions = new Gauge({
    name: 'eventhorizon_subscriptions_active',
    help: 'Subscribe calls currently open',
    registers: [this.registry],
  });

  /** Time from an entry's commit to its delivery to a subscriber: how far subscribers lag. */
  readonly subscriptionLag = new Histogram({
    name: 'eventhorizon_subscription_lag_seconds',
    help: 'Seconds between an entry being recorded and its delivery to a subscriber (a batch of entries once, by its oldest)',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600],
    registers: [this.registry],
  });

  /** Store operation latency by operation and outcome: `record(operation, 'ok' | 'error', seconds)`. */
  readonly storeDuration = new TalliedHistogram({
    name: 'eventhorizon_store_operation_duration_seconds',
    help: 'Store operation latency in seconds by operation and outcome (ok or error)',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly storeUp = new Gauge({
    name: 'eventhorizon_store_up',
    help: '1 when the last periodic store ping succeeded, else 0',
    registers: [this.registry],
  });

  /** Where the consumer-group gauges read from, once the server has its groups. */
  private groupSource: ConsumerGroupLagSource | undefined;

  /** Per group and partition: entries read from the feed and not done (docs/consumer-groups.md, Lag). */
  readonly groupLagEntries = new Gauge({
    name: 'eventhorizon_consumer_group_lag_entries',
    help: 'Entries of a consumer group partition read from the feed and not acked yet',
    labelNames: ['group', 'partition'] as const,
    registers: [this.registry],
    collect: () => this.collectGroups(),
  });

  /** Per group and partition: age of the oldest entry not done, by commit time. */
  readonly groupLagSeconds = new Gauge({
    name: 'eventhorizon_consumer_group_lag_seconds',
    help: 'Age in seconds of the oldest entry of a consumer group partition not acked yet (0 when none)',
    labelNames: ['group', 'partition'] as const,
    registers: [this.registry],
  });

  /** Per group and partition: its position (every entry at or before it is done), as this server knows it. */
  readonly groupPosition = new Gauge({
    name: 'eventhorizon_consumer_group_position',
    help: 'Feed position of a consumer group partition: every entry at or before it is done (exact on the server holding the partition; take the max across servers)',
    labelNames: ['group', 'partition'] as const,
    registers: [this.registry],
  });

  /** Per group: partitions whose lease this server holds (across servers, the group's partitions add up over them). */
  readonly groupPartitionsHeld = new Gauge({
    name: 'eventhorizon_consumer_group_partitions_held',
    help: 'Partitions of a consumer group whose lease this server holds (it delivers their entries to its members)',
    labelNames: ['group'] as const,
    registers: [this.registry],
  });

  /** Per group: entries parked after max deliveries (or denied to a member's key). */
  readonly groupParked = new Gauge({
    name: 'eventhorizon_consumer_group_parked_entries',
    help: 'Entries a consumer group parked (kept, not delivered any more)',
    labelNames: ['group'] as const,
    registers: [this.registry],
  });

  /** The consumer-group gauges read `source` at each scrape (groups loaded in this process). */
  observeConsumerGroups(source: ConsumerGroupLagSource): void {
    this.groupSource = source;
  }

  private collectGroups(): void {
    const source = this.groupSource;
    if (!source) return;
    this.groupLagEntries.reset();
    this.groupLagSeconds.reset();
    this.groupParked.reset();
    this.groupPosition.reset();
    this.groupPartitionsHeld.reset();
    const held = new Map<string, number>();
    for (const sample of source.lagSamples()) {
      const labels = { group: sample.group, partition: String(sample.partition) };
      this.groupLagEntries.set(labels, sample.lagEntries);
      this.groupLagSeconds.set(labels, sample.lagSeconds);
      this.groupPosition.set(labels, Number(sample.position));
      held.set(sample.group, (held.get(sample.group) ?? 0) + (sample.held ? 1 : 0));
    }
    for (const [group, count] of held) this.groupPartitionsHeld.set({ group }, count);
    for (const { group, parked } of source.parkedSamples()) this.groupParked.set({ group }, parked);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'eventhorizon_' });
  }
}

/** Sets an unlabelled counter to a total counted elsewhere. */
function setCounter(counter: Counter, total: number): void {
  counter.reset();
  counter.inc(total);
}
