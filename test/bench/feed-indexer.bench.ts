/**
 * DynamoDB feed indexer benchmark, against DynamoDB Local: write requests per indexed entry under
 * load at the default settings, the indexer's idle cost, and append-to-indexed latency (the time
 * from an append's acknowledgement until readFeed returns it). Prints a Markdown table for
 * BENCHMARKS.md.
 *
 *   npm run build && node dist/test/bench/feed-indexer.bench.js
 *
 * Not part of `npm test`. Every loop is bounded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_INDEXER_SETTINGS, FeedIndexer } from '../../src/store/dynamodb/feed-indexer';
import { dynamoDbLocal, freshTablePrefix, localStore } from '../helpers/dynamodb-local';
import { quantile } from '../../bench/stats';

const at = new Date();
const payload = new Uint8Array(300).fill(7);

/** The p-th percentile (0..100), by nearest rank: the bench's own quantile. */
function percentile(values: number[], p: number): number {
  return quantile(values, p / 100);
}

async function main(): Promise<void> {
  const local = await dynamoDbLocal();
  if (!local) throw new Error('DynamoDB Local cannot run here (java missing)');
  const prefix = freshTablePrefix();
  const store = localStore(local, prefix);
  await store.init(new Uint8Array(1), at);
  const indexer = new FeedIndexer({ ...local.connection, tablePrefix: prefix });
  indexer.start();
  const rows: Array<[string, string]> = [];
  const record = (what: string, value: string) => {
    rows.push([what, value]);
    process.stderr.write(`${what}: ${value}\n`);
  };
  try {
    await indexer.caughtUp();
    const streams = Array.from({ length: 32 }, (_, i) => `/load${i}`);
    for (const stream of streams) {
      await store.createStream({ stream, parent: '/', recordedAt: at, startedPayload: payload, childCreatedPayload: () => payload });
    }
    await indexer.caughtUp();

    // Load: 32 concurrent appenders, one per stream, for 15 s.
    indexer.meter.reset();
    const entriesBefore = indexer.stats.entries;
    const writesBefore = indexer.stats.writes;
    const until = Date.now() + 15_000;
    let appended = 0;
    await Promise.all(
      streams.map(async (stream) => {
        while (Date.now() < until) {
          await store.append({ stream, payload: () => payload, recordedAt: at });
          appended++;
        }
      }),
    );
    await indexer.caughtUp(60_000);
    const counts = indexer.meter.snapshot();
    const writeRequests = (counts.requests.TransactWriteItems ?? 0) + (counts.requests.UpdateItem ?? 0) + (counts.requests.PutItem ?? 0);
    const entries = indexer.stats.entries - entriesBefore;
    record('load: appends per second (32 concurrent appenders, 300-byte payloads)', (appended / 15).toFixed(0));
    record(
      `write requests per indexed entry (poll ${DEFAULT_INDEXER_SETTINGS.pollIntervalMs} ms, batch ${DEFAULT_INDEXER_SETTINGS.batchSize})`,
      `${(writeRequests / entries).toFixed(4)} (${writeRequests} for ${entries} entries: 1 per ${(entries / writeRequests).toFixed(0)}; ${indexer.stats.writes - writesBefore} writes)`,
    );
    record('write units reported by DynamoDB Local per indexed entry', (counts.writeUnits / entries).toFixed(4));
    record('stream reads (GetRecords) per indexed entry', ((counts.requests.GetRecords ?? 0) / entries).toFixed(4));

    // Idle: what the holder costs with nothing to index, for 10 s.
    indexer.meter.reset();
    await sleep(10_000);
    const idle = indexer.meter.snapshot();
    const perHour = (n: number) => ((n / 10) * 3600).toFixed(0);
    record(
      'idle holder, per hour: stream reads / DynamoDB writes (lease renewals) / other requests',
      `${perHour(idle.requests.GetRecords ?? 0)} / ${perHour((idle.requests.UpdateItem ?? 0) + (idle.requests.TransactWriteItems ?? 0))} / ${perHour(
        Object.entries(idle.requests)
          .filter(([op]) => !['GetRecords', 'UpdateItem', 'TransactWriteItems'].includes(op))
          .reduce((sum, [, n]) => sum + n, 0),
      )}`,
    );

    // Append-to-indexed latency: one append every 100 ms, each waited for in the feed.
    const latencies: number[] = [];
    let after = await store.feedHead();
    for (let i = 0; i < 100; i++) {
      await store.append({ stream: '/load0', payload: () => payload, recordedAt: at });
      const acked = Date.now();
      for (let polls = 0; polls < 1000; polls++) {
        const page = await store.readFeed({ after, subtree: { path: '/load0', descendants: false }, limit: 10, maxBytes: 1 << 20 });
        if (page.entries.length > 0) {
          latencies.push(Date.now() - acked);
          after = page.entries[page.entries.length - 1]?.position ?? after;
          break;
        }
        after = page.reached;
        await sleep(5);
      }
      await sleep(100);
    }
    record(
      'append-to-indexed latency, one append every 100 ms: p50 / p99 / max',
      `${percentile(latencies, 50)} ms / ${percentile(latencies, 99)} ms / ${Math.max(...latencies)} ms`,
    );
  } finally {
    await indexer.stop();
    await store.close();
  }
  process.stdout.write('\n| measurement | result |\n| --- | --- |\n');
  for (const [what, value] of rows) process.stdout.write(`| ${what} | ${value} |\n`);
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
