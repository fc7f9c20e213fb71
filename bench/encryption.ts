import fs from 'node:fs';
import path from 'node:path';
import { measureAead } from './aead-micro';
import { SetupClient } from './api';
import { generateKeyring, LocalKeyring } from '../src/crypto/keyring';
import { startEventHorizon, type ServerProcess } from './processes';
import { catchUpOnce, record, unaryLoad, type Bench, type Plan } from './scenarios';
import { seed, type SeedSpec } from './seed';

/**
 * Encryption at rest (issue 5): what it costs in throughput and in server CPU. Two servers run
 * side by side, identical but for the keyring (one has none), each on its own data folder seeded
 * with the same streams; every figure is taken on both by the same load generator, back to back.
 * The order of each pair alternates from figure to figure and from run to run, so that the drift
 * of a shared machine does not always favour the same side.
 */

export type Side = 'off' | 'on';
export const SIDES: readonly Side[] = ['off', 'on'];

/** What one figure measures on one server; answers events/s and the CPU used meanwhile. */
interface Measure {
  (bench: Bench, server: ServerProcess): Promise<{ eventsPerSecond: number; serverCores: number; loadCpu: number }>;
}

/** Where the scenario keeps its data and keyring, inside the bench's temporary folder. */
export function encryptionPaths(dataDir: string) {
  const root = path.join(dataDir, 'encryption');
  return { root, keyringFile: path.join(root, 'keyring.json'), off: path.join(root, 'off'), on: path.join(root, 'on') };
}

/** The seeded streams read by the figures: the same events on both sides. */
export function encryptionReadStreams(plan: Plan): SeedSpec[] {
  return [
    { stream: '/bench/encryption-read-1', eventsPerEntry: 1, entries: plan.encryptionReadEvents.single },
    { stream: '/bench/encryption-read-100', eventsPerEntry: 100, entries: plan.encryptionReadEvents.hundred / 100 },
  ];
}

/**
 * Before the runs: a keyring file (as deployed, EH_KEYRING_FILE) and the two data folders, the
 * encrypted one written with that keyring so that reads decrypt what a server would have written.
 */
export async function prepareEncryption(dataDir: string, plan: Plan): Promise<void> {
  const paths = encryptionPaths(dataDir);
  fs.mkdirSync(paths.off, { recursive: true });
  fs.mkdirSync(paths.on, { recursive: true });
  fs.writeFileSync(paths.keyringFile, JSON.stringify(generateKeyring('bench-kek-1')), { mode: 0o600 });
  const specs = encryptionReadStreams(plan);
  await seed(paths.off, specs);
  await seed(paths.on, specs, LocalKeyring.fromFile(paths.keyringFile));
}

/** Closed-loop appends to fresh streams of this run; events/s counts events, not calls. */
function appendFigure(eventsPerEntry: number, streamCount: number, concurrency: (plan: Plan) => number): Measure {
  return async (bench, server) => {
    // The same paths on both sides (each server has its own data): the associated data is alike.
    const streams = Array.from({ length: streamCount }, (_, i) => `/bench/run-${bench.run}/encryption-append-${eventsPerEntry}/s${i}`);
    const setup = new SetupClient(server.address);
    await setup.createStreams(streams);
    setup.close();
    const load = await unaryLoad(bench, server, streams, concurrency(bench.plan), eventsPerEntry);
    return { eventsPerSecond: load.callsPerSecond * eventsPerEntry, serverCores: load.serverCores, loadCpu: load.loadCpu };
  };
}

/** Reads or subscribes through a whole seeded stream. */
function catchUpFigure(eventsPerEntry: 1 | 100, via: 'read' | 'subscribe'): Measure {
  return async (bench, server) => {
    const spec = encryptionReadStreams(bench.plan).find((s) => s.eventsPerEntry === eventsPerEntry) as SeedSpec;
    // The same page sizes as the catch-up figures: pages of 100-event entries are size-limited.
    const readLimit = via === 'subscribe' ? 0 : eventsPerEntry === 1 ? 1000 : 100;
    return catchUpOnce(bench, server, spec.stream, via, readLimit, spec.entries * eventsPerEntry);
  };
}

