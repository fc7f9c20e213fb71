import {
  dynamoDbLocal,
  freshTablePrefix,
  localStore,
  requireDynamoDbLocal,
  type DynamoDbLocal,
} from '../helpers/dynamodb-local';
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
});
