import path from 'node:path';
import { DEFAULT_MAX_ENTRIES_PER_MESSAGE } from '../clients/ts/src/subscription';
import type { CatchUpJob, CatchUpResult } from './jobs';
import { cpuSeconds, startEventHorizon, type ServerProcess, type Worker } from './processes';
import { record, type Bench, type Plan } from './scenarios';
import type { SeedSpec } from './seed';

/**
 * Catch-up of single-event entries (issue 14, target 4): ≥ 200,000 events/s through Subscribe to
 * one Node client, and Read ≥ the same. One seeded stream of single-event entries is read whole,
 * from version 0, by one load worker:
 *
 * - by the baseline's streaming handler, one entry per message and in batches: the ceiling of
 *   this stack for each framing, in the same run;
 * - by Subscribe, as a client that does not ask for batches (one `entry` message per entry, what
 *   clients written before batches get) and as one that does (`max_entries_per_message`);
 * - by the TypeScript client's `subscribe`, which asks for batches and decodes every entry into
 *   objects, as an application reads: the client's CPU is the figure to watch there;
 * - by Read, in pages of 1,000 entries (the largest page a Read returns);
 * - by Subscribe in batches and by Read again, on the same entries stored compressed, as versions
 *   before the 512-byte bound wrote them (the server now stores entries under 512 bytes as they
 *   are): what zstd costs a catch-up of small entries, and what reading data written before costs.
 *
 * The other figures count events from the wire bytes without decoding them (wire.ts), so that
 * the load generator is not the bottleneck; its CPU is reported beside each figure.
 *
 * Each kind of figure gets a server process of its own, started for it, so that a `--cpu-prof`
 * profile holds one kind of work: DIR/catchup-singles-subscribe-single, -subscribe-batch (the
 * client figure too: the server's work is the same), -read, -subscribe-batch-compressed and
 * -read-compressed. Each server first reads a smaller stream the same way, unmeasured, so that
 * what is measured runs optimised code.
 */

/** The batch size the figures ask for: the TypeScript client's default. */
export const SINGLES_BATCH = DEFAULT_MAX_ENTRIES_PER_MESSAGE;
/** Entries per Read call: the largest page Read returns. */
const READ_LIMIT = 1000;

/**
 * The stream read by the figures, the smaller one each server reads first to warm up, and the
 * same entries as the first stored compressed, as earlier versions wrote them.
 */
export function catchUpSinglesStreams(plan: Plan): SeedSpec[] {
  return [
    { stream: '/bench/catch-up-singles', eventsPerEntry: 1, entries: plan.catchUpSingles.events },
    { stream: '/bench/catch-up-singles-warm-up', eventsPerEntry: 1, entries: plan.catchUpSingles.warmUpEvents },
    { stream: '/bench/catch-up-singles-compressed', eventsPerEntry: 1, entries: plan.catchUpSingles.events, compressedAsBefore: true },
  ];
}

type Via = CatchUpJob['via'];

/** One figure: how the stream is read, and by whom. */
interface SinglesFigure {
  key: string;
  label: string;
  /** The server that is measured (`baseline`, or Event Horizon's servers by the work they do). */
  server: 'baseline' | 'subscribe-single' | 'subscribe-batch' | 'read' | 'subscribe-batch-compressed' | 'read-compressed';
  via: Via;
  maxEntriesPerMessage?: number;
  /** Reads the stream whose entries are stored compressed, as earlier versions wrote them. */
  compressedAsBefore?: boolean;
}

