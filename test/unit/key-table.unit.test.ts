import assert from 'node:assert/strict';
import { PutItemCommand, TransactionConflictException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KeyTable } from '../../src/store/dynamodb/key-table';

/** A DynamoDB client whose first `conflicts` requests fail as a write meeting a transaction does. */
function conflictingClient(conflicts: number) {
  const sent: string[] = [];
  const client = {
    send: async (command: unknown) => {
      sent.push(command instanceof PutItemCommand ? 'PutItem' : 'other');
      if (sent.length <= conflicts) {
        throw new TransactionConflictException({ message: 'conflict', $metadata: { httpStatusCode: 400 } });
      }
      return {};
    },
  };
  // Only `send` is used by the key table.
  return { client: client as Pick<DynamoDBClient, 'send'> as DynamoDBClient, sent };
}

describe('DynamoDB key table', () => {
  it('writes the shred marker through conflicts with transactions checking it (a sealed snapshot)', async () => {
    const { client, sent } = conflictingClient(2);
    const table = new KeyTable(client, 'keys', (request) => request());
    await table.markShredded('/s', new Date());
    assert.deepEqual(sent, ['PutItem', 'PutItem', 'PutItem']);
  });

  it('gives up after a few conflicts', async () => {
    const { client, sent } = conflictingClient(100);
    const table = new KeyTable(client, 'keys', (request) => request());
    await assert.rejects(table.markShredded('/s', new Date()), TransactionConflictException);
    assert.ok(sent.length > 1 && sent.length < 10, `${sent.length} attempts`);
  });
});
