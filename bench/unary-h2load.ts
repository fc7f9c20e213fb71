import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupClient } from './api';
import { OrderEvents } from './events';
import { fdatasyncProbe } from './fsync-probe';
import { appendBody, h2loadAvailable, runH2load, type H2loadRun, type H2loadSummary } from './h2load';
import { cpuSeconds, type ServerProcess } from './processes';
import { record, type Bench } from './scenarios';
import { summarise } from './stats';

/**
 * Issue 14: the empty unary handler and the durable 1-event Append, driven by h2load (see
 * h2load.ts) so that the load generator is not the bottleneck, and the disk's fdatasync time that
 * the latency target is judged against.
 *
 * h2load sends one body file per process, and the body names the stream. So:
 * - one stream: one h2load process with `-c C -m 1` (C connections, one call in flight on each);
 * - 64 streams: 64 h2load processes with `-c 1 -m 1`, each with the body of its own stream.
 * Both shapes keep 64 calls in flight on 64 connections at c=64, so the two differ only in the
 * streams (and in h2load's process count, whose CPU is reported). One stream is also driven with
 * its 64 calls on one connection (`-c 1 -m 64`), as a gRPC client multiplexes its calls: that
 * costs both sides far less per call than 64 connections with one call each (every response is
 * a write of its own there), so the targets are judged on each shape. The baseline is driven with
 * the same shape and bodies as the append it is compared with.
 *
 * h2load counts every HTTP 200 as a success, gRPC errors included, so no figure is recorded until
 * the servers' own counts confirm it (`verifyAppends`).
 */

/**
 * One unary figure: how many calls in flight, spread over how many streams (one h2load process
 * each), and how many of a process's calls share a connection (h2load -m; 1 unless given).
 */
export interface H2loadFigure {
  key: string;
  concurrency: number;
  streams: number;
  callsPerConnection?: number;
}

export const H2LOAD_FIGURES: readonly H2loadFigure[] = [
  { key: 'c1', concurrency: 1, streams: 1 },
  { key: 'c64m64', concurrency: 64, streams: 1, callsPerConnection: 64 },
  { key: 'c64', concurrency: 64, streams: 1 },
  { key: 'c64s64', concurrency: 64, streams: 64 },
];

/** The c=64 figures, as the report names them. */
export const C64_FIGURES = [
  { key: 'c64m64', label: 'one stream, one connection' },
  { key: 'c64', label: 'one stream, 64 connections' },
  { key: 'c64s64', label: '64 streams, 64 connections' },
] as const;

/** h2load's shape for a figure: processes × `-c connections -m callsPerConnection`. */
export function h2loadShape(figure: H2loadFigure): { processes: number; connections: number; callsPerConnection: number } {
  const callsPerConnection = figure.callsPerConnection ?? 1;
  if (figure.concurrency % (figure.streams * callsPerConnection) !== 0) throw new Error(`${figure.key}: the calls in flight do not split evenly`);
  return { processes: figure.streams, connections: figure.concurrency / figure.streams / callsPerConnection, callsPerConnection };
}

/** What a server counted of the Append calls it finished, and the streams' heads. */
export interface ServerCounts {
  ok: number;
  cancelled: number;
  /** Calls that ended with any other status: gRPC errors that h2load counted as successes. */
  otherErrors: number;
  /** Sum of the head versions of the figure's streams (Event Horizon only). */
  heads?: number;
}

/**
 * The reasons not to trust a figure, none when it holds. Every success h2load counted must be an
 * OK Append at the server: no call may end with an error status; the server must have answered
 * OK at least as many calls as h2load counted (the rest are the warm-up's); the only other
 * status allowed is CANCELLED, for at most the calls in flight when h2load stopped; and on Event
 * Horizon the streams' heads must have moved by the OK calls (plus cancelled calls that had been
 * committed already).
 */
