import type { DynamoDbConfig, StoreKind } from '../config/config';
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

/**
 * Builds the configured store. The service only ever sees the `EventStore` port. The DynamoDB
 * store loads only when configured (a plain CommonJS require): the AWS SDK it brings would
 * otherwise sit in every embedded server's memory, unused (BENCHMARKS.md, "Memory").
 */
export function createStore(config: StoreConfig): EventStore {
  switch (config.kind) {
    case 'sqlite':
      return new SqliteStore({ dataDir: config.dataDir, ...(config.log ? { log: config.log } : {}) });
    case 'dynamodb': {
      const { DynamoDbStore } = require('./dynamodb/dynamodb-store') as typeof import('./dynamodb/dynamodb-store');
      return new DynamoDbStore(config.dynamodb);
    }
  }
}
