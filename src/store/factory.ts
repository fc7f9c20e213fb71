import type { DynamoDbConfig, StoreKind } from '../config/config';
import { DynamoDbStore } from './dynamodb/dynamodb-store';
import { FeedIndexer, type IndexerLog } from './dynamodb/feed-indexer';
import type { EventStore } from './port';
import type { UpgradeLog } from './sqlite/feed-upgrade';
import { SqliteStore } from './sqlite/sqlite-store';

export interface StoreConfig {
  kind: StoreKind;
  /** Folder of the embedded database (sqlite). */
  dataDir: string;
  /** Tables and connection (dynamodb); credentials come from the standard AWS chain. */
  dynamodb: DynamoDbConfig;
  /** Where a store reports long start-up work (the embedded store's upgrade of an older database). */
  log?: UpgradeLog;
}

/** Builds the configured store. The service only ever sees the `EventStore` port. */
export function createStore(config: StoreConfig): EventStore {
  switch (config.kind) {
    case 'sqlite':
      return new SqliteStore({ dataDir: config.dataDir, ...(config.log ? { log: config.log } : {}) });
    case 'dynamodb':
      return new DynamoDbStore(config.dynamodb);
  }
}

/** Work a store needs done in the background of a serving process, started and stopped with it. */
export interface StoreBackground {
  start(): void;
  /** Stops, handing over what it holds (the feed indexer releases its lease). */
  stop(): Promise<void>;
}

/**
 * The configured store's background work in a serving process, if it has any: on DynamoDB, the
 * feed indexer's contender (one replica of the deployment holds the lease and indexes). The CLI's
 * short-lived commands do not run it.
 */
export function createStoreBackground(config: StoreConfig, log: IndexerLog): StoreBackground | undefined {
  switch (config.kind) {
    case 'sqlite':
      // The embedded store numbers entries inside its commit: nothing to index.
      return undefined;
    case 'dynamodb':
      if (!config.dynamodb.feedIndexer) return undefined;
      return new FeedIndexer({
        ...config.dynamodb,
        leaseMs: config.dynamodb.feedLeaseMs,
        pollIntervalMs: config.dynamodb.feedPollIntervalMs,
        batchSize: config.dynamodb.feedBatchSize,
        log,
      });
  }
}
