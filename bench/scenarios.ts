import { SetupClient } from './api';
import type { AppendLoadResult, CatchUpResult, SubscribeJob, SubscribeResult } from './jobs';
import { cpuSeconds, type ServerProcess, type Worker } from './processes';
import { summarise } from './stats';

/** Figures of one run, by key (see report.ts for what each key is). */
export type Figures = Map<string, number>;

/** How big and how long each scenario is. */
export interface Plan {
  warmupMs: number;
  durationMs: number;
  concurrencies: number[];
  /** Concurrency of the 100-event append. */
  entryConcurrency: number;
  /** Events in the large streams read by the catch-up figures: in entries of 1, of 100. */
  catchUpEvents: { single: number; hundred: number };
  /** Catch-up of single-event entries (catchup-singles.ts): the stream read, and the warm-up's. */
  catchUpSingles: { events: number; warmUpEvents: number };
  /** How long the writer of each fan-out case (fanout.ts, feed.ts) appends. */
  fanOutDurationMs: number;
  /** Load workers forked for the Subscribe fan-out's subscribers (fanout.ts), besides the bench's. */
  fanOutWorkers: number;
  /**
   * The feed fan-out's (feed.ts) first rate: this many deliveries per second divided by its
   * subscribers, at most `fanOutMaxRate` appends/s.
   */
  fanOutDeliveriesPerSecond: number;
  fanOutMaxRate: number;
  idleSubscriptions: number;
  slowConsumerMs: number;
  slowConsumerEventsPerSecond: number;
  /** Encryption cost (bench/encryption.ts): concurrency of its 1-event appends. */
  encryptionConcurrency: number;
  /** Encryption cost: events in the streams it reads, in entries of 1, of 100. */
  encryptionReadEvents: { single: number; hundred: number };
  /** Unary figures driven by h2load (unary-h2load.ts): 4 KiB writes + fdatasync timed to judge latency by. */
  fsyncProbes: number;
  /**
   * Unary figures driven by h2load: unmeasured appends (and empty calls) each server answers
   * before the first figure, so that c=1, measured first, does not time V8 compiling the code.
   */
  h2loadServerWarmUpMs: number;
  /** Entries of 1 MiB per large-entry figure (large-entries.ts), on each store. */
  largeEntries: number;
  /**
   * Feed catch-up (feed.ts): this many streams of `entriesPerStream` single-event entries,
   * written round-robin, read whole through SubscribeFeed of "/"; each server first reads the
   * last `warmUpEntries` of the feed, unmeasured.
   */
  feedCatchUp: { streams: number; entriesPerStream: number; warmUpEntries: number };
  /**
   * Feed fan-out (feed.ts): subscribers of one subtree of `streams` streams; the writer's rates
   * (appends/s) besides the Subscribe fan-out's rate for as many subscribers of one stream.
   */
  feedFanOut: { subscribers: number; streams: number; rates: number[] };
  /**
   * Consumer groups (groups.ts): a feed of `streams` streams of `entriesPerStream` single-event
   * entries delivered through a group of each of `members` member processes; the rebalance: 2
   * members of a group over `rebalance.streams` streams written at `rebalance.rate` appends/s for
   * `rebalance.durationMs`, one killed a third in, the group's ack wait `rebalance.ackWaitMs`.
   */
  groups: {
    streams: number;
    entriesPerStream: number;
    members: number[];
    rebalance: { streams: number; rate: number; durationMs: number; ackWaitMs: number };
  };
}

/** Everything a scenario needs. */
export interface Bench {
  plan: Plan;
  baseline: ServerProcess;
  server: ServerProcess;
  /** Load generators; the writer of the fan-out figures is the last one. */
  workers: Worker[];
  figures: Figures;
  /** Distinguishes the streams of one run from those of the others. */
  run: number;
  /** The bench's temporary folder: the server's data, and whatever else scenarios prepare in it. */
  dataDir: string;
  /** Where servers write V8 CPU profiles (--cpu-prof), if asked. */
  cpuProfileDir?: string;
  log(message: string): void;
}

