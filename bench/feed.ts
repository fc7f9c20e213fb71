import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupClient } from './api';
import { SINGLES_BATCH } from './catchup-singles';
import type { CatchUpJob, CatchUpResult, PacedWriteResult } from './jobs';
import { cpuSeconds, rssPeakSampler, startEventHorizon, type ServerProcess, type Worker } from './processes';
import { holdSubscriptions, record, type Bench, type Plan } from './scenarios';
import { seed, type SeedSpec } from './seed';
import { windowLatency } from './stats';

/**
 * The feed (issue 15): catch-up through SubscribeFeed, and live fan-out to feed subscribers.
 *
 * **Catch-up** (`feed-catchup`). Many streams of single-event entries, written round-robin so
 * that the feed interleaves them, in a data folder of their own (`<bench folder>/feed-catch-up`,
 * so that the other scenarios' streams are not in the feed): SubscribeFeed of "/" from position 0
 * until caught_up, by one load worker counting events from the wire bytes (wire.ts), or through
 * the TypeScript client's `follow`, which decodes every entry. Against the baseline's
 * SubscribeFeed, which streams one prepared feed entry in the same framing, in the same run. Each
 * kind of figure gets an Event Horizon process of its own, so that a `--cpu-prof` profile holds
 * one kind of work (DIR/feed-catchup-feed-single, -feed-batch: the client figure too, its
 * server's work being the same); each first reads the last entries of the feed, unmeasured.
 *
 * **Fan-out** (`feed-fanout`). Subscribers of one subtree (followed from now) on the bench's own
 * server, while the writer appends single events to the subtree's streams at a steady rate, each
 * stamped with the time it was sent: append-to-delivery latency, and whether a backlog grows
 * (the p50 of the events sent in the last third of the window against the first third, and the
 * share delivered when the writer stopped).
 */

/** The seeded streams of the feed catch-up, in their own data folder. */
export function feedCatchUpSpec(plan: Plan): SeedSpec {
  return { stream: '/bench/feed', eventsPerEntry: 1, entries: plan.feedCatchUp.entriesPerStream, streams: plan.feedCatchUp.streams };
}

/** The data folder of the feed catch-up, inside the bench's temporary folder. */
export function feedCatchUpDir(dataDir: string): string {
  return path.join(dataDir, 'feed-catch-up');
}

/** Before the runs: seeds the feed catch-up's data folder. */
export async function prepareFeedCatchUp(dataDir: string, plan: Plan): Promise<void> {
  const dir = feedCatchUpDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  await seed(dir, [feedCatchUpSpec(plan)]);
}

/** One figure of the feed catch-up. */
interface FeedCatchUpFigure {
  key: string;
  label: string;
  server: 'baseline' | 'feed-single' | 'feed-batch';
  via: Extract<CatchUpJob['via'], 'feed' | 'follow'>;
  maxEntriesPerMessage?: number;
}

/** The figures, in the order they are taken; keys are those of report.ts's feed block. */
export const FEED_CATCHUP_FIGURES: readonly FeedCatchUpFigure[] = [
  { key: 'baseline.single', label: 'Baseline SubscribeFeed handler, one entry per message', server: 'baseline', via: 'feed' },
  {
    key: 'baseline.batch',
    label: `Baseline SubscribeFeed handler, batches (max_entries_per_message ${SINGLES_BATCH})`,
    server: 'baseline',
    via: 'feed',
    maxEntriesPerMessage: SINGLES_BATCH,
  },
  { key: 'feed.single', label: 'SubscribeFeed, one entry per message (a client that does not ask for batches)', server: 'feed-single', via: 'feed' },
  {
    key: 'feed.batch',
    label: `SubscribeFeed, batches (max_entries_per_message ${SINGLES_BATCH})`,
    server: 'feed-batch',
    via: 'feed',
    maxEntriesPerMessage: SINGLES_BATCH,
  },
  { key: 'client.batch', label: "The TypeScript client's follow(), every entry decoded", server: 'feed-batch', via: 'follow' },
];

/** The baseline of a figure's framing: one entry per message, or batches. */
export function feedBaselineOf(key: string): string {
  return key === 'feed.single' || key === 'baseline.single' ? 'baseline.single' : 'baseline.batch';
}

/** Reads the feed of "/" after `afterPosition` until caught_up on one load worker; events/s and CPU. */
async function readFeed(bench: Bench, target: ServerProcess, figure: FeedCatchUpFigure, afterPosition: number, expected: number, baselineEntries: number) {
  const worker = bench.workers[0] as Worker;
  const cpuBefore = cpuSeconds(target.pid);
  const started = performance.now();
  const result = await worker.run<CatchUpResult>({
    kind: 'catch-up',
    address: target.address,
    // The baseline streams `/baseline/<events per entry>/<entries>` of a prepared feed entry.
    stream: figure.server === 'baseline' ? `/baseline/1/${baselineEntries}` : '/',
    via: figure.via,
    readLimit: 0,
    afterPosition,
    ...(figure.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: figure.maxEntriesPerMessage } : {}),
  });
  const serverCores = (cpuSeconds(target.pid) - cpuBefore) / ((performance.now() - started) / 1000);
  if (result.events < expected) throw new Error(`${figure.label}: ${result.events} events delivered, expected at least ${expected}`);
  return {
    eventsPerSecond: result.events / result.seconds,
    serverCores,
    loadCpu: result.cpuCores,
    // The client yields entries, not the messages that carried them.
    ...(figure.via === 'follow' ? {} : { eventsPerMessage: result.events / result.messages }),
  };
}

