import fs from 'node:fs';
import { api, tempDir } from '../../helpers/server';
import { spawnServer, type ServerProcess } from '../../helpers/process';
import { clientFor } from '../support/grpc';
import { Random } from '../support/random';
import { Ledger } from './ledger';
import { checkDatabaseFile, checkThroughApi } from './verify';
import { CRASH_ROOT, appendUntilServerDies, crashStreams, sendAppend, sendCreate } from './workload';

export interface CrashRunOptions {
  rounds: number;
  seed: number;
  /** Concurrent appending clients. */
  writers?: number;
  streams?: number;
  /** Longest time the load runs before the kill, in ms (the kill moment is random below it). */
  maxLoadMs?: number;
  log?: (line: string) => void;
}

export interface CrashRunReport {
  rounds: number;
  seed: number;
  outcomes: Record<string, number>;
  /** Unanswered requests retried after a restart, and how many of them had been written. */
  retried: number;
  retriedFoundWritten: number;
  problems: string[];
}

/**
 * Kills a loaded server with SIGKILL, `rounds` times, and checks after each kill that nothing
 * acknowledged was lost or changed and nothing was written twice. Stops at the first round with
 * problems and returns them.
 */
export async function runCrashRounds(options: CrashRunOptions): Promise<CrashRunReport> {
  const random = new Random(options.seed);
  const log = options.log ?? (() => undefined);
  const ledger = new Ledger();
  const streams = crashStreams(options.streams ?? 12);
  const dataDir = tempDir('eh-crash-');
  const report: CrashRunReport = { rounds: 0, seed: options.seed, outcomes: {}, retried: 0, retriedFoundWritten: 0, problems: [] };
  let server: ServerProcess | undefined;
  try {
    server = await spawnServer({ EH_DATA_DIR: dataDir });
    await setUp(server.address, streams, ledger);
    for (let round = 1; round <= options.rounds; round++) {
      const client = clientFor(server.address);
      const eh = api(client);
      const load = appendUntilServerDies({
        eh, ledger, random, round, streams,
        writers: options.writers ?? 8,
        expectedVersionShare: 0.4,
        creates: 3,
      });
      // Kill at a random moment: sometimes before the first group commit, mostly in full flow.
      await new Promise((resolve) => setTimeout(resolve, random.int(5, options.maxLoadMs ?? 400)));
      server.child.kill('SIGKILL');
      await server.exited;
      await load;
      client.close();

      const fileProblems = checkDatabaseFile(dataDir, ledger);
      server = await spawnServer({ EH_DATA_DIR: dataDir });
      const restarted = clientFor(server.address);
      const retried = await retryUnanswered(api(restarted), ledger);
      report.retried += retried.retried;
      report.retriedFoundWritten += retried.foundWritten;
      const apiProblems = await checkThroughApi(api(restarted), [CRASH_ROOT, ...streams], ledger);
      restarted.close();
      report.rounds = round;
      report.problems = [...fileProblems.map((p) => `round ${round}, database file: ${p}`), ...apiProblems.map((p) => `round ${round}, through the API: ${p}`)];
      log(`round ${round}: ${JSON.stringify(ledger.summary())}, retried ${retried.retried} (${retried.foundWritten} had been written)`);
      if (report.problems.length > 0) break;
    }
  } finally {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    if (report.problems.length === 0) fs.rmSync(dataDir, { recursive: true, force: true });
    else log(`data left for inspection in ${dataDir}`);
  }
  report.outcomes = ledger.summary();
  return report;
}

async function setUp(address: string, streams: string[], ledger: Ledger): Promise<void> {
  const client = clientFor(address);
  const eh = api(client);
  await eh.createStream({ stream: CRASH_ROOT });
  for (const stream of streams) {
    await eh.createStream({ stream });
    ledger.sawHead(stream, 0n);
  }
  client.close();
}

/**
 * Retries every unanswered request with the same request id and event, as a client would after
 * the restart. A retry answered `deduplicated` had been written before the kill.
 */
async function retryUnanswered(eh: ReturnType<typeof api>, ledger: Ledger): Promise<{ retried: number; foundWritten: number }> {
  for (const create of ledger.unansweredCreates()) {
    if (!(await sendCreate(eh, ledger, create))) throw new Error(`retry of CreateStream ${create.stream} failed`);
  }
  const appends = ledger.unansweredAppends();
  const results = await Promise.all(appends.map((attempt) => sendAppend(eh, ledger, attempt)));
  if (results.includes('unanswered')) throw new Error('a retry after the restart got no answer');
  return { retried: appends.length, foundWritten: results.filter((r) => r === 'deduplicated').length };
}