export function verifyAppends(input: { runs: readonly H2loadSummary[]; before: ServerCounts; after: ServerCounts; inFlight: number }): string[] {
  const problems: string[] = [];
  let succeeded = 0;
  for (const [i, run] of input.runs.entries()) {
    const name = input.runs.length > 1 ? `h2load process ${i + 1}` : 'h2load';
    if (run.failed + run.errored + run.timeout > 0) problems.push(`${name}: ${run.failed} failed, ${run.errored} errored, ${run.timeout} timed out`);
    const not2xx = run.status['3xx'] + run.status['4xx'] + run.status['5xx'];
    if (not2xx > 0) problems.push(`${name}: ${not2xx} responses with an HTTP status other than 2xx`);
    if (run.succeeded === 0) problems.push(`${name}: no call succeeded`);
    succeeded += run.succeeded;
  }
  const ok = input.after.ok - input.before.ok;
  const cancelled = input.after.cancelled - input.before.cancelled;
  const errors = input.after.otherErrors - input.before.otherErrors;
  if (errors > 0) problems.push(`the server ended ${errors} Append calls with an error status`);
  if (cancelled > input.inFlight) problems.push(`the server saw ${cancelled} Append calls cancelled, more than the ${input.inFlight} in flight`);
  if (ok < succeeded) problems.push(`h2load counted ${succeeded} successes but the server answered only ${ok} Append calls with OK`);
  if (input.before.heads !== undefined && input.after.heads !== undefined) {
    const written = input.after.heads - input.before.heads;
    if (written < ok || written > ok + cancelled) {
      problems.push(`the streams' heads moved by ${written} entries, but the server answered ${ok} Append calls with OK (and ${cancelled} were cancelled)`);
    }
  }
  return problems;
}

const APPEND_METHOD = 'eventhorizon.v1.EventHorizon/Append';

/** Event Horizon's Append calls by status, from its Prometheus text (eventhorizon_rpc_requests_total). */
export function appendCallCounts(prometheusText: string): ServerCounts {
  const counts: ServerCounts = { ok: 0, cancelled: 0, otherErrors: 0 };
  for (const line of prometheusText.split('\n')) {
    const match = /^eventhorizon_rpc_requests_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const));
    if (labels.method !== APPEND_METHOD) continue;
    const value = Number(match[2]);
    if (labels.code === 'OK') counts.ok += value;
    else if (labels.code === 'CANCELLED') counts.cancelled += value;
    else counts.otherErrors += value;
  }
  return counts;
}

/** What a target counts of the figure's Append calls. */
async function serverCounts(target: ServerProcess, setup: SetupClient | undefined, streams: readonly string[]): Promise<ServerCounts> {
  if (target.appendsAnswered) return { ok: await target.appendsAnswered(), cancelled: 0, otherErrors: 0 };
  if (!target.metricsAddress || !setup) throw new Error('the server has neither metrics nor an answered-appends count');
  const response = await fetch(`http://${target.metricsAddress}/metrics`);
  if (!response.ok) throw new Error(`metrics: HTTP ${response.status}`);
  const counts = appendCallCounts(await response.text());
  let heads = 0;
  for (const stream of streams) heads += Number((await setup.describe(stream)).headVersion);
  return { ...counts, heads };
}

/** Reads the counts until they stop moving: calls h2load abandoned when it stopped may still be finishing. */
async function settledCounts(read: () => Promise<ServerCounts>): Promise<ServerCounts> {
  let last = await read();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const next = await read();
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  return last;
}

/**
 * The seconds the calls were counted over. Each h2load process measures its own duration after
 * its own warm-up; 64 processes starting on a busy machine may not measure at the same time, and
 * their summed counts then span longer than one duration: the rate is taken over that span, so
 * that staggered windows lower the figure rather than inflate it.
 */
export function measuredSeconds(runs: ReadonlyArray<Pick<H2loadRun, 'log'>>, durationMs: number): number {
  const first = Math.min(...runs.map((r) => r.log.firstStartUs));
  const last = Math.max(...runs.map((r) => r.log.lastEndUs));
  return Math.max(durationMs / 1000, (last - first) / 1e6);
}

