import type { EventStore } from './port';
import { SqliteStore } from './sqlite/sqlite-store';

export type StoreKind = 'sqlite';

export interface StoreConfig {
  kind: StoreKind;
  /** Folder of the embedded database (sqlite). */
  dataDir: string;
}

/** Builds the configured store. The service only ever sees the `EventStore` port. */
export function createStore(config: StoreConfig): EventStore {
  switch (config.kind) {
    case 'sqlite':
      return new SqliteStore({ dataDir: config.dataDir });
  }
}
