import {
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  paginateScan,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { entryKey } from '../../src/store/dynamodb/items';
import { EntryAttr, tableNames } from '../../src/store/dynamodb/tables';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { runEncryptionSuite } from './encryption-suite';

describe('DynamoDB Local', function () {
  let local: DynamoDbLocal | undefined;
  let client: DynamoDBClient | undefined;
  before(async function () {
    local = await requireDynamoDbLocal(this);
    client = new DynamoDBClient(local.connection);
  });
  after(() => client?.destroy());

  runEncryptionSuite('DynamoDB store (DynamoDB Local)', () => {
    if (!local || !client) throw new Error('DynamoDB Local is not running');
    const running = local;
    const dynamo = client;
    const prefix = freshTablePrefix();
    const tables = tableNames(prefix);
    return {
      open: () => localStore(running, prefix),
      // Every attribute of every item of the four tables: what a backup or a table export holds.
      async rawBytes() {
        const chunks: Buffer[] = [];
        for (const table of Object.values(tables)) {
          for await (const page of paginateScan({ client: dynamo }, { TableName: table, ConsistentRead: true })) {
            for (const item of page.Items ?? []) {
              for (const [name, value] of Object.entries(item)) chunks.push(Buffer.from(name), attributeBytes(value));
            }
          }
        }
        return Buffer.concat(chunks);
      },
      async copyEntryPayload(stream, from, to) {
        const source = await dynamo.send(
          new GetItemCommand({ TableName: tables.events, Key: entryKey(stream, from), ConsistentRead: true }),
        );
        const payload = source.Item?.[EntryAttr.payload];
        if (!payload) throw new Error(`no entry ${from} in ${stream}`);
        await dynamo.send(
          new UpdateItemCommand({
            TableName: tables.events,
            Key: entryKey(stream, to),
            UpdateExpression: 'SET #p = :p',
            ConditionExpression: 'attribute_exists(#p)',
            ExpressionAttributeNames: { '#p': EntryAttr.payload },
            ExpressionAttributeValues: { ':p': payload },
          }),
        );
      },
      async changeEntryPayload(stream, version, change) {
        const found = await dynamo.send(
          new GetItemCommand({ TableName: tables.events, Key: entryKey(stream, version), ConsistentRead: true }),
        );
        const payload = found.Item?.[EntryAttr.payload]?.B;
        if (!payload) throw new Error(`no entry ${version} in ${stream}`);
        await dynamo.send(
          new UpdateItemCommand({
            TableName: tables.events,
            Key: entryKey(stream, version),
            UpdateExpression: 'SET #p = :p',
            ExpressionAttributeNames: { '#p': EntryAttr.payload },
            ExpressionAttributeValues: { ':p': { B: change(Buffer.from(payload)) } },
          }),
        );
      },
      async remove() {
        for (const table of Object.values(tables)) {
          // A test that failed before its server started never created the tables.
          await dynamo.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
        }
      },
    };
  });
});

/** The bytes of one attribute value, whatever its type (lists and maps included). */
function attributeBytes(value: AttributeValue): Buffer {
  if (value.B !== undefined) return Buffer.from(value.B);
  if (value.S !== undefined) return Buffer.from(value.S);
  if (value.N !== undefined) return Buffer.from(value.N);
  if (value.L !== undefined) return Buffer.concat(value.L.map(attributeBytes));
  if (value.M !== undefined) {
    return Buffer.concat(Object.entries(value.M).flatMap(([name, inner]) => [Buffer.from(name), attributeBytes(inner)]));
  }
  if (value.SS !== undefined) return Buffer.from(value.SS.join(''));
  if (value.BS !== undefined) return Buffer.concat(value.BS.map((b) => Buffer.from(b)));
  return Buffer.alloc(0);
}
