import { setTimeout as sleep } from 'node:timers/promises';
import { FeedIndexer } from '../../../src/store/dynamodb/feed-indexer';

/**
 * A feed indexer contender in a process of its own, for the takeover test: argv is the endpoint,
 * the table prefix, the lease in ms, and the batch before whose write it stops for good (it then
 * waits there, mid-batch, to be killed). Prints HOLDING once it holds the lease, WROTE <n> after
 * each write of entries, and PAUSED <entries> when it stops before a write.
 */
async function main(): Promise<void> {
  const [endpoint, tablePrefix, lease, pauseAt] = process.argv.slice(2);
  if (!endpoint || !tablePrefix || !lease || !pauseAt) throw new Error('usage: indexer-child ENDPOINT PREFIX LEASE_MS PAUSE_AT_BATCH');
  let batches = 0;
  const indexer: FeedIndexer = new FeedIndexer({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'eventhorizon', secretAccessKey: 'local' },
    tablePrefix,
    holderId: `child-${process.pid}`,
    leaseMs: Number(lease),
    pollIntervalMs: 20,
    batchSize: 200,
    async beforeWrite(entries) {
      batches++;
      if (batches > 1) process.stdout.write(`WROTE ${indexer.stats.entries}\n`);
      if (batches === Number(pauseAt)) {
        process.stdout.write(`PAUSED ${entries}\n`);
        // Mid-batch: read from the stream, positions assigned, nothing written. Killed here.
        await sleep(600_000);
      }
    },
  });
  indexer.start();
  while (!indexer.holding) await sleep(20);
  process.stdout.write('HOLDING\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
