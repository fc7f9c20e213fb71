import path from 'node:path';
import v8 from 'node:v8';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as observability from '../src/observability/interceptor';
import { startAuthTestServer } from '../test/helpers/auth-server';
import { startTestServer, type TestServer } from '../test/helpers/server';
import { SetupClient } from './api';
import type { SubscribeResult } from './jobs';
import { Worker } from './processes';

/**
 * What one idle subscription costs the server, measured in process (issue 14, target 6):
 * `node --expose-gc dist/bench/subscription-heap.js [--subscriptions N] [--without-interceptor] [--auth]`.
 * A server in this process, N idle Subscribe calls (spread over 100 streams) from two load
 * worker processes; the V8 heap in use and RSS after forced GCs, before and with them, per
 * subscription. `--without-interceptor` replaces the observability interceptor by one that
 * returns the call as it is, to see what its layer costs; `--auth` serves with auth required,
 * each call with a key. A diagnostic, not a BENCHMARKS.md
 * figure: `--only memory` measures the deployed server. `--snapshots DIR` also writes a V8 heap
 * snapshot before and with them (after the figures are taken), for bench/heap-diff.ts.
 */

const { values } = parseArgs({
  options: {
    subscriptions: { type: 'string', default: '10000' },
    'without-interceptor': { type: 'boolean', default: false },
    snapshots: { type: 'string' },
    auth: { type: 'boolean', default: false },
  },
});
const count = Number(values.subscriptions);
const gc = (globalThis as { gc?: () => void }).gc;

interface Figures {
  heap: number;
  /** The V8 heap's committed pages: what of RSS the heap takes, its free room included. */
  heapCommitted: number;
  /** Off the V8 heap: buffers' memory and what V8 itself allocated with malloc. */
  external: number;
  rss: number;
}

async function settled(snapshot?: string): Promise<Figures> {
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(100);
  }
  const heap = v8.getHeapStatistics();
  const figures = {
    heap: heap.used_heap_size,
    heapCommitted: heap.total_physical_size,
    external: heap.external_memory + heap.malloced_memory,
    rss: process.memoryUsage().rss,
  };
  if (snapshot) v8.writeHeapSnapshot(path.join(values.snapshots ?? '.', snapshot));
  return figures;
}

async function main(): Promise<void> {
  if (values['without-interceptor']) {
    // server.ts reads the export when it builds the server: a pass-through layer, no wrapper.
    Object.assign(observability, { observabilityInterceptor: () => (_method: unknown, call: unknown) => call });
  }
  const streams = Array.from({ length: 100 }, (_, i) => `/heap/s${i}`);
  // With --auth, a server that requires auth (and encrypts at rest, as the auth test server
  // does): each Subscribe passes the auth interceptor's layer too.
  let server: TestServer;
  let apiKey: string | undefined;
  let closeSetup: () => Promise<void>;
  if (values.auth) {
    const auth = await startAuthTestServer();
    const reader = await auth.grant('reader', { allow: ['*=/heap/**'] });
    await auth.refresh();
    for (const stream of streams) await auth.as(reader).createStream({ stream, createParents: true });
    ({ test: server } = auth);
    apiKey = reader.key;
    closeSetup = () => auth.stop();
  } else {
    server = await startTestServer();
    const setup = new SetupClient(server.address);
    await setup.createStreams(streams);
    closeSetup = async () => {
      setup.close();
      await server.stop();
    };
  }
  const workers = [new Worker(), new Worker()];
  const hold = (n: number) =>
    Promise.all(
      workers.map((worker) =>
        worker.start<SubscribeResult>({
          kind: 'subscribe', address: server.address, connections: Math.ceil(n / 2 / 500),
          streams: Array.from({ length: n / 2 }, (_, i) => streams[i % streams.length] as string),
          ...(apiKey !== undefined ? { apiKey } : {}),
        }),
      ),
    );
  try {
    // Once first, so that code and pools warmed up by the first subscriptions do not count.
    await Promise.all((await hold(200)).map((held) => held.stop()));
    await sleep(500);
    const before = await settled(values.snapshots && 'before.heapsnapshot');
    const held = await hold(count);
    await sleep(1000);
    const after = await settled(values.snapshots && 'after.heapsnapshot');
    process.stdout.write(
      `${JSON.stringify({
        subscriptions: count,
        interceptor: !values['without-interceptor'],
        auth: values.auth,
        heapKBPerSubscription: Number(((after.heap - before.heap) / count / 1024).toFixed(2)),
        heapCommittedKBPerSubscription: Number(((after.heapCommitted - before.heapCommitted) / count / 1024).toFixed(2)),
        externalKBPerSubscription: Number(((after.external - before.external) / count / 1024).toFixed(2)),
        rssKBPerSubscription: Number(((after.rss - before.rss) / count / 1024).toFixed(2)),
      })}\n`,
    );
    await Promise.all(held.map((h) => h.stop()));
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    await closeSetup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
