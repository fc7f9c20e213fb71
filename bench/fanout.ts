import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupClient } from './api';
import type { PacedWriteResult, SlowConsumerResult } from './jobs';
import { cpuSeconds, rssBytes, rssPeakSampler, startEventHorizon, Worker } from './processes';
import { holdSubscriptions, record, type Bench } from './scenarios';
import { quantile, windowLatency } from './stats';

/**
 * Live fan-out and the memory of subscriptions (issue 14, targets 5 and 6).
 *
 * **Fan-out** (`fanout`): each case holds its subscribers on load workers of its own (the
 * plan's `fanOut.workers`, forked for the scenario: a Node client parses 50,000 messages/s on
 * one core at best, so one worker would measure itself), while the bench's writer appends
 * single events at the case's rate, open loop, each stamped with the time it was sent. Latency
 * is from that stamp to the arrival of the event at each subscriber, read from the wire bytes.
 * Whether a backlog grows: the p50 of the events sent in the last third of the window against
 * the first third's, and the share delivered half a second after the writer stopped.
 *
 * **Memory** (`memory`): the slow consumer's RSS peak on the bench's server (it reads the large
 * seeded stream), then idle subscriptions on a server process of their own with an empty data
 * folder, so that nothing the other figures left in the heap counts as theirs; its RSS is read
 * once it settles (changes by less than 1 MB over 2 s).
 */

/** One fan-out shape of the target 5. */
export interface FanOutCase {
  key: string;
  subscribers: number;
  streams: number;
  /** Appends per second, over all the streams (round-robin). */
  rate: number;
  targetP99Ms: number;
}

/** The shapes and rates. */
export const FAN_OUT_CASES: readonly FanOutCase[] = [
  { key: 'one100', subscribers: 100, streams: 1, rate: 500, targetP99Ms: 50 },
  { key: 'one1000', subscribers: 1000, streams: 1, rate: 50, targetP99Ms: 50 },
  { key: 'many1000', subscribers: 1000, streams: 1000, rate: 500, targetP99Ms: 20 },
];

/** How long after the writer stopped deliveries are counted. */
export const DRAIN_MS = 500;
/** The unmeasured first second of each case, at its rate. */
export const WARM_UP_MS = 1000;

/**
 * A backlog grows when the events sent last wait clearly longer than the first (twice as long,
 * and 5 ms more), or when some were still undelivered DRAIN_MS after the writer stopped.
 */
export function backlogGrows(firstThirdP50: number, lastThirdP50: number, delivered: number): boolean {
  return lastThirdP50 > Math.max(2 * firstThirdP50, firstThirdP50 + 5) || delivered < 0.999;
}

