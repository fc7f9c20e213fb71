/**
 * A member of a consumer group: receives the entries of the partitions the server assigns it,
 * runs a handler on each (with bounded concurrency), acks after the handler resolves, retries a
 * failing handler with backoff, joins again by itself after a dropped connection, and stops
 * cleanly (leave, finish what was delivered, ack). See docs/consumer-groups.md on the server.
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import { Backoff, sleep, type BackoffOptions } from './backoff';
import { EventHorizonError, toClientError } from './errors';
import type { AckRequest, AckResponse, ConsumeRequest, ConsumeResponse, ConsumerDelivery, FeedEntry } from './gen/eventhorizon/v1/eventhorizon';
import { IdleWatchdog, isResumable } from './subscription';

/** What a handler learns of a delivery besides the entry. */
export interface DeliveryContext {
  /** The entry's partition in the group. */
  partition: number;
  /** 1 on the first delivery, then 2, 3, ... (the server redelivers unacked entries). */
  deliveryCount: number;
  /** The member the entry was delivered to. */
  memberId: string;
}

/** Handles one entry; resolve to ack it. A rejection is retried, then left to the server's redelivery. */
export type ConsumeHandler = (entry: FeedEntry, context: DeliveryContext) => Promise<void>;

/** Options of `consume`. */
export interface ConsumeOptions {
  /** Entries handled at once (default 1). Each stream's entries stay in order whatever it is. */
  concurrency?: number;
  /**
   * Up to this many deliveries per message from the server (ConsumeRequest.max_deliveries_per_message,
   * default 100; 1 for one message per delivery). Only the framing changes: the handler still gets
   * deliveries one by one and each is acked by itself.
   */
  maxDeliveriesPerMessage?: number;
  /** A name for this member, shown by DescribeConsumerGroup. */
  memberName?: string;
  /** Tries of the handler per delivery before the entry is left unacked (default 3). */
  handlerAttempts?: number;
  /** Backoff between handler tries (default 100 ms doubling to 5 s). */
  retryBackoff?: BackoffOptions;
  /** Backoff between joins after a dropped connection. */
  reconnectBackoff?: BackoffOptions;
  /** A call silent this long (no heartbeat) is taken for dead and joined again (default 60 s). */
  idleTimeoutMs?: number;
  /** Told what happens: joins, assignments, reconnections, handler failures. */
  onEvent?: (event: ConsumerEvent) => void;
}

/** What a consumer tells `onEvent`. */
export type ConsumerEvent =
  | { kind: 'joined'; memberId: string }
  | { kind: 'assignment'; memberId: string; partitions: number[] }
  | { kind: 'reconnecting'; delayMs: number; error: EventHorizonError | undefined }
  | { kind: 'handlerFailed'; entry: FeedEntry; attempt: number; error: unknown };

/** A running member; `stop()` leaves the group cleanly. */
export interface GroupConsumer {
  /** The current member id ('' before the first join). */
  readonly memberId: string;
  /** Resolves once stopped; rejects with the error that ended it (NOT_FOUND, PERMISSION_DENIED...). */
  readonly done: Promise<void>;
  /** Leaves: no new deliveries, those received are handled and acked, then resolves. */
  stop(): Promise<void>;
}

/** How the consumer reaches the server (the client wires its generated stubs in). */
export interface ConsumerTransport {
  consume(request: ConsumeRequest): ClientReadableStream<ConsumeResponse>;
  ack(request: AckRequest): Promise<AckResponse>;
}

/** Deliveries per message a consumer asks for unless told otherwise (the group's default max in flight). */
const DEFAULT_DELIVERIES_PER_MESSAGE = 100;

interface Delivery {
  entry: FeedEntry;
  context: DeliveryContext;
}

/** Starts a member of `group` that runs `handler` on each delivery. */
export function consume(transport: ConsumerTransport, group: string, handler: ConsumeHandler, options: ConsumeOptions = {}): GroupConsumer {
  const consumer = new Consumer(transport, group, handler, options);
  return consumer;
}

class Consumer implements GroupConsumer {
  memberId = '';
  readonly done: Promise<void>;
  private stopping = false;
  private call: ClientReadableStream<ConsumeResponse> | undefined;
  private readonly queue: Delivery[] = [];
  private running = 0;
  /** Positions handled and not acked yet, per member id (acks name the member they came from). */
  private readonly toAck = new Map<string, bigint[]>();
  private acking: Promise<void> = Promise.resolve();
  private ackScheduled = false;
  private readonly idle = new Set<() => void>();
  private readonly stopController = new AbortController();