/** The figures, in the order they are taken; keys are those of report.ts's encryption block. */
export const ENCRYPTION_FIGURES: ReadonlyArray<{ key: string; label: (plan: Plan) => string; measure: Measure }> = [
  {
    key: 'append1',
    label: (plan) => `Append, 1-event entries (concurrency ${plan.encryptionConcurrency})`,
    // 16 streams, as the other 1-event append figures: group commit gathers within a stream.
    measure: appendFigure(1, 16, (plan) => plan.encryptionConcurrency),
  },
  {
    key: 'append100',
    label: (plan) => `Append, 100-event entries (concurrency ${plan.entryConcurrency})`,
    measure: appendFigure(100, 4, (plan) => plan.entryConcurrency),
  },
  { key: 'read1', label: () => 'Read, entries of 1 (pages of 1,000)', measure: catchUpFigure(1, 'read') },
  { key: 'subscribe1', label: () => 'Subscribe catch-up, entries of 1', measure: catchUpFigure(1, 'subscribe') },
  { key: 'read100', label: () => 'Read, entries of 100 (pages of 100)', measure: catchUpFigure(100, 'read') },
  { key: 'subscribe100', label: () => 'Subscribe catch-up, entries of 100', measure: catchUpFigure(100, 'subscribe') },
];

/** Time per micro-measure: 8 of them per run; a payload takes microseconds, so this is plenty. */
const AEAD_MICRO_MS = 100;

/** Server CPU µs per event: steadier than events/s on a shared machine. */
function cpuMicrosPerEvent(serverCores: number, eventsPerSecond: number): number {
  return eventsPerSecond > 0 ? (serverCores / eventsPerSecond) * 1e6 : Number.NaN;
}

/**
 * One run of the encryption figures. Costs are computed within the run, from the pair taken
 * back to back, and the report takes their median: a ratio of two medians could pair an "off"
 * from a quiet minute with an "on" from a busy one.
 */
export async function encryptionCost(bench: Bench): Promise<void> {
  const paths = encryptionPaths(bench.dataDir);
  const profile = (side: Side) => (bench.cpuProfileDir ? { cpuProfileDir: path.join(bench.cpuProfileDir, `encryption-${side}`) } : {});
  // In this process, before the servers start, so that nothing else of the bench competes.
  bench.log('encryption: AES-GCM and zstd per payload, in process');
  await measureAead(bench.figures, AEAD_MICRO_MS);
  const servers: Partial<Record<Side, ServerProcess>> = {};
  try {
    // Started together: a server takes seconds to start on a busy machine. Both starts are
    // awaited before any failure is raised, so that `finally` stops whichever one did start.
    const starts = await Promise.allSettled([
      startEventHorizon({ dataDir: paths.off, keyringFile: null, ...profile('off') }).then((server) => (servers.off = server)),
      startEventHorizon({ dataDir: paths.on, keyringFile: paths.keyringFile, ...profile('on') }).then((server) => (servers.on = server)),
    ]);
    for (const start of starts) if (start.status === 'rejected') throw start.reason;
    for (const [index, figure] of ENCRYPTION_FIGURES.entries()) {
      const order: Side[] = (index + bench.run) % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      const perEvent: Partial<Record<Side, { eventsPerSecond: number; cpuUs: number }>> = {};
      for (const side of order) {
        bench.log(`encryption ${side}: ${figure.label(bench.plan)}`);
        const measured = await figure.measure(bench, servers[side] as ServerProcess);
        const cpuUs = cpuMicrosPerEvent(measured.serverCores, measured.eventsPerSecond);
        perEvent[side] = { eventsPerSecond: measured.eventsPerSecond, cpuUs };
        // Each run's pair in the log: the medians in the report hide how much runs spread.
        bench.log(`  ${Math.round(measured.eventsPerSecond)} events/s, ${cpuUs.toFixed(1)} µs server CPU per event`);
        record(bench.figures, `encryption.${side}.${figure.key}`, { ...measured, cpuUs });
      }
      const off = perEvent.off as { eventsPerSecond: number; cpuUs: number };
      const on = perEvent.on as { eventsPerSecond: number; cpuUs: number };
      record(bench.figures, `encryption.cost.${figure.key}`, {
        // Positive when encryption costs. `throughput` is what was measured; `cpuBound` is the
        // throughput a server with a core of its own would lose (events/s ∝ 1 / CPU per event),
        // which is the figure: on a shared machine the server seldom has that core.
        throughput: 1 - on.eventsPerSecond / off.eventsPerSecond,
        cpuBound: 1 - off.cpuUs / on.cpuUs,
      });
    }
  } finally {
    await Promise.all(SIDES.map(async (side) => servers[side]?.stop()));
  }
}