/** One run of the feed catch-up figures. */
export async function feedCatchUp(bench: Bench): Promise<void> {
  const { streams, entriesPerStream, warmUpEntries } = bench.plan.feedCatchUp;
  const seeded = streams * entriesPerStream;
  const servers = new Map<FeedCatchUpFigure['server'], ServerProcess>([['baseline', bench.baseline]]);
  try {
    for (const figure of FEED_CATCHUP_FIGURES) {
      let server = servers.get(figure.server);
      if (!server) {
        server = await startEventHorizon({
          dataDir: feedCatchUpDir(bench.dataDir),
          ...(bench.cpuProfileDir ? { cpuProfileDir: path.join(bench.cpuProfileDir, `feed-catchup-${figure.server}`) } : {}),
        });
        servers.set(figure.server, server);
      }
      bench.log(`feed catch-up: ${figure.label}`);
      let head = seeded;
      if (figure.server !== 'baseline') {
        const setup = new SetupClient(server.address);
        head = Number(await setup.feedHead());
        setup.close();
      }
      // Warm-up: the last entries of the feed, read the same way.
      await readFeed(bench, server, figure, Math.max(0, head - warmUpEntries), Math.min(warmUpEntries, seeded), warmUpEntries);
      const figures = await readFeed(bench, server, figure, 0, seeded, seeded);
      bench.log(
        `  ${Math.round(figures.eventsPerSecond)} events/s, ${figures.eventsPerMessage?.toFixed(1) ?? 'n/a'} per message, ` +
          `server ${(figures.serverCores * 100).toFixed(0)} %, load generator ${(figures.loadCpu * 100).toFixed(0)} %`,
      );
      record(bench.figures, `feed.catchup.${figure.key}`, figures);
    }
  } finally {
    for (const [name, server] of servers) if (name !== 'baseline') await server.stop();
  }
}

/** One case of the feed fan-out. */
export interface FeedFanOutCase {
  key: string;
  rate: number;
  /** SubscribeFeedRequest.max_entries_per_message; unset: one entry per message. */
  maxEntriesPerMessage?: number;
}

/**
 * The cases: the Subscribe fan-out's rate for as many subscribers of one stream, then each of the
 * plan's rates, one entry per message and in batches (live entries a subscriber fell behind on
 * leave together).
 */
export function feedFanOutCases(plan: Plan): FeedFanOutCase[] {
  const subscribeRate = Math.min(plan.fanOutMaxRate, plan.fanOutDeliveriesPerSecond / plan.feedFanOut.subscribers);
  const cases: FeedFanOutCase[] = [{ key: `r${subscribeRate}.single`, rate: subscribeRate }];
  for (const rate of plan.feedFanOut.rates) {
    if (rate !== subscribeRate) cases.push({ key: `r${rate}.single`, rate });
    cases.push({ key: `r${rate}.batch`, rate, maxEntriesPerMessage: SINGLES_BATCH });
  }
  return cases;
}

/** One run of the feed fan-out figures, on the bench's own server. */
export async function feedFanOut(bench: Bench): Promise<void> {
  const { subscribers, streams: streamCount } = bench.plan.feedFanOut;
  const setup = new SetupClient(bench.server.address);
  try {
    for (const fanOutCase of feedFanOutCases(bench.plan)) {
      const subtree = `/bench/run-${bench.run}/feed-fan-out-${fanOutCase.key.replace('.', '-')}`;
      const streams = Array.from({ length: streamCount }, (_, i) => `${subtree}/s${i}`);
      await setup.createStreams(streams);
      bench.log(`feed fan-out: ${subscribers} subscribers of ${subtree}, ${fanOutCase.rate} appends/s${fanOutCase.maxEntriesPerMessage !== undefined ? ', batches' : ''}`);
      const held = await holdSubscriptions(
        bench,
        Array.from({ length: subscribers }, () => subtree),
        fanOutCase.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: fanOutCase.maxEntriesPerMessage } : {},
      );
      const rss = rssPeakSampler(bench.server.pid);
      const writer = bench.workers[bench.workers.length - 1] as Worker;
      const cpuBefore = cpuSeconds(bench.server.pid);
      const started = performance.timeOrigin + performance.now();
      const written = await writer.run<PacedWriteResult>({
        kind: 'paced-write', address: bench.server.address, streams,
        ratePerSecond: fanOutCase.rate, durationMs: bench.plan.fanOutDurationMs, seed: bench.run,
      });
      const serverCores = (cpuSeconds(bench.server.pid) - cpuBefore) / (bench.plan.fanOutDurationMs / 1000);
      if (written.errors > 0) throw new Error(`feed fan-out appends failed: ${written.firstError ?? ''}`);
      await sleep(200); // the last deliveries
      const results = await held.stop();
      // Whether a backlog grows: the events sent in the last third of the window against the first.
      const latency = windowLatency(results, started, bench.plan.fanOutDurationMs);
      const figures = {
        p50: latency.p50,
        p99: latency.p99,
        firstThirdP50: latency.firstThirdP50,
        lastThirdP50: latency.lastThirdP50,
        delivered: latency.count / (written.calls * subscribers),
        rate: fanOutCase.rate,
        appendsPerSecond: written.calls / (bench.plan.fanOutDurationMs / 1000),
        rss: rss.stop(),
        serverCores,
        loadCpu: results.reduce((sum, r) => sum + r.cpuCores, 0),
      };
      bench.log(
        `  p50 ${figures.p50.toFixed(1)} ms, p99 ${figures.p99.toFixed(1)} ms (first third p50 ${figures.firstThirdP50.toFixed(1)}, last ${figures.lastThirdP50.toFixed(1)}), ` +
          `delivered ${(figures.delivered * 100).toFixed(1)} %, server ${(serverCores * 100).toFixed(0)} %`,
      );
      record(bench.figures, `feed.fanout.${fanOutCase.key}`, figures);
    }
  } finally {
    setup.close();
  }
}
