import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type { EventHorizonClient, SubscribeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { api } from '../../helpers/server';

/**
 * A well-behaved subscriber that measures how long appends take to reach it: it appends an event
 * carrying the send time every `intervalMs` and subscribes to the same stream. Faulty clients must
 * not slow it down.
 *
 * Entries still on their way count too: a report gives their age so far, and settle() waits for
 * them, so that a delay outlasting the fault being measured is not missed.
 */
export class LatencyProbe {
  private readonly latencies: number[] = [];
  private call: ClientReadableStream<SubscribeResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Send times of the probe entries appended and not yet received, by sequence number. */
  private readonly pending = new Map<number, number>();
  private sent = 0;
  private sentSinceReset = 0;
  /** How the probe's subscription ended, if it did before stop(). */
  ended: string | undefined;

  constructor(private readonly client: EventHorizonClient, private readonly stream: string, private readonly intervalMs = 25) {}

  async start(): Promise<void> {
    const eh = api(this.client);
    await eh.createStream({ stream: this.stream, createParents: true });
    const call = this.client.subscribe({ stream: this.stream });
    this.call = call;
    await new Promise<void>((resolve, reject) => {
      call.on('data', (message: SubscribeResponse) => {
        if (message.message?.$case === 'caughtUp') resolve();
        if (message.message?.$case !== 'entry') return;
        for (const event of message.message.value.events) {
          if (event.type !== 'probe') continue;
          const { n, sentAt } = JSON.parse(Buffer.from(event.data).toString()) as { n: number; sentAt: number };
          this.pending.delete(n);
          this.latencies.push(Date.now() - sentAt);
        }
      });
      call.on('error', (error: ServiceError) => {
        if (error.code !== 1) this.ended = `error ${error.code}: ${error.details}`;
        reject(error);
      });
      call.on('end', () => (this.ended ??= 'ended without an error'));
    });
    this.timer = setInterval(() => {
      const n = this.sent++;
      const sentAt = Date.now();
      this.pending.set(n, sentAt);
      this.sentSinceReset++;
      eh.append({ stream: this.stream, events: [{ type: 'probe', data: Buffer.from(JSON.stringify({ n, sentAt })) }] }).catch(() => {
        this.failures++;
        this.pending.delete(n);
      });
    }, this.intervalMs);
  }

  /** Forgets what was measured so far (the next report covers only what follows). */
  reset(): void {
    this.latencies.length = 0;
    this.sentSinceReset = 0;
  }

  /**
   * Waits until the probe has appended since the last reset and everything it appended so far
   * has arrived (or `timeoutMs` passed: the report then shows how long the rest has waited).
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.sentSinceReset === 0 && Date.now() < deadline) await sleep(5);
    const upTo = this.sent;
    while ([...this.pending.keys()].some((n) => n < upTo) && Date.now() < deadline) await sleep(5);
  }

  /** Deliveries, failed appends and the worst and 99th-percentile latency since the last reset. */
  report(): { delivered: number; failures: number; maxMs: number; p99Ms: number; ended: string | undefined } {
    const now = Date.now();
    const waiting = [...this.pending.values()].map((sentAt) => now - sentAt);
    const sorted = [...this.latencies, ...waiting].sort((a, b) => a - b);
    return {
      delivered: this.latencies.length,
      failures: this.failures,
      maxMs: sorted[sorted.length - 1] ?? 0,
      p99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
      ended: this.ended,
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.call?.cancel();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
