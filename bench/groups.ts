import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type EventHorizon } from '../clients/ts/src';
import { SetupClient } from './api';
import type { FromMember, TracedDelivery } from './group-member';
import { nowMs } from './group-member';
import type { PacedWriteResult } from './jobs';
import { cpuSeconds, raisePriority, startEventHorizon, type ServerProcess, type Worker } from './processes';
import { record, type Bench, type Plan } from './scenarios';
import { seed, type SeedSpec } from './seed';
import { median } from './stats';

/**
 * Consumer groups (issue 16): how fast a group delivers through 1, 2 and 4 members with acks, and
 * how long a rebalance takes after a member dies.
 *
 * Members are processes of their own (group-member.ts), each the TypeScript client's `consume()`
 * with acks, on one Event Horizon process serving a data folder of its own, seeded with
 * single-event entries over many streams (round-robin, so that the feed interleaves them).
 *
 * **Throughput.** For each member count: a group over the seeded subtree is created at the
 * feed's head, the members join and the partitions are spread, then ResetConsumerGroup moves it
 * to the beginning; the clock runs from the reset until the members have handled every entry.
 * So joining and rebalancing are not in the figure, only delivering and acking. The server's CPU
 * over the same window, per entry.
 *
 * **Rebalance.** Two members with a handler of a few milliseconds (so that entries are in flight
 * when it dies), a writer appending at a steady rate over the seeded streams; one member is
 * killed (SIGKILL) a third into the writer's window. From the survivor's deliveries: when it is
 * assigned the dead member's partitions, when each of those partitions delivers to it again, and
 * when the dead member's in-flight entries come again (after the group's ack wait, which bounds
 * that part).
 */

/** Where the groups' server keeps its data, inside the bench's temporary folder. */
export function groupsDir(dataDir: string): string {
  return path.join(dataDir, 'groups');
}

const SUBTREE = '/bench/groups';
const PARTITIONS = 16;
/** Entries handled at once by a member; a handler that does nothing is not the limit with it. */
const MEMBER_CONCURRENCY = 64;
/** The group's max_in_flight per member: enough for the concurrency and the batched acks. */
const MAX_IN_FLIGHT = 500;
/** Rebalance: a handler of this long, 8 at once, so that entries are in flight when a member dies. */
export const REBALANCE_HANDLER_MS = 2;
export const REBALANCE_CONCURRENCY = 8;

export function groupsSeedSpec(plan: Plan): SeedSpec {
  return { stream: SUBTREE, eventsPerEntry: 1, entries: plan.groups.entriesPerStream, streams: plan.groups.streams };
}

/** Before the runs: seeds the groups' data folder. */
export async function prepareGroups(dataDir: string, plan: Plan): Promise<void> {
  const dir = groupsDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  await seed(dir, [groupsSeedSpec(plan)]);
}

/** A member process and what it told so far. */
class Member {
  readonly child: ChildProcess;
  memberId = '';
  partitions: number[] = [];
  assignments: Array<{ partitions: number[]; atMs: number }> = [];
  handled = 0;
  lastAtMs = 0;
  deliveries: TracedDelivery[] = [];
  failure: string | undefined;
  private readonly exited: Promise<void>;
  private stopped: (() => void) | undefined;