  constructor(
    private readonly transport: ConsumerTransport,
    private readonly group: string,
    private readonly handler: ConsumeHandler,
    private readonly options: ConsumeOptions,
  ) {
    this.done = this.run();
    this.done.catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopController.abort();
    this.call?.cancel();
    await this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.options.reconnectBackoff);
    try {
      while (!this.stopping) {
        const failure = await this.session(() => backoff.reset());
        if (this.stopping) break;
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the call's error (as toClientError mapped it)
        if (failure !== undefined && !isResumable(failure)) throw failure;
        const delayMs = backoff.next();
        this.options.onEvent?.({ kind: 'reconnecting', delayMs, error: failure instanceof EventHorizonError ? failure : undefined });
        await sleep(delayMs, this.stopController.signal).catch(() => undefined);
      }
    } finally {
      // Leave cleanly: what was delivered is handled, and acked (the server takes the acks of a
      // member whose call ended while it holds entries).
      await this.drained();
      await this.flushAcks();
    }
  }

  /** One Consume call, until it ends; returns its error (undefined when it ended cleanly). */
  private async session(healthy: () => void): Promise<unknown> {
    const call = this.transport.consume({
      group: this.group,
      memberName: this.options.memberName ?? '',
      maxDeliveriesPerMessage: this.options.maxDeliveriesPerMessage ?? DEFAULT_DELIVERIES_PER_MESSAGE,
    });
    this.call = call;
    call.on('error', () => undefined);
    const watchdog = new IdleWatchdog(this.options.idleTimeoutMs ?? 60_000, () => call.cancel());
    let memberId = '';
    try {
      for await (const response of call as AsyncIterable<ConsumeResponse>) {
        watchdog.reset();
        const message = response.message;
        if (!message) continue;
        switch (message.$case) {
          case 'joined':
            memberId = message.value.memberId;
            this.memberId = memberId;
            healthy();
            this.options.onEvent?.({ kind: 'joined', memberId });
            break;
          case 'assignment':
            this.options.onEvent?.({ kind: 'assignment', memberId, partitions: message.value.partitions });
            break;
          case 'delivery':
            this.receive(message.value, memberId);
            this.pump();
            break;
          case 'deliveries':
            for (const delivery of message.value.deliveries) this.receive(delivery, memberId);
            this.pump();
            break;
          case 'heartbeat':
            break;
        }
      }
      return undefined;
    } catch (error) {
      return toClientError(error);
    } finally {
      watchdog.stop();
      call.cancel();
    }
  }

  /** Queues a delivery for the handlers (none once stopping: the server delivers it again). */
  private receive({ entry, partition, deliveryCount }: ConsumerDelivery, memberId: string): void {
    if (!entry || this.stopping) return;
    this.queue.push({ entry, context: { partition, deliveryCount, memberId } });
  }

  /** Starts handlers while there is room. */
  private pump(): void {
    const concurrency = Math.max(1, this.options.concurrency ?? 1);
    while (this.running < concurrency) {
      const delivery = this.queue.shift();
      if (!delivery) break;
      this.running++;
      void this.handle(delivery).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) for (const resolve of this.idle) resolve();
      });
    }
  }

  private async handle({ entry, context }: Delivery): Promise<void> {
    const attempts = Math.max(1, this.options.handlerAttempts ?? 3);
    const backoff = new Backoff(this.options.retryBackoff);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.handler(entry, context);
        this.ack(context.memberId, entry.position);
        return;
      } catch (error) {
        this.options.onEvent?.({ kind: 'handlerFailed', entry, attempt, error });
        if (attempt < attempts) await sleep(backoff.next());
      }
    }
    // Left unacked: the server delivers it again after its ack wait, and parks it after max deliveries.
  }

  private ack(memberId: string, position: bigint): void {
    const list = this.toAck.get(memberId);
    if (list) list.push(position);
    else this.toAck.set(memberId, [position]);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    // Acks of one turn go in one call.
    setImmediate(() => {
      this.ackScheduled = false;
      void this.flushAcks();
    });
  }

  /** Sends the pending acks (after those in progress), retrying a dropped connection a few times. */
  private flushAcks(): Promise<void> {
    this.acking = this.acking.then(async () => {
      const batches = [...this.toAck];
      this.toAck.clear();
      for (const [memberId, positions] of batches) {
        const backoff = new Backoff({ initialMs: 50, maxMs: 1000 });
        for (let attempt = 1; attempt <= 5; attempt++) {
          try {
            await this.transport.ack({ group: this.group, memberId, positions, upTo: [] });
            break;
          } catch (error) {
            // The member is gone and holds nothing any more: its entries went back to the group.
            if (!isResumable(error) || attempt === 5) break;
            await sleep(backoff.next());
          }
        }
      }
    });
    return this.acking;
  }

  private drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.idle.delete(done);
        resolve();
      };
      this.idle.add(done);
    });
  }
}