/** The figures, in the order they are taken; keys are those of report.ts's catch-up-singles block. */
export const SINGLES_FIGURES: readonly SinglesFigure[] = [
  { key: 'baseline.single', label: 'Baseline streaming handler, one entry per message', server: 'baseline', via: 'subscribe' },
  {
    key: 'baseline.batch',
    label: `Baseline streaming handler, batches (max_entries_per_message ${SINGLES_BATCH})`,
    server: 'baseline',
    via: 'subscribe',
    maxEntriesPerMessage: SINGLES_BATCH,
  },
  { key: 'subscribe.single', label: 'Subscribe, one entry per message (a client that does not ask for batches)', server: 'subscribe-single', via: 'subscribe' },
  {
    key: 'subscribe.batch',
    label: `Subscribe, batches (max_entries_per_message ${SINGLES_BATCH})`,
    server: 'subscribe-batch',
    via: 'subscribe',
    maxEntriesPerMessage: SINGLES_BATCH,
  },
  {
    key: 'client.batch',
    label: "Subscribe through the TypeScript client's subscribe(), every entry decoded",
    server: 'subscribe-batch',
    via: 'client',
    maxEntriesPerMessage: SINGLES_BATCH,
  },
  { key: 'read', label: `Read, pages of ${READ_LIMIT.toLocaleString('en-US')} entries`, server: 'read', via: 'read' },
  {
    key: 'subscribe.batch.compressed',
    label: 'Subscribe, batches, the same entries stored compressed (as versions before the 512-byte bound wrote them)',
    server: 'subscribe-batch-compressed',
    via: 'subscribe',
    maxEntriesPerMessage: SINGLES_BATCH,
    compressedAsBefore: true,
  },
  {
    key: 'read.compressed',
    label: 'Read, the same entries stored compressed (as before)',
    server: 'read-compressed',
    via: 'read',
    compressedAsBefore: true,
  },
];

/** Reads the whole stream once on one load worker; events/s, and the CPU of both sides meanwhile. */
async function readWhole(bench: Bench, target: ServerProcess, figure: SinglesFigure, stream: string, expected: number) {
  const worker = bench.workers[0] as Worker;
  const cpuBefore = cpuSeconds(target.pid);
  const started = performance.now();
  const result = await worker.run<CatchUpResult>({
    kind: 'catch-up',
    address: target.address,
    // The baseline streams `/baseline/<events per entry>/<entries>` of a prepared entry.
    stream: figure.server === 'baseline' ? `/baseline/1/${expected}` : stream,
    via: figure.via,
    readLimit: READ_LIMIT,
    ...(figure.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: figure.maxEntriesPerMessage } : {}),
  });
  const serverCores = (cpuSeconds(target.pid) - cpuBefore) / ((performance.now() - started) / 1000);
  if (result.events < expected) throw new Error(`${figure.label}: ${result.events} events delivered, expected ${expected}`);
  return { eventsPerSecond: result.events / result.seconds, serverCores, loadCpu: result.cpuCores };
}

/** One run of the figures. */
export async function catchUpSingles(bench: Bench): Promise<void> {
  const [measured, warmUp, compressed] = catchUpSinglesStreams(bench.plan) as [SeedSpec, SeedSpec, SeedSpec];
  const servers = new Map<SinglesFigure['server'], ServerProcess>([['baseline', bench.baseline]]);
  try {
    for (const figure of SINGLES_FIGURES) {
      let server = servers.get(figure.server);
      if (!server) {
        // The bench's own server idles meanwhile. Several processes may read one SQLite file (WAL),
        // and nothing writes to it during these figures.
        server = await startEventHorizon({
          dataDir: bench.dataDir,
          ...(bench.cpuProfileDir ? { cpuProfileDir: path.join(bench.cpuProfileDir, `catchup-singles-${figure.server}`) } : {}),
        });
        servers.set(figure.server, server);
      }
      bench.log(`catch-up of single-event entries: ${figure.label}`);
      await readWhole(bench, server, figure, warmUp.stream, warmUp.entries);
      const stream = figure.compressedAsBefore ? compressed : measured;
      const figures = await readWhole(bench, server, figure, stream.stream, stream.entries);
      bench.log(`  ${Math.round(figures.eventsPerSecond)} events/s, server ${(figures.serverCores * 100).toFixed(0)} %, load generator ${(figures.loadCpu * 100).toFixed(0)} %`);
      record(bench.figures, `singles.${figure.key}`, figures);
    }
  } finally {
    for (const [name, server] of servers) if (name !== 'baseline') await server.stop();
  }
}