  constructor(address: string, group: string, concurrency: number, handlerDelayMs: number, trace: boolean) {
    this.child = fork(path.join(__dirname, 'group-member.js'), [address, group, String(concurrency), String(handlerDelayMs), trace ? '1' : '0'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    raisePriority(this.child.pid ?? 0);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (message: FromMember) => {
      switch (message.type) {
        case 'joined':
          this.memberId = message.memberId;
          break;
        case 'assignment':
          this.partitions = message.partitions;
          this.assignments.push({ partitions: message.partitions, atMs: message.atMs });
          break;
        case 'progress':
          this.handled = message.handled;
          this.lastAtMs = message.lastAtMs;
          break;
        case 'trace':
          this.deliveries.push(...message.deliveries);
          break;
        case 'stopped':
          this.stopped?.();
          break;
        case 'failed':
          this.failure = message.message;
          break;
      }
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Leaves cleanly and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const stopped = new Promise<void>((resolve) => (this.stopped = resolve));
    this.child.send('stop');
    await Promise.race([stopped, this.exited]);
    await Promise.race([this.exited, sleep(5000, undefined, { ref: false })]);
    this.kill();
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  async killed(): Promise<void> {
    this.kill();
    await this.exited;
  }
}

/** Waits for `check`, failing with `what` after `ms` or when a member failed. */
async function until(what: string, members: Member[], check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    const failed = members.find((member) => member.failure !== undefined);
    if (failed) throw new Error(`groups: a member failed while waiting for ${what}: ${failed.failure ?? ''}`);
    if (performance.now() > deadline) throw new Error(`groups: no ${what} within ${ms} ms`);
    await sleep(10);
  }
}

/** The members joined and hold every partition between them, each some. */
function spread(members: Member[]): boolean {
  return members.every((member) => member.partitions.length > 0) && members.reduce((sum, member) => sum + member.partitions.length, 0) === PARTITIONS;
}

/** Entries of the subtree (ReadFeed, paged): what a group over it delivers. */
async function entriesOf(client: EventHorizon, subtree: string): Promise<number> {
  let count = 0;
  for (let after = 0n, more = true; more; ) {
    const page = await client.readFeed({ selector: { stream: subtree }, afterPosition: after, limit: 1000 });
    count += page.entries.length;
    [after, more] = [page.nextAfterPosition, page.more];
  }
  return count;
}

/** Every partition acked up to the end: nothing in flight nor waiting. */
async function drained(client: EventHorizon, group: string): Promise<boolean> {
  const described = await client.describeConsumerGroup(group);
  return described.partitions.every((partition) => partition.inFlight === 0 && Number(partition.lagEntries) === 0) && described.readPosition >= described.headPosition;
}

async function throughput(bench: Bench, server: ServerProcess, client: EventHorizon, members: number, expected: number): Promise<void> {
  const group = `bench-run${bench.run}-members${members}`;
  await client.createConsumerGroup({ name: group, selector: { stream: SUBTREE }, start: { $case: 'fromNow', value: true }, settings: { partitions: PARTITIONS, maxInFlight: MAX_IN_FLIGHT } });
  const running = Array.from({ length: members }, () => new Member(server.address, group, MEMBER_CONCURRENCY, 0, false));
  try {
    await until(`${members} members joined with the partitions spread`, running, () => spread(running), 30_000);
    const cpuBefore = cpuSeconds(server.pid);
    const memberCpuBefore = running.map((member) => cpuSeconds(member.pid));
    const started = nowMs();
    await client.resetConsumerGroup({ name: group }); // to the beginning: every seeded entry
    const handled = () => running.reduce((sum, member) => sum + member.handled, 0);
    await until(`${expected} entries handled by ${members} members`, running, () => handled() >= expected, 600_000);
    const finished = Math.max(...running.map((member) => member.lastAtMs));
    const seconds = (finished - started) / 1000;
    const serverCpu = cpuSeconds(server.pid) - cpuBefore;
    const memberCpu = running.reduce((sum, member, i) => sum + cpuSeconds(member.pid) - (memberCpuBefore[i] ?? 0), 0);
    // Delivered and handled is not yet acked: the figure counts only once the group has the acks.
    await until('the last acks', running, () => drained(client, group), 30_000);
    if (handled() !== expected) throw new Error(`groups: ${handled()} entries handled, expected ${expected} (a redelivery?)`);
    const shares = running.map((member) => member.handled / expected);
    const figures = {
      eventsPerSecond: expected / seconds,
      serverCpuMicrosPerEvent: (serverCpu / expected) * 1e6,
      serverCores: serverCpu / seconds,
      memberCores: memberCpu / seconds,
      smallestShare: Math.min(...shares),
    };
    bench.log(
      `  ${members} member(s): ${Math.round(figures.eventsPerSecond)} events/s, server ${figures.serverCpuMicrosPerEvent.toFixed(0)} µs CPU per event ` +
        `(${(figures.serverCores * 100).toFixed(0)} %), members ${(figures.memberCores * 100).toFixed(0)} %, smallest share ${(figures.smallestShare * 100).toFixed(0)} %`,
    );
    record(bench.figures, `groups.members${members}`, figures);
  } finally {
    await Promise.all(running.map((member) => member.stop()));
    await client.deleteConsumerGroup(group);
  }
}

async function rebalance(bench: Bench, server: ServerProcess, client: EventHorizon): Promise<void> {
  const { ackWaitMs, rate, durationMs } = bench.plan.groups.rebalance;
  const group = `bench-run${bench.run}-rebalance`;
  // Streams of their own, so that the next run's throughput figures read the same feed.
  const subtree = `/bench/rebalance-run${bench.run}`;
  const streams = Array.from({ length: bench.plan.groups.rebalance.streams }, (_, i) => `${subtree}/s${i}`);
  const setup = new SetupClient(server.address);
  await setup.createStreams(streams).finally(() => setup.close());
  await client.createConsumerGroup({ name: group, selector: { stream: subtree }, start: { $case: 'fromNow', value: true }, settings: { partitions: PARTITIONS, ackWaitMs, maxInFlight: MAX_IN_FLIGHT } });
  const [survivor, victim] = [0, 1].map(() => new Member(server.address, group, REBALANCE_CONCURRENCY, REBALANCE_HANDLER_MS, true)) as [Member, Member];
  try {
    await until('2 members joined with the partitions spread', [survivor, victim], () => spread([survivor, victim]), 30_000);
    const writer = bench.workers[bench.workers.length - 1] as Worker;
    const writing = writer.run<PacedWriteResult>({ kind: 'paced-write', address: server.address, streams, ratePerSecond: rate, durationMs, seed: bench.run });
    await sleep(durationMs / 3);
    const lost = new Set(victim.partitions);
    const killedAt = nowMs();
    await victim.killed();
    const written = await writing;
    if (written.errors > 0) throw new Error(`groups rebalance: appends failed: ${written.firstError ?? ''}`);
    // The dead member's in-flight entries come again after the ack wait: wait for that too.
    await sleep(Math.max(0, killedAt + ackWaitMs + 1000 - nowMs()));
    await until('the group drained after the rebalance', [survivor], () => drained(client, group), 30_000);

    const after = survivor.deliveries.filter(([, atMs]) => atMs > killedAt);
    const reassigned = survivor.assignments.find((assignment) => assignment.atMs > killedAt && assignment.partitions.length === PARTITIONS);
    // Per lost partition, the first entry the survivor got of it.
    const firstFlow = [...lost].map((partition) => after.find(([p]) => p === partition)?.[1] ?? Number.NaN);
    const redelivered = after.filter(([, , count]) => count > 1);
    const figures = {
      ackWaitMs,
      lostPartitions: lost.size,
      reassignedMs: reassigned ? reassigned.atMs - killedAt : Number.NaN,
      firstFlowMs: Math.min(...firstFlow) - killedAt,
      medianFlowMs: median(firstFlow) - killedAt,
      allFlowMs: Math.max(...firstFlow) - killedAt,
      redeliveries: redelivered.length,
      lastRedeliveryMs: redelivered.length > 0 ? Math.max(...redelivered.map(([, atMs]) => atMs)) - killedAt : Number.NaN,
      appendsPerSecond: written.calls / (durationMs / 1000),
    };
    bench.log(
      `  rebalance: ${lost.size} partitions reassigned after ${figures.reassignedMs.toFixed(0)} ms, flowing again after ${figures.firstFlowMs.toFixed(0)} ms ` +
        `(median ${figures.medianFlowMs.toFixed(0)}, all ${figures.allFlowMs.toFixed(0)}); ${redelivered.length} in-flight entries redelivered, the last after ${figures.lastRedeliveryMs.toFixed(0)} ms (ack wait ${ackWaitMs} ms)`,
    );
    record(bench.figures, 'groups.rebalance', figures);
  } finally {
    victim.kill();
    await survivor.stop();
    await client.deleteConsumerGroup(group);
  }
}

/** One run of the consumer-group figures, on a server of their own. */
export async function groups(bench: Bench): Promise<void> {
  const server = await startEventHorizon({
    dataDir: groupsDir(bench.dataDir),
    ...(bench.cpuProfileDir ? { cpuProfileDir: path.join(bench.cpuProfileDir, 'groups') } : {}),
  });
  const client = connect(server.address);
  try {
    const expected = await entriesOf(client, SUBTREE);
    for (const members of bench.plan.groups.members) {
      bench.log(`groups: ${expected} entries through ${members} member(s)`);
      await throughput(bench, server, client, members, expected);
    }
    bench.log(`groups: rebalance, 2 members, a writer at ${bench.plan.groups.rebalance.rate} appends/s, one member killed`);
    await rebalance(bench, server, client);
  } finally {
    client.close();
    await server.stop();
  }
}
