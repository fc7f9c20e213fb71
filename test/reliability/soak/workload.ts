import { status } from '@grpc/grpc-js';
import type { EventHorizonClient, SubscribeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { api, type Api } from '../../helpers/server';
import { codeOf, statusName } from '../support/grpc';
import type { Random } from '../support/random';
import type { LatencyWindows } from './stats';

/** What the soak's clients saw. */
export interface SoakTally {
  operations: Record<string, number>;
  /** Failures that are not part of the workload's design, by operation and status. */
  errors: Record<string, number>;
  /** Expected-version conflicts: designed in, not errors. */
  conflicts: number;
  /** Subscribers whose versions were not consecutive, or that ended early. */
  subscriptionProblems: string[];
}

export interface SoakWorkloadOptions {
  client: EventHorizonClient;
  random: Random;
  latencies: LatencyWindows;
  streams: string[];
  /** Pause between one client's calls: keeps the load steady and the shared machine usable. */
  pauseMs: number;
  stopAt: number;
}

/** Streams of the soak, created up front under /soak. */
export function soakStreams(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `/soak/s${String(i).padStart(2, '0')}`);
}

/**
 * The mixed workload: appends (request ids, some with expected versions), reads forwards and
 * backwards, snapshots, describes, stream creation, and subscribers that check every version
 * arrives once and in order. Every loop ends at `stopAt`.
 */
export async function runMixedWorkload(options: SoakWorkloadOptions): Promise<SoakTally> {
  const eh = api(options.client);
  const tally: SoakTally = { operations: {}, errors: {}, conflicts: 0, subscriptionProblems: [] };
  const { random, latencies } = options;
  const running = () => Date.now() < options.stopAt;
  const pause = () => new Promise((resolve) => setTimeout(resolve, random.int(0, options.pauseMs * 2)));

  async function timed(operation: string, call: () => Promise<unknown>): Promise<void> {
    const started = performance.now();
    try {
      await call();
      latencies.record(operation, performance.now() - started);
      tally.operations[operation] = (tally.operations[operation] ?? 0) + 1;
    } catch (error) {
      const code = codeOf(error);
      if (operation === 'append-expected' && code === status.ABORTED) {
        tally.conflicts++;
        return;
      }
      const key = `${operation} ${statusName(code)}`;
      tally.errors[key] = (tally.errors[key] ?? 0) + 1;
    }
  }

  let sequence = 0;
  const appender = async (worker: number) => {
    while (running()) {
      const stream = random.pick(options.streams);
      const data = Buffer.from(JSON.stringify({ worker, n: ++sequence, pad: 'p'.repeat(random.int(0, 2000)) }));
      if (random.chance(0.3)) {
        await timed('append-expected', async () => {
          const head = (await eh.describeStream({ stream })).headVersion;
          await eh.append({ stream, expectedVersion: head, events: [{ type: 'soak', data }] });
        });
      } else {
        await timed('append', () => eh.append({ stream, requestId: `soak-${worker}-${sequence}`, events: [{ type: 'soak', data }] }));
      }
      await pause();
    }
  };
  const reader = async () => {
    while (running()) {
      const stream = random.pick(options.streams);
      await timed('read', () => eh.read({ stream, limit: random.int(1, 200), direction: random.chance(0.5) ? 1 : 2 }));
      await pause();
    }
  };
  const housekeeper = async () => {
    let created = 0;
    while (running()) {
      const stream = random.pick(options.streams);
      const choice = random.int(0, 3);
      if (choice === 0) await timed('create', () => eh.createStream({ stream: `${stream}/child-${++created}` }));
      if (choice === 1) await timed('describe', () => eh.describeStream({ stream }));
      if (choice === 2) {
        await timed('snapshot', async () => {
          const head = (await eh.describeStream({ stream })).headVersion;
          await eh.putSnapshot({ stream, perspective: 'soak:v1', version: head, data: Buffer.from(JSON.stringify({ head: String(head) })) });
          await eh.getSnapshot({ stream, perspective: 'soak:v1', entriesAfter: true, limit: 50 });
        });
      }
      if (choice === 3) await timed('list', () => eh.listChildren({ stream, limit: 100 }));
      await pause();
    }
  };
  const subscribers = options.streams.slice(0, 6).map((stream) => subscribeAndCheck(options.client, stream, options.stopAt, tally));

  await Promise.all([...[0, 1, 2, 3].map(appender), reader(), reader(), housekeeper(), ...subscribers]);
  return tally;
}

/** Subscribes until `stopAt` and checks that versions arrive once each, in order. */
function subscribeAndCheck(client: EventHorizonClient, stream: string, stopAt: number, tally: SoakTally): Promise<void> {
  return new Promise((resolve) => {
    const call = client.subscribe({ stream });
    let next = 0n;
    let problem: string | undefined;
    call.on('data', (message: SubscribeResponse) => {
      if (message.message?.$case !== 'entry') return;
      if (message.message.value.version !== next && !problem) problem = `${stream}: got version ${message.message.value.version}, expected ${next}`;
      next = message.message.value.version + 1n;
    });
    let cancelled = false;
    const timer = setTimeout(() => {
      cancelled = true;
      call.cancel();
    }, Math.max(0, stopAt - Date.now()) + 2000);
    let settled = false;
    const settle = (ending: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const found = problem ?? ending;
      if (found) tally.subscriptionProblems.push(found);
      resolve();
    };
    call.on('error', (error: { code: number }) =>
      settle(error.code === status.CANCELLED && cancelled ? undefined : `${stream}: subscription ended with ${statusName(error.code)}`),
    );
    call.on('end', () => settle(cancelled ? undefined : `${stream}: subscription ended before the run did`));
  });
}

/** Creates the soak's streams. */
export async function createSoakStreams(eh: Api, streams: string[]): Promise<void> {
  await eh.createStream({ stream: '/soak' });
  for (const stream of streams) await eh.createStream({ stream });
}
