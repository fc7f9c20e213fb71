import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { ConfigError, loadConfig, parseDuration, settingsHelp, type DynamoDbConfig } from '../../config/config';
import { createDynamoDbClient } from '../../store/dynamodb/dynamodb-store';
import { FeedIndexer, type BackfillOutcome, type BackfillProgress } from '../../store/dynamodb/feed-indexer';
import { checkTables, createTables, markBackfillPending, tableNames } from '../../store/dynamodb/tables';

/** Help of `eventhorizon dynamodb`. */
export const DYNAMODB_USAGE = `Usage: eventhorizon dynamodb create-tables [options]
       eventhorizon dynamodb backfill-feed [--settle DURATION] [options]

create-tables creates the DynamoDB tables of the DynamoDB store (on-demand billing) unless they
exist, waits until they are active, and checks their keys. An events table written before the
feed existed gets its DynamoDB stream (new images), which the feed indexer reads, and the feed
is marked "backfill pending": no replica indexes the feed until backfill-feed has run.

backfill-feed gives the entries written before the feed existed their positions in the feed,
oldest first, while the service keeps serving (appends and reads work; the feed, and so
SubscribeFeed and Subscribe across replicas, wait until it is done). It holds the feed indexer's
lease while it runs, scans the events table (each stream in version order), then reads the
table's stream up to the present, dropping what the scan indexed, and hands the lease back to
the replicas. It resumes where an interrupted run stopped, and does nothing when there is
nothing to backfill. A progress line is shown on a terminal (stderr), a summary at the end.
--settle (default 10s) is how long it keeps reading the stream after its scan ended.

Both take the same EH_DYNAMODB_* settings as serve (the endpoint, region, table prefix, feed lease
and batch size); credentials come from the standard AWS chain.

Options (flags win over environment variables):
${settingsHelp()}
`;

const COMMANDS = new Set(['create-tables', 'backfill-feed']);

/** `eventhorizon dynamodb ...`: returns the process exit code. */
export async function dynamodbCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !COMMANDS.has(sub) || rest.includes('--help')) {
    const asked = sub === undefined || sub === '--help' || rest.includes('--help');
    (asked ? process.stdout : process.stderr).write(DYNAMODB_USAGE);
    return asked ? 0 : 2;
  }
  let settleMs: number | undefined;
  let config;
  try {
    const args = [...rest];
    const at = args.findIndex((arg) => arg === '--settle' || arg.startsWith('--settle='));
    if (at >= 0 && sub === 'backfill-feed') {
      const [flag = ''] = args.splice(at, 1);
      const raw = flag.includes('=') ? flag.slice('--settle='.length) : args.splice(at, 1)[0] ?? '';
      settleMs = parseDuration(raw);
      if (settleMs === undefined) throw new ConfigError(['--settle must be a duration, such as 10s']);
    }
    config = loadConfig(args, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`eventhorizon: ${error.message}\n`);
    return 2;
  }
  return sub === 'create-tables' ? createTablesCommand(config.dynamodb) : backfillFeedCommand(config.dynamodb, settleMs);
}

async function createTablesCommand(config: DynamoDbConfig): Promise<number> {
  const client = createDynamoDbClient(config);
  try {
    const names = tableNames(config.tablePrefix);
    const { created, streamEnabled, backfillPending } = await createTables(client, names);
    for (const name of Object.values(names)) {
      const outcome = created.includes(name) ? 'created' : streamEnabled.includes(name) ? 'stream enabled (for the feed)' : 'already exists';
      process.stdout.write(`${name}: ${outcome}\n`);
    }
    if (backfillPending) {
      process.stdout.write(
        `${names.feed}: backfill pending: run "eventhorizon dynamodb backfill-feed" (the feed is not indexed until it has run)\n`,
      );
    } else if (streamEnabled.length > 0) {
      process.stdout.write(`${names.feed}: the feed already holds positions: entries written while the stream was off are not in it\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`eventhorizon: could not create the DynamoDB tables: ${(error as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
}

async function backfillFeedCommand(config: DynamoDbConfig, settleMs: number | undefined): Promise<number> {
  const client = createDynamoDbClient(config);
  const names = tableNames(config.tablePrefix);
  let estimate: number | undefined;
  try {
    await checkTables(client, names);
    // A feed with no position yet (tables whose stream an earlier create-tables enabled, say)
    // is backfilled too; a backfill marked already is resumed.
    await markBackfillPending(client, names.feed);
    const { Table } = await client.send(new DescribeTableCommand({ TableName: names.events }));
    estimate = Table?.ItemCount;
  } catch (error) {
    process.stderr.write(`eventhorizon: could not backfill the feed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
  const progress = new BackfillLine(estimate);
  const indexer = new FeedIndexer({
    ...config,
    leaseMs: config.feedLeaseMs,
    pollIntervalMs: config.feedPollIntervalMs,
    batchSize: config.feedBatchSize,
    backfill: true,
    ...(settleMs !== undefined ? { backfillSettleMs: settleMs } : {}),
    log: (level, message, fields) => {
      if (level === 'info') return;
      progress.interject(`eventhorizon: ${message}${fields?.err instanceof Error ? `: ${fields.err.message}` : ''}`);
    },
  });
  const timer = setInterval(() => progress.show(indexer.backfillProgress), 200);
  // Interrupted: the lease is released at once; the next run resumes from the last batch written.
  const interrupted = () => void indexer.stop();
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let outcome: BackfillOutcome;
  try {
    outcome = await indexer.runBackfill();
  } catch (error) {
    progress.finish(`eventhorizon: the feed backfill ${(error as Error).message}`);
    return 1;
  } finally {
    clearInterval(timer);
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }
  progress.finish(
    outcome.ran
      ? `backfilled the feed: ${outcome.entries} entries of ${outcome.streams} streams from the scan, then ${outcome.fromStream} ` +
          'from the stream; the replicas index the feed from here'
      : 'nothing to backfill: the feed is indexed from the stream already',
  );
  return 0;
}

/** The backfill's progress: one rewritten line on a terminal (stderr), a summary at the end. */
class BackfillLine {
  private readonly tty = process.stderr.isTTY === true;
  private shown = false;
  private last = '';

  constructor(private readonly estimate: number | undefined) {}

  show(progress: BackfillProgress): void {
    if (!this.tty) return;
    const total = this.estimate !== undefined ? `/~${this.estimate}` : '';
    const line =
      progress.phase === 'waiting'
        ? 'backfill-feed: waiting for the feed indexer lease'
        : progress.phase === 'scan'
          ? `backfill-feed: scanning: ${progress.entries}${total} entries, ${progress.streams} streams`
          : `backfill-feed: scanned ${progress.entries} entries of ${progress.streams} streams; reading the stream: ${progress.fromStream} entries`;
    if (line === this.last) return;
    this.last = line;
    process.stderr.write(`\r${line}\u001b[K`);
    this.shown = true;
  }

  /** A message on a line of its own (the progress line is redrawn after it). */
  interject(message: string): void {
    process.stderr.write(`${this.shown ? '\r\u001b[K' : ''}${message}\n`);
  }

  finish(summary: string): void {
    process.stderr.write(`${this.shown ? '\r\u001b[K' : ''}${summary}\n`);
  }
}