/** Splits `total` into `parts` near-equal positive integers (fewer parts when total is small). */
function split(total: number, parts: number): number[] {
  const count = Math.min(parts, total);
  return Array.from({ length: count }, (_, i) => Math.floor(total / count) + (i < total % count ? 1 : 0));
}

/** Runs the job on each load worker at once, measuring the server's CPU meanwhile. */
async function onLoadWorkers<T>(bench: Bench, pid: number, jobs: Array<(worker: Worker) => Promise<T>>) {
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  const results = await Promise.all(jobs.map((job, i) => job(bench.workers[i] as Worker)));
  const serverCores = (cpuSeconds(pid) - cpuBefore) / ((performance.now() - started) / 1000);
  return { results, serverCores };
}

/** Closed-loop unary load: `concurrency` calls in flight across the load workers. */
export async function unaryLoad(bench: Bench, target: ServerProcess, streams: string[], concurrency: number, eventsPerEntry: number) {
  const loadWorkers = bench.workers.length - 1;
  const shares = split(concurrency, loadWorkers);
  const { results, serverCores } = await onLoadWorkers(
    bench,
    target.pid,
    shares.map((share, i) => (worker: Worker) =>
      worker.run<AppendLoadResult>({
        kind: 'append-load', address: target.address, streams, concurrency: share, eventsPerEntry,
        warmupMs: bench.plan.warmupMs, durationMs: bench.plan.durationMs, seed: bench.run * 100 + i,
      }),
    ),
  );
  const errors = results.reduce((sum, r) => sum + r.errors, 0);
  if (errors > 0) throw new Error(`${errors} calls failed: ${results.find((r) => r.firstError)?.firstError ?? ''}`);
  const calls = results.reduce((sum, r) => sum + r.calls, 0);
  const latency = summarise(results.flatMap((r) => r.latenciesMs));
  return {
    callsPerSecond: calls / (bench.plan.durationMs / 1000),
    p50: latency.p50,
    p99: latency.p99,
    loadCpu: results.reduce((sum, r) => sum + r.cpuCores, 0),
    serverCores,
    rawJsonBytesPerEvent: results.reduce((sum, r) => sum + r.rawJsonBytesPerEvent, 0) / results.length,
  };
}

export function record(figures: Figures, prefix: string, values: Record<string, number>): void {
  for (const [key, value] of Object.entries(values)) figures.set(`${prefix}.${key}`, value);
}

/** Figures 1 and 2: the empty unary handler, then Append of one event, at each concurrency. */
export async function appendSingleEvents(bench: Bench): Promise<void> {
  const setup = new SetupClient(bench.server.address);
  const streams = Array.from({ length: 16 }, (_, i) => `/bench/run-${bench.run}/append-1/s${i}`);
  await setup.createStreams(streams);
  setup.close();
  for (const concurrency of bench.plan.concurrencies) {
    bench.log(`baseline unary c=${concurrency}`);
    record(bench.figures, `baseline.unary.c${concurrency}`, await unaryLoad(bench, bench.baseline, streams, concurrency, 1));
    bench.log(`append 1 event c=${concurrency}`);
    record(bench.figures, `append1.c${concurrency}`, await unaryLoad(bench, bench.server, streams, concurrency, 1));
  }
}

/** Figure 3: Append of 100-event entries, and what they cost on disk. */
export async function appendEntries(bench: Bench): Promise<void> {
  const setup = new SetupClient(bench.server.address);
  const streams = Array.from({ length: 4 }, (_, i) => `/bench/run-${bench.run}/append-100/s${i}`);
  await setup.createStreams(streams);
  bench.log(`append 100-event entries c=${bench.plan.entryConcurrency}`);
  const load = await unaryLoad(bench, bench.server, streams, bench.plan.entryConcurrency, 100);
  let bytesStored = 0;
  let entries = 0;
  for (const stream of streams) {
    const described = await setup.describe(stream);
    bytesStored += Number(described.bytesStored);
    entries += Number(described.headVersion); // entry 0 is the stream's own $stream.started
  }
  setup.close();
  record(bench.figures, 'append100', {
    eventsPerSecond: load.callsPerSecond * 100,
    p50: load.p50,
    p99: load.p99,
    loadCpu: load.loadCpu,
    serverCores: load.serverCores,
    bytesPerEvent: bytesStored / (entries * 100),
    rawJsonBytesPerEvent: load.rawJsonBytesPerEvent,
  });
}