/**
 * One figure on one target: h2load's processes at once, the server's CPU and counts around them;
 * `callsPerSecond` paces the calls instead of sending each as soon as the last is answered.
 */
async function measure(
  bench: Bench, target: ServerProcess, figure: H2loadFigure, streams: readonly string[], bodies: readonly string[], workDir: string, callsPerSecond?: number,
) {
  const setup = target.appendsAnswered ? undefined : new SetupClient(target.address);
  try {
    const read = () => serverCounts(target, setup, streams);
    const before = await settledCounts(read);
    const { processes, connections, callsPerConnection } = h2loadShape(figure);
    const cpuBefore = cpuSeconds(target.pid);
    const started = performance.now();
    const runs: H2loadRun[] = await Promise.all(
      Array.from({ length: processes }, (_, i) =>
        runH2load({
          address: target.address, bodyFile: bodies[i] as string, logFile: path.join(workDir, `log-${target.pid}-${figure.key}-${i}.tsv`),
          connections, streamsPerConnection: callsPerConnection, warmupMs: bench.plan.warmupMs, durationMs: bench.plan.durationMs,
          ...(callsPerSecond === undefined ? {} : { callsPerSecond }),
        }),
      ),
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const serverCpu = cpuSeconds(target.pid) - cpuBefore;
    const after = await settledCounts(read);
    const problems = verifyAppends({ runs: runs.map((r) => r.summary), before, after, inFlight: figure.concurrency });
    if (problems.length > 0) throw new Error(`h2load ${figure.key} on ${target.address}: the calls did not all succeed:\n  ${problems.join('\n  ')}`);
    // Per call of the whole run, warm-up included: the CPU was measured over all of it.
    const calls = after.ok - before.ok;
    const loadCpu = runs.reduce((sum, r) => sum + r.cpuSeconds, 0);
    const latency = summarise(runs.flatMap((r) => r.log.latenciesMs));
    return {
      callsPerSecond: runs.reduce((sum, r) => sum + r.summary.succeeded, 0) / measuredSeconds(runs, bench.plan.durationMs),
      p50: latency.p50,
      p99: latency.p99,
      serverCpuUs: (serverCpu / calls) * 1e6,
      serverCores: serverCpu / wallSeconds,
      loadCpuUs: (loadCpu / calls) * 1e6,
      loadCpu: loadCpu / wallSeconds,
      serverCalls: calls,
    };
  } finally {
    setup?.close();
  }
}

/** Says loudly that h2load is missing; fails in CI, where it must be installed (.ci/run). */
function missingH2load(bench: Bench): void {
  const message = 'h2load was not found: the unary figures driven by h2load need it (apt-get install nghttp2-client)';
  if (process.env.CI === 'true') throw new Error(message);
  process.stderr.write(`\n${'!'.repeat(100)}\n!! SKIPPING the h2load figures: ${message}\n${'!'.repeat(100)}\n\n`);
  bench.figures.set('h2load.missing', 1);
}

/**
 * Unmeasured calls before the first figure, 64 in flight on one connection: a server process is
 * new at each run, and c=1 comes first, so without this it timed V8 interpreting and compiling
 * the server's code (a profile of that figure showed TurboFan at work and baseline-compiled code;
 * CPU per append about 1.8× that of a warmed server).
 */
async function warmUp(bench: Bench, target: ServerProcess, stream: string, workDir: string): Promise<void> {
  const body = path.join(workDir, `warm-up-${target.pid}.bin`);
  fs.writeFileSync(body, appendBody(stream, new OrderEvents(bench.run).nextEvent()));
  await runH2load({
    address: target.address, bodyFile: body, logFile: path.join(workDir, `warm-up-${target.pid}.tsv`),
    connections: 1, streamsPerConnection: 64, warmupMs: 0, durationMs: bench.plan.h2loadServerWarmUpMs,
  });
}

/**
 * The figure the c=1 append's CPU is read against: the empty handler called at the rate the
 * append ran at c=1 (one call in flight, paced), instead of as fast as it answers. A server that
 * waits between calls pays more CPU for each (it wakes up for it, its caches have gone cold): that
 * part of the append's c=1 cost is not the append's.
 */
const PACED = { key: 'c1paced', concurrency: 1, streams: 1 } as const satisfies H2loadFigure;

/** The scenario: the disk's fdatasync, then each figure on the baseline and on Event Horizon. */
export async function unaryH2load(bench: Bench): Promise<void> {
  // The machine is shared: what the others were doing during these figures, not only at the start.
  bench.figures.set('h2load.loadAverageBefore', os.loadavg()[0] ?? Number.NaN);
  bench.log(`fdatasync probe: ${bench.plan.fsyncProbes} × (4 KiB overwrite + fdatasync) in the data folder`);
  record(bench.figures, 'fsync', { ...fdatasyncProbe(bench.dataDir, bench.plan.fsyncProbes) });
  if (!h2loadAvailable()) {
    missingH2load(bench);
    bench.figures.set('h2load.loadAverageAfter', os.loadavg()[0] ?? Number.NaN);
    return;
  }
  const workDir = fs.mkdtempSync(path.join(bench.dataDir, `h2load-run-${bench.run}-`));
  const setup = new SetupClient(bench.server.address);
  try {
    const warmUpStream = `/bench/run-${bench.run}/h2load-warm-up`;
    await setup.createStreams([warmUpStream]);
    bench.log(`h2load: warming both servers up, ${bench.plan.h2loadServerWarmUpMs / 1000} s each (unmeasured)`);
    await warmUp(bench, bench.baseline, warmUpStream, workDir);
    await warmUp(bench, bench.server, warmUpStream, workDir);
    for (const figure of H2LOAD_FIGURES) {
      const streams = Array.from({ length: figure.streams }, (_, i) => `/bench/run-${bench.run}/h2load-${figure.key}/s${i}`);
      await setup.createStreams(streams);
      const events = new OrderEvents(bench.run);
      const bodies = streams.map((stream, i) => {
        const file = path.join(workDir, `${figure.key}-${i}.bin`);
        fs.writeFileSync(file, appendBody(stream, events.nextEvent()));
        return file;
      });
      const { processes, connections, callsPerConnection } = h2loadShape(figure);
      const shape = `${processes} h2load process${processes > 1 ? 'es' : ''} × -c ${connections} -m ${callsPerConnection}`;
      bench.log(`h2load: baseline unary c=${figure.concurrency}, ${figure.streams} stream(s) (${shape})`);
      record(bench.figures, `h2load.baseline.${figure.key}`, await measure(bench, bench.baseline, figure, streams, bodies, workDir));
      bench.log(`h2load: append 1 event c=${figure.concurrency}, ${figure.streams} stream(s) (${shape})`);
      record(bench.figures, `h2load.append.${figure.key}`, await measure(bench, bench.server, figure, streams, bodies, workDir));
      const appendRate = bench.figures.get(`h2load.append.${figure.key}.callsPerSecond`);
      if (figure.key === 'c1' && appendRate !== undefined) {
        const rate = Math.max(1, Math.round(appendRate));
        bench.log(`h2load: baseline unary c=1, paced at the append's ${rate} calls/s`);
        record(bench.figures, `h2load.baseline.${PACED.key}`, {
          ...(await measure(bench, bench.baseline, PACED, streams, bodies, workDir, rate)),
          // h2load falls behind a timing script (it measured fewer calls than asked for): both are reported.
          askedPerSecond: rate,
        });
      }
    }
  } finally {
    setup.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  bench.figures.set('h2load.loadAverageAfter', os.loadavg()[0] ?? Number.NaN);
}
