import { setTimeout as sleep } from 'node:timers/promises';
import { FeedIndexer } from '../../../src/store/dynamodb/feed-indexer';

/**
 * A feed backfill in a process of its own, for the test of a backfill killed part-way: argv is
 * the endpoint, the table prefix, the lease in ms, the batch size, and the batch before whose
 * write it stops for good (to be killed there). Prints WROTE <entries> after each batch written
 * and PAUSED <entries> when it stops, with a batch read and not written.
 */
async function main(): Promise<void> {
  const [endpoint, tablePrefix, lease, batchSize, pauseAt] = process.argv.slice(2);
  if (!endpoint || !tablePrefix || !lease || !batchSize || !pauseAt) {
    throw new Error('usage: backfill-child ENDPOINT PREFIX LEASE_MS BATCH_SIZE PAUSE_AT_BATCH');
  }
  let batches = 0;
  const backfill: FeedIndexer = new FeedIndexer({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'eventhorizon', secretAccessKey: 'local' },
    tablePrefix,
    holderId: `backfill-child-${process.pid}`,
    leaseMs: Number(lease),
    pollIntervalMs: 20,
    batchSize: Number(batchSize),
    backfill: true,
    async beforeWrite(entries) {
      batches++;
      if (batches > 1) process.stdout.write(`WROTE ${backfill.backfillProgress.entries}\n`);
      if (batches === Number(pauseAt)) {
        process.stdout.write(`PAUSED ${entries}\n`);
        await sleep(600_000);
      }
    },
  });
  await backfill.runBackfill();
  process.stdout.write('DONE\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