/** Figure 5: one writer, many subscribers; append-to-delivery latency, backlog, CPU. */
export async function fanOut(bench: Bench): Promise<void> {
  const workers = Array.from({ length: bench.plan.fanOutWorkers }, () => new Worker());
  const writer = bench.workers[bench.workers.length - 1] as Worker;
  const setup = new SetupClient(bench.server.address);
  try {
    for (const { key, subscribers, streams: streamCount, rate } of FAN_OUT_CASES) {
      const streams = Array.from({ length: streamCount }, (_, i) => `/bench/run-${bench.run}/fan-out-${key}/s${i}`);
      await setup.createStreams(streams);
      bench.log(`fan-out: ${subscribers} subscribers on ${streamCount} stream(s), ${rate} appends/s`);
      const held = await holdSubscriptions(
        bench,
        Array.from({ length: subscribers }, (_, i) => streams[i % streams.length] as string),
        undefined,
        workers,
      );
      // Warm-up, unmeasured: the same writer for a second, so that the figures are the steady
      // state of this shape rather than its first burst on a cold path (the h2load figures warm
      // up the same way). Its deliveries are left out below by their send time.
      const warmUp = await writer.run<PacedWriteResult>({
        kind: 'paced-write', address: bench.server.address, streams,
        ratePerSecond: rate, durationMs: WARM_UP_MS, seed: bench.run + 1000,
      });
      if (warmUp.errors > 0) throw new Error(`fan-out warm-up appends failed: ${warmUp.firstError ?? ''}`);
      await sleep(DRAIN_MS);
      const rss = rssPeakSampler(bench.server.pid);
      const cpuBefore = cpuSeconds(bench.server.pid);
      const started = performance.timeOrigin + performance.now();
      const written = await writer.run<PacedWriteResult>({
        kind: 'paced-write', address: bench.server.address, streams,
        ratePerSecond: rate, durationMs: bench.plan.fanOutDurationMs, seed: bench.run,
      });
      const serverCores = (cpuSeconds(bench.server.pid) - cpuBefore) / (bench.plan.fanOutDurationMs / 1000);
      if (written.errors > 0) throw new Error(`fan-out appends failed: ${written.firstError ?? ''}`);
      await sleep(DRAIN_MS);
      const results = await held.stop();
      // The measured window's events only (the warm-up's were sent before it).
      const latency = windowLatency(results, started, bench.plan.fanOutDurationMs);
      const figures = {
        p50: latency.p50,
        p99: latency.p99,
        firstThirdP50: latency.firstThirdP50,
        lastThirdP50: latency.lastThirdP50,
        delivered: latency.count / (written.calls * (subscribers / streamCount)),
        appendsPerSecond: written.calls / (bench.plan.fanOutDurationMs / 1000),
        rss: rss.stop(),
        serverCores,
        loadCpu: results.reduce((sum, r) => sum + r.cpuCores, 0),
        busiestWorkerCpu: Math.max(...results.map((r) => r.cpuCores)),
        writerCpu: written.cpuCores,
        appendP50: quantile(written.latenciesMs, 0.5),
        appendP99: quantile(written.latenciesMs, 0.99),
        // Server CPU per delivered message: what a change to the fan-out moves, however busy the machine.
        serverMicrosPerDelivery: (serverCores * bench.plan.fanOutDurationMs * 1000) / Math.max(1, latency.count),
        // What the rest of the shared machine was doing meanwhile.
        loadAverage: os.loadavg()[0] ?? Number.NaN,
      };
      bench.log(
        `  p50 ${figures.p50.toFixed(1)} ms, p99 ${figures.p99.toFixed(1)} ms (first third p50 ${figures.firstThirdP50.toFixed(1)}, last ${figures.lastThirdP50.toFixed(1)}), ` +
          `delivered ${(figures.delivered * 100).toFixed(1)} %, append p50/p99 ${figures.appendP50.toFixed(1)}/${figures.appendP99.toFixed(1)} ms, ` +
          `server ${(serverCores * 100).toFixed(0)} % (${figures.serverMicrosPerDelivery.toFixed(1)} µs per delivery), load workers ${(figures.loadCpu * 100).toFixed(0)} % (busiest ${(figures.busiestWorkerCpu * 100).toFixed(0)} %)`,
      );
      record(bench.figures, `fanout.${key}`, figures);
    }
  } finally {
    setup.close();
    await Promise.all(workers.map((worker) => worker.close()));
  }
}

/** Resolves with the process's RSS once it changes by less than 1 MB over 2 s (at most 20 s). */
async function settledRss(pid: number): Promise<number> {
  const samples = [rssBytes(pid)];
  for (let waited = 0; waited < 20_000; waited += 500) {
    await sleep(500);
    samples.push(rssBytes(pid));
    const recent = samples.slice(-5);
    if (recent.length === 5 && Math.max(...recent) - Math.min(...recent) < 1024 * 1024) break;
  }
  return samples[samples.length - 1] ?? Number.NaN;
}

/** The V8 heap in use, from the server's Prometheus endpoint (prom-client's default metrics). */
async function heapUsed(metricsAddress: string | undefined): Promise<number> {
  if (!metricsAddress) return Number.NaN;
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const match = /^eventhorizon_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** Figure 6: the slow consumer's peak, then idle subscriptions on a fresh server. */
export async function memory(bench: Bench): Promise<void> {
  bench.log('slow consumer');
  const stream = '/bench/catch-up-100';
  const rss = rssPeakSampler(bench.server.pid);
  const slow = await (bench.workers[0] as Worker).run<SlowConsumerResult>({
    kind: 'slow-consumer', address: bench.server.address, stream,
    eventsPerSecond: bench.plan.slowConsumerEventsPerSecond, durationMs: bench.plan.slowConsumerMs,
  });
  bench.figures.set('memory.slowConsumer', rss.stop());
  bench.figures.set('memory.slowConsumerEvents', slow.events);

  // A server process of its own: the heap the other figures grew is not the subscriptions'.
  const dataDir = fs.mkdtempSync(path.join(bench.dataDir, 'idle-subscriptions-'));
  const server = await startEventHorizon({ dataDir });
  try {
    await sleep(1000);
    bench.figures.set('memory.freshIdle', await settledRss(server.pid));
    bench.log(`${bench.plan.idleSubscriptions} idle subscriptions on a fresh server`);
    const setup = new SetupClient(server.address);
    const streams = Array.from({ length: 1000 }, (_, i) => `/bench/idle/s${i}`);
    await setup.createStreams(streams);
    setup.close();
    const held = await holdSubscriptions(
      { ...bench, server },
      Array.from({ length: bench.plan.idleSubscriptions }, (_, i) => streams[i % streams.length] as string),
    );
    bench.figures.set('memory.idleSubscriptions', await settledRss(server.pid));
    bench.figures.set('memory.idleSubscriptionsHeap', await heapUsed(server.metricsAddress));
    await held.stop();
  } finally {
    await server.stop();
  }
}
