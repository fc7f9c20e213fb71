/**
 * One member of a consumer group for the groups figures (groups.ts), in a process of its own as
 * a deployed replica would be: the TypeScript client's `consume()` with acks, the handler an
 * optional delay (a read model's write). It tells the orchestrator over IPC:
 * - `joined` and `assignment` as the client reports them;
 * - `progress` every PROGRESS_MS while it handles entries: how many, and when the last one was;
 * - with `trace`, every delivery (partition, time, delivery count), batched, for the rebalance.
 * On `stop` it leaves cleanly (consume().stop()) and answers `stopped`.
 *
 *   node dist/bench/group-member.js ADDRESS GROUP CONCURRENCY HANDLER_DELAY_MS TRACE(0|1)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../clients/ts/src';

/** A delivery, for the rebalance figure: partition, wall time in ms, delivery count. */
export type TracedDelivery = [partition: number, atMs: number, deliveryCount: number];

/** What a member process tells the orchestrator. */
export type FromMember =
  | { type: 'joined'; memberId: string }
  | { type: 'assignment'; partitions: number[]; atMs: number }
  | { type: 'progress'; handled: number; lastAtMs: number }
  | { type: 'trace'; deliveries: TracedDelivery[] }
  | { type: 'stopped'; handled: number }
  | { type: 'failed'; message: string };

const PROGRESS_MS = 50;
/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

function send(message: FromMember): void {
  process.send?.(message);
}

function main(): void {
  const [address, group, concurrency, delayMs, trace] = process.argv.slice(2);
  if (!address || !group) throw new Error('usage: group-member ADDRESS GROUP CONCURRENCY HANDLER_DELAY_MS TRACE');
  const handlerDelayMs = Number(delayMs ?? 0);
  const tracing = trace === '1';
  const client = connect(address);
  let handled = 0;
  let lastAtMs = 0;
  let traced: TracedDelivery[] = [];
  const consumer = client.consume(
    group,
    async (_entry, context) => {
      if (tracing) traced.push([context.partition, nowMs(), context.deliveryCount]);
      if (handlerDelayMs > 0) await sleep(handlerDelayMs);
      handled++;
      lastAtMs = nowMs();
    },
    {
      concurrency: Number(concurrency ?? 1),
      memberName: `bench-${process.pid}`,
      onEvent: (event) => {
        if (event.kind === 'joined') send({ type: 'joined', memberId: event.memberId });
        if (event.kind === 'assignment') send({ type: 'assignment', partitions: event.partitions, atMs: nowMs() });
      },
    },
  );
  let reported = 0;
  const reporter = setInterval(() => {
    if (handled !== reported) {
      reported = handled;
      send({ type: 'progress', handled, lastAtMs });
    }
    if (traced.length > 0) {
      send({ type: 'trace', deliveries: traced });
      traced = [];
    }
  }, PROGRESS_MS);
  consumer.done.catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
  process.on('message', (message) => {
    if (message !== 'stop') return;
    void consumer.stop().then(() => {
      clearInterval(reporter);
      send({ type: 'progress', handled, lastAtMs });
      send({ type: 'stopped', handled });
      client.close();
      process.disconnect();
    });
  });
}

// groups.ts imports this module's types and clock: only a forked member runs.
if (require.main === module) main();
