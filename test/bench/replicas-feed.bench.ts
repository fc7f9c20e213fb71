/**
 * Cross-replica realtime through the feed, on DynamoDB Local: two servers on one set of tables,
 * each running its feed indexer contender (one holds the lease), as deployed.
 *
 * - Idle cost: replica B holds Subscribe calls on N idle streams; its DynamoDB requests over a
 *   quiet minute, per hour (the indexer's are counted apart: it runs on one replica of the
 *   deployment whatever N). Before the feed, each idle subscribed stream cost about 3,400
 *   requests per hour per replica (docs/dynamodb.md), so 10,000 cost about 34 million.
 * - Latency: appends on A; a Subscribe and a SubscribeFeed on B; from A's acknowledgement to
 *   arrival on B, p50 and p99.
 *
 *   npm run build && node dist/test/bench/replicas-feed.bench.js [--streams 10000] [--idle-seconds 60]
 *
 * Not part of `npm test`. Every loop is bounded. DynamoDB Local's stream latency differs from
 * AWS's: the latency figures say what this stack adds on top of it here, not what AWS gives.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDbStore } from '../../src/store/dynamodb/dynamodb-store';
import { recordFeed } from '../helpers/feed-subscriber';
import { dynamoDbLocal, freshTablePrefix, localStore } from '../helpers/dynamodb-local';
import { api, jsonEvent, startTestServer, type TestServer } from '../helpers/server';
import { recordSubscription, type RecordingSubscriber } from '../helpers/subscriber';
import { quantile } from '../../bench/stats';

/** The p-th percentile (0..100), by nearest rank: the bench's own quantile. */
function percentile(values: number[], p: number): number {
  return quantile(values, p / 100);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { streams: { type: 'string' }, 'idle-seconds': { type: 'string' } } });
  const streamCount = Number(values.streams ?? 10_000);
  const idleSeconds = Number(values['idle-seconds'] ?? 60);
  const local = await dynamoDbLocal();
  if (!local) throw new Error('DynamoDB Local cannot run here (java missing)');
  const prefix = freshTablePrefix();
  let storeB: DynamoDbStore | undefined;
  // Production settings: the indexer polls every 250 ms, a replica's feed reader at most every 1 s.
  const production = { feedPollIntervalMs: 250, feedLeaseMs: 10_000 };
  const a: TestServer = await startTestServer({ pollMaxIntervalMs: 1000, subscriberBufferEntries: 100 }, () => localStore(local, prefix, production));
  const b: TestServer = await startTestServer({ pollMaxIntervalMs: 1000, subscriberBufferEntries: 100 }, () => (storeB = localStore(local, prefix, { ...production, feedIndexer: false })));
  const rows: Array<[string, string]> = [];
  const record = (what: string, value: string) => {
    rows.push([what, value]);
    process.stderr.write(`${what}: ${value}\n`);
  };
  const subscribers: RecordingSubscriber[] = [];
  try {
    const writer = api(a.client);
    await writer.createStream({ stream: '/idle' });
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < streamCount; i = next++) await writer.createStream({ stream: `/idle/s${i}` });
      }),
    );
    process.stderr.write(`created ${streamCount} streams in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);

    // N idle subscriptions on B, opened a few hundred at a time.
    for (let i = 0; i < streamCount; i += 500) {
      const batch = Array.from({ length: Math.min(500, streamCount - i) }, (_, j) => recordSubscription(b.client, `/idle/s${i + j}`));
      subscribers.push(...batch);
      await Promise.all(batch.map((s) => s.caughtUp));
    }
    process.stderr.write(`${subscribers.length} subscriptions caught up on B\n`);
    await sleep(5_000); // let the reader's interval back off to its maximum
    const meter = storeB?.meter;
    if (!meter) throw new Error('no store on B');
    meter.reset();
    await sleep(idleSeconds * 1000);
    const idle = meter.snapshot();
    const total = Object.values(idle.requests).reduce((sum, n) => sum + n, 0);
    const perHour = (n: number) => Math.round((n / idleSeconds) * 3600);
    record(
      `replica B, ${streamCount} idle subscribed streams: DynamoDB requests per hour (its feed reader)`,
      `${perHour(total)} (${Object.entries(idle.requests).map(([op, n]) => `${op} ${perHour(n)}`).join(', ')}); before the feed about ${(3400 * streamCount).toLocaleString('en')} (3,400 per stream), so ${((100 * perHour(total)) / (3400 * streamCount)).toFixed(3)} % of it`,
    );
    for (const s of subscribers.splice(0)) s.cancel();

    // Latency: 200 appends on A, 20 per second, one stream; Subscribe and SubscribeFeed on B.
    await writer.createStream({ stream: '/hot' });
    const sub = recordSubscription(b.client, '/hot');
    const feed = recordFeed(b.client, { selector: { stream: '/hot' }, fromNow: true });
    await sub.caughtUp;
    await feed.caughtUp;
    const acked = new Map<bigint, number>();
    for (let i = 0; i < 200; i++) {
      const { cursor } = await writer.append({ stream: '/hot', events: [jsonEvent('tick', { i })] });
      acked.set(cursor?.version ?? -1n, performance.now());
      await sleep(50);
    }
    await sub.waitForEntries(201, 30_000);
    await feed.until((f) => f.entries.length >= 200, '200 feed entries', 30_000);
    const subLatency = sub.entries.flatMap(({ entry, arrivedAt }) => {
      const at = acked.get(entry.version);
      return at === undefined ? [] : [arrivedAt - at];
    });
    record(
      'cross-replica append-to-delivery, Subscribe on B, appends on A (20/s): p50 / p99',
      `${percentile(subLatency, 50).toFixed(0)} ms / ${percentile(subLatency, 99).toFixed(0)} ms (${subLatency.length} entries)`,
    );
    sub.cancel();
    feed.cancel();

    // The same through SubscribeFeed, arrival timed by a second pass (recordFeed keeps no times).
    const timed: number[] = [];
    const feed2 = recordFeed(b.client, { selector: { stream: '/hot' }, fromNow: true });
    await feed2.caughtUp;
    for (let i = 0; i < 100; i++) {
      const before = feed2.entries.length;
      await writer.append({ stream: '/hot', events: [jsonEvent('tick', { i })] });
      const at = performance.now();
      await feed2.until((f) => f.entries.length > before, 'the entry', 10_000);
      timed.push(performance.now() - at);
      await sleep(50);
    }
    record('cross-replica append-to-delivery, SubscribeFeed on B, appends on A: p50 / p99', `${percentile(timed, 50).toFixed(0)} ms / ${percentile(timed, 99).toFixed(0)} ms`);
    feed2.cancel();
  } finally {
    for (const s of subscribers) s.cancel();
    await b.stop();
    await a.stop();
  }
  process.stdout.write('\n| measurement | result |\n| --- | --- |\n');
  for (const [what, value] of rows) process.stdout.write(`| ${what} | ${value} |\n`);
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
