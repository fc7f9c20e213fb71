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
  runStoreConformance('dynamodb', {
    async create() {
      return localStore(local ?? (await dynamoDbLocal()), freshTablePrefix());
    },
  });
});
