import type { ClientReadableStream } from '@grpc/grpc-js';
import type { EventHorizonClient, SubscribeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { api } from '../../helpers/server';

/**
 * A well-behaved subscriber that measures how long appends take to reach it: it appends an event
 * carrying the send time every `intervalMs` and subscribes to the same stream. Faulty clients must
 * not slow it down.
 */
export class LatencyProbe {
  private readonly latencies: number[] = [];
  private call: ClientReadableStream<SubscribeResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
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
          const { sentAt } = JSON.parse(Buffer.from(event.data).toString()) as { sentAt: number };
          this.latencies.push(Date.now() - sentAt);
        }
      });
      call.on('error', (error: { code: number; details: string }) => {
        if (error.code !== 1) this.ended = `error ${error.code}: ${error.details}`;
        reject(error);
      });
      call.on('end', () => (this.ended ??= 'ended without an error'));
    });
    this.timer = setInterval(() => {
      eh.append({ stream: this.stream, events: [{ type: 'probe', data: Buffer.from(JSON.stringify({ sentAt: Date.now() })) }] }).catch(
        () => this.failures++,
      );
    }, this.intervalMs);
  }

  /** Forgets what was measured so far (the next report covers only what follows). */
  reset(): void {
    this.latencies.length = 0;
  }

  /** Deliveries, failed appends and the worst and 99th-percentile latency since the last reset. */
  report(): { delivered: number; failures: number; maxMs: number; p99Ms: number; ended: string | undefined } {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      delivered: sorted.length,
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