export async function catchUpOnce(bench: Bench, target: ServerProcess, stream: string, via: 'subscribe' | 'read', readLimit: number, expected: number) {
  const worker = bench.workers[0] as Worker;
  const { results, serverCores } = await onLoadWorkers(bench, target.pid, [
    () => worker.run<CatchUpResult>({ kind: 'catch-up', address: target.address, stream, via, readLimit }),
  ]);
  const result = results[0] as CatchUpResult;
  if (result.events < expected) {
    throw new Error(`${via} of ${stream} delivered ${result.events} events, expected ${expected}`);
  }
  return { eventsPerSecond: result.events / result.seconds, loadCpu: result.cpuCores, serverCores };
}

/** The large streams seeded before the server starts. */
export function catchUpStreams(plan: Plan): Array<{ stream: string; eventsPerEntry: number; entries: number }> {
  return [
    { stream: '/bench/catch-up-1', eventsPerEntry: 1, entries: plan.catchUpEvents.single },
    { stream: '/bench/catch-up-100', eventsPerEntry: 100, entries: plan.catchUpEvents.hundred / 100 },
  ];
}

/** Figure 4: reading and subscribing through a large stream, against the trivial streaming handler. */
export async function catchUp(bench: Bench): Promise<void> {
  for (const { stream, eventsPerEntry, entries } of catchUpStreams(bench.plan)) {
    const events = entries * eventsPerEntry;
    bench.log(`baseline streaming, entries of ${eventsPerEntry}`);
    record(
      bench.figures,
      `baseline.stream.e${eventsPerEntry}`,
      await catchUpOnce(bench, bench.baseline, `/baseline/${eventsPerEntry}/${entries}`, 'subscribe', 0, events),
    );
    bench.log(`subscribe catch-up, entries of ${eventsPerEntry}`);
    record(bench.figures, `subscribe.e${eventsPerEntry}`, await catchUpOnce(bench, bench.server, stream, 'subscribe', 0, events));
    bench.log(`read, entries of ${eventsPerEntry}`);
    // Pages of 100-event entries are limited by size (3 MiB stored) long before 1,000 entries.
    const readLimit = eventsPerEntry === 1 ? 1000 : 100;
    record(bench.figures, `read.e${eventsPerEntry}`, await catchUpOnce(bench, bench.server, stream, 'read', readLimit, events));
  }
}

/**
 * Subscribes to each item of `streams` from the load workers (the bench's, but for the writer,
 * unless given); resolves when all are live. With `feed`, each item is a subtree followed from
 * now with SubscribeFeed.
 */
export async function holdSubscriptions(
  bench: Bench,
  streams: string[],
  feed?: SubscribeJob['feed'],
  loadWorkers: Worker[] = bench.workers.slice(0, -1),
) {
  const shares = split(streams.length, loadWorkers.length);
  let offset = 0;
  const held = await Promise.all(
    shares.map((share, i) => {
      const mine = streams.slice(offset, (offset += share));
      return (loadWorkers[i] as Worker).start<SubscribeResult>({
        kind: 'subscribe', address: bench.server.address, streams: mine,
        // About 500 subscriptions per connection, as a client library would spread them.
        connections: Math.ceil(mine.length / 500),
        ...(feed ? { feed } : {}),
      });
    }),
  );
  return {
    async stop() {
      const results = await Promise.all(held.map((h) => h.stop()));
      const errors = results.reduce((sum, r) => sum + r.errors, 0);
      if (errors > 0) throw new Error(`${errors} subscriptions failed: ${results.find((r) => r.firstError)?.firstError ?? ''}`);
      return results;
    },
  };
}
