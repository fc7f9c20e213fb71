import { FeedIndexer } from '../../src/store/dynamodb/feed-indexer';
import type { EventStore } from '../../src/store/port';
import {
  dynamoDbLocal,
  freshTablePrefix,
  localStore,
  requireDynamoDbLocal,
  type DynamoDbLocal,
} from '../helpers/dynamodb-local';
import { runFeedConformance } from './feed-conformance';
import { runGroupsConformance } from './groups-conformance';
import { runStoreConformance } from './store-conformance';

describe('DynamoDB store on DynamoDB Local', function () {
  let local: DynamoDbLocal;
  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  // Every test gets its own empty tables (a fresh prefix), as a fresh SQLite file would be.
  const prefixes = new Map<object, string>();
  runStoreConformance('dynamodb', {
    async create() {
      const prefix = freshTablePrefix();
      const store = localStore(local ?? (await dynamoDbLocal()), prefix);
      prefixes.set(store, prefix);
      return store;
    },
    async reopen(store) {
      const prefix = prefixes.get(store);
      if (prefix === undefined) throw new Error('not a store of this factory');
      return localStore(local ?? (await dynamoDbLocal()), prefix);
    },
  });

  runGroupsConformance('dynamodb', {
    async create() {
      const prefix = freshTablePrefix();
      const store = localStore(local ?? (await dynamoDbLocal()), prefix);
      prefixes.set(store, prefix);
      return store;
    },
    async reopen(store) {
      const prefix = prefixes.get(store);
      if (prefix === undefined) throw new Error('not a store of this factory');
      return localStore(local ?? (await dynamoDbLocal()), prefix);
    },
  });

  // The feed: each test's tables get their indexer, in this process, as a replica would run it.
  const indexers = new Map<string, FeedIndexer>();
  async function indexerFor(store: EventStore): Promise<FeedIndexer> {
    const prefix = prefixes.get(store);
    if (prefix === undefined) throw new Error('not a store of this factory');
    let indexer = indexers.get(prefix);
    if (!indexer) {
      indexer = new FeedIndexer({ ...(local ?? (await dynamoDbLocal()))?.connection, tablePrefix: prefix, leaseMs: 2000, pollIntervalMs: 50 });
      indexer.start();
      indexers.set(prefix, indexer);
    }
    return indexer;
  }
  async function stopIndexer(store: EventStore): Promise<void> {
    const prefix = prefixes.get(store);
    const indexer = prefix === undefined ? undefined : indexers.get(prefix);
    if (prefix !== undefined) indexers.delete(prefix);
    await indexer?.stop();
  }
  runFeedConformance('dynamodb', {
    async create() {
      const prefix = freshTablePrefix();
      const store = localStore(local ?? (await dynamoDbLocal()), prefix);
      prefixes.set(store, prefix);
      return store;
    },
    async reopen(store) {
      const prefix = prefixes.get(store);
      if (prefix === undefined) throw new Error('not a store of this factory');
      // The indexer restarts too: the next holder carries on from the state in the feed table.
      await stopIndexer(store);
      const reopened = localStore(local ?? (await dynamoDbLocal()), prefix);
      prefixes.set(reopened, prefix);
      return reopened;
    },
    async feedCaughtUp(store) {
      await (await indexerFor(store)).caughtUp();
    },
    async dispose(store) {
      await stopIndexer(store);
      await store.close();
    },
  });
});
