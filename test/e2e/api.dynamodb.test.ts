import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { runApiSuite } from './api-suite';

describe('DynamoDB Local', function () {
  let local: DynamoDbLocal | undefined;
  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  // The suite starts its server in its own `before`, which runs after the one above.
  runApiSuite('DynamoDB store (DynamoDB Local)', {
    store: () => {
      if (!local) throw new Error('DynamoDB Local is not running');
      return localStore(local, freshTablePrefix());
    },
    stressEntries: 600,
  });
});
