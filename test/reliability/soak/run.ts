import fs from 'node:fs';
import { api, tempDir } from '../../helpers/server';
import { spawnServer } from '../../helpers/process';
import { clientFor } from '../support/grpc';
import { Random } from '../support/random';
import { LatencyWindows, descriptorCount, residentBytes } from './stats';
import { createSoakStreams, runMixedWorkload, soakStreams, type SoakTally } from './workload';

export interface SoakOptions {
  durationMs: number;
  seed: number;
  /** Pause between one client's calls, in ms. */
  pauseMs?: number;
  log?: (line: string) => void;
}

export interface SoakReport extends SoakTally {
  seconds: number;
  seed: number;
  /** p50/p99 per operation, in ten windows over the run. */
  latencyWindows: Array<Record<string, { count: number; p50: number; p99: number }>>;
  /** The append p99 of the last window over that of the first after warm-up. */
  appendP99Drift: number;
  /** Server resident memory after warm-up and at the end, in MiB. */
  rssMiB: { afterWarmUp: number; end: number; peak: number };
  descriptors: { afterWarmUp: number; end: number };
  serverExited: boolean;
}

/**
 * Runs the mixed workload against a spawned server for `durationMs` and reports errors, latency
 * per window (drift) and the server's memory and descriptors over the run.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const dataDir = tempDir('eh-soak-');
  // Info level: spawnServer waits for the "serving" line.
  const server = await spawnServer({ EH_DATA_DIR: dataDir });
  const pid = server.child.pid ?? 0;
  const client = clientFor(server.address);
  try {
    const streams = soakStreams(20);
    await createSoakStreams(api(client), streams);
    const startedAt = Date.now();
    const windowMs = options.durationMs / 10;
    const latencies = new LatencyWindows(startedAt, windowMs);
    const rss: number[] = [];
    const fds: number[] = [];
    const sampler = setInterval(() => {
      if (server.child.exitCode !== null) return;
      rss.push(residentBytes(pid));
      fds.push(descriptorCount(pid));
    }, Math.max(250, windowMs / 10));
    const progress = setInterval(() => log(`${Math.round((Date.now() - startedAt) / 1000)} s: rss ${mib(rss[rss.length - 1] ?? 0)} MiB`), Math.max(5000, windowMs));
    const tally = await runMixedWorkload({
      client,
      random: new Random(options.seed),
      latencies,
      streams,
      pauseMs: options.pauseMs ?? 5,
      stopAt: startedAt + options.durationMs,
    });
    clearInterval(sampler);
    clearInterval(progress);
    const windows = latencies.summary();
    // The first tenth is warm-up (JIT, caches, SQLite pages): growth and drift count from after it.
    const warm = Math.max(1, Math.floor(rss.length / 10));
    const firstP99 = windows[1]?.append?.p99 ?? windows[0]?.append?.p99 ?? 0;
    const lastP99 = windows[windows.length - 1]?.append?.p99 ?? 0;
    return {
      ...tally,
      seconds: Math.round((Date.now() - startedAt) / 1000),
      seed: options.seed,
      latencyWindows: windows,
      appendP99Drift: firstP99 > 0 ? Math.round((lastP99 / firstP99) * 100) / 100 : 0,
      rssMiB: { afterWarmUp: mib(rss[warm] ?? 0), end: mib(rss[rss.length - 1] ?? 0), peak: mib(Math.max(...rss)) },
      descriptors: { afterWarmUp: fds[warm] ?? 0, end: fds[fds.length - 1] ?? 0 },
      serverExited: server.child.exitCode !== null,
    };
  } finally {
    client.close();
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** What makes a soak run fail: any error, any subscription problem, a dead server, runaway memory or descriptors. */
export function soakProblems(report: SoakReport, maxRssGrowthMiB: number): string[] {
  const problems: string[] = [];
  for (const [what, count] of Object.entries(report.errors)) problems.push(`${count} × ${what}`);
  problems.push(...report.subscriptionProblems);
  if (report.serverExited) problems.push('the server exited during the run');
  const growth = report.rssMiB.end - report.rssMiB.afterWarmUp;
  if (growth > maxRssGrowthMiB) problems.push(`server memory grew by ${growth} MiB after warm-up (limit ${maxRssGrowthMiB} MiB)`);
  if (report.descriptors.end > report.descriptors.afterWarmUp + 10) {
    problems.push(`server descriptors grew from ${report.descriptors.afterWarmUp} to ${report.descriptors.end}`);
  }
  if ((report.operations.append ?? 0) === 0) problems.push('no append succeeded');
  return problems;
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}
