/**
 * DynamoDB store benchmark, against DynamoDB Local: requests and write units per append, creates
 * per second under one parent, cross-replica subscribe latency and the cost of tailing an idle
 * stream. Prints a Markdown table for BENCHMARKS.md.
 *
 *   npm run build && node dist/test/bench/dynamodb.bench.js
 *
 * Not part of `npm test` (the file name does not end in .test.js). Every loop is bounded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDbStore } from '../../src/store/dynamodb/dynamodb-store';
import { dynamoDbLocal, freshTablePrefix, localStore } from '../helpers/dynamodb-local';
import { api, startTestServer, type TestServer } from '../helpers/server';
import { recordSubscription } from '../helpers/subscriber';
import { typicalEvent } from '../helpers/typical-event';
import { quantile } from '../../bench/stats';

const rows: Array<[string, string]> = [];
function record(what: string, value: string): void {
  rows.push([what, value]);
  process.stderr.write(`${what}: ${value}\n`);
}

/** The p-th percentile (0..100), by nearest rank: the bench's own quantile. */
function percentile(values: number[], p: number): number {
  return quantile(values, p / 100);
}

async function main(): Promise<void> {
  const local = await dynamoDbLocal();
  if (!local) throw new Error('DynamoDB Local cannot run here (java missing)');
  const prefix = freshTablePrefix();
  let storeA: DynamoDbStore | undefined;
  const servers: TestServer[] = [];
  try {
    const a = await startTestServer({}, () => (storeA = localStore(local, prefix)));
    const b = await startTestServer({}, () => localStore(local, prefix));
    servers.push(a, b);
    const metersA = storeA!.meter;
    const ea = api(a.client);
    const eb = api(b.client);

    // Requests and write units per append.
    await ea.createStream({ stream: '/bench' });
    await ea.append({ stream: '/bench', events: [typicalEvent(0)] });
    const appends = 200;
    metersA.reset();
    for (let i = 1; i <= appends; i++) {
      await ea.append({ stream: '/bench', events: [typicalEvent(i)], ...(i % 2 === 1 ? { requestId: `r-${i}` } : {}) });
    }
    let counts = metersA.snapshot();
    record('requests per append (steady state, half with request ids)', (metersA.totalRequests() / appends).toFixed(2));
    record('write units per event, 1-event entries of ~300-byte JSON', (counts.writeUnits / appends).toFixed(2));

    const batches = 20;
    metersA.reset();
    for (let i = 0; i < batches; i++) {
      await ea.append({ stream: '/bench', events: Array.from({ length: 100 }, (_, j) => typicalEvent(i * 100 + j)) });
    }
    counts = metersA.snapshot();
    record(
      'write units per event, 100-event entries of ~300-byte JSON',
      (counts.writeUnits / (batches * 100)).toFixed(3),
    );
    record('requests per 100-event append', (metersA.totalRequests() / batches).toFixed(2));

    // Appends per second to one stream from concurrent callers (group commit).
    await ea.createStream({ stream: '/burst' });
    const burst = 1000;
    let sent = 0;
    metersA.reset();
    const began = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < burst) {
          sent++;
          await ea.append({ stream: '/burst', events: [typicalEvent(sent)] });
        }
      }),
    );
    record(
      'appends per second to one stream, one replica, 16 concurrent callers',
      (burst / ((performance.now() - began) / 1000)).toFixed(0),
    );
    record(
      'requests / write units per event in that burst (group commit)',
      `${(metersA.totalRequests() / burst).toFixed(2)} / ${(metersA.snapshot().writeUnits / burst).toFixed(2)}`,
    );

    // Creates per second under one parent.
    await ea.createStream({ stream: '/parent' });
    metersA.reset();
    for (let i = 0; i < 20; i++) await ea.createStream({ stream: `/parent/cost-${i}` });
    record('write units per CreateStream (no initial events)', (metersA.snapshot().writeUnits / 20).toFixed(2));
    const creates = 200;
    const concurrency = 16;
    let next = 0;
    let started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < creates) await ea.createStream({ stream: `/parent/one-${next++}` });
      }),
    );
    record(
      `creates per second under one parent, one replica (${concurrency} concurrent callers)`,
      (creates / ((performance.now() - started) / 1000)).toFixed(0),
    );
    await ea.createStream({ stream: '/parent2' });
    next = 0;
    started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        const replica = w % 2 === 1 ? eb : ea;
        while (next < creates) await replica.createStream({ stream: `/parent2/two-${next++}` });
      }),
    );
    record(
      `creates per second under one parent, two replicas (${concurrency} concurrent callers)`,
      (creates / ((performance.now() - started) / 1000)).toFixed(0),
    );

    // Cross-replica subscribe latency: subscriber on A, appends through B.
    for (const [label, count, gapMs] of [
      ['active stream (an append every 20 ms)', 100, 20],
      ['idle stream (an append every 3 s)', 8, 3000],
    ] as const) {
      const stream = `/live-${gapMs}`;
      await ea.createStream({ stream });
      const subscriber = recordSubscription(a.client, stream);
      await subscriber.caughtUp;
      const sentAt: number[] = [];
      for (let i = 1; i <= count; i++) {
        await sleep(gapMs);
        sentAt.push(performance.now());
        await eb.append({ stream, events: [typicalEvent(i)] });
      }
      await subscriber.waitForEntries(count + 1, 10_000);
      const latencies = subscriber.entries.slice(1).map((e, i) => e.arrivedAt - (sentAt[i] ?? 0));
      subscriber.cancel();
      record(
        `cross-replica subscribe latency, ${label}: p50 / p95 / max ms`,
        `${percentile(latencies, 50).toFixed(0)} / ${percentile(latencies, 95).toFixed(0)} / ${Math.max(...latencies).toFixed(0)}`,
      );
    }

    // The cost of tailing an idle subscribed stream.
    await ea.createStream({ stream: '/idle' });
    const idle = recordSubscription(a.client, '/idle');
    await idle.caughtUp;
    await sleep(3000); // reach the idle interval
    metersA.reset();
    const windowMs = 20_000;
    await sleep(windowMs);
    counts = metersA.snapshot();
    idle.cancel();
    const perHour = 3_600_000 / windowMs;
    record(
      'tailing one idle subscribed stream (1 s max interval): requests / read units per hour',
      `${(metersA.totalRequests() * perHour).toFixed(0)} / ${(counts.readUnits * perHour).toFixed(0)}`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  process.stdout.write(`\n| measurement | DynamoDB Local |\n| --- | --- |\n`);
  for (const [what, value] of rows) process.stdout.write(`| ${what} | ${value} |\n`);
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
