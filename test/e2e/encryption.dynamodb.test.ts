import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  DeleteItemCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  paginateScan,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { status } from '@grpc/grpc-js';
import { generateKeyring } from '../../src/crypto/keyring';
import { entryChunkOwner } from '../../src/store/dynamodb/chunks';
import { entryKey } from '../../src/store/dynamodb/items';
import { ChunkAttr, EntryAttr, tableNames } from '../../src/store/dynamodb/tables';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { api, rejection, startTestServer } from '../helpers/server';
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
      // Every attribute of every item of the six tables: what a backup or a table export holds.
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

/**
 * Chunks of split entries, tampered with behind the server's back: the whole payload was sealed
 * before it was split, so one tag covers every chunk, in order, at its entry's position.
 */
describe('DynamoDB Local: split entries tampered with at rest', function () {
  this.timeout(60_000);
  let local: DynamoDbLocal;
  let dynamo: DynamoDBClient;
  before(async function () {
    local = await requireDynamoDbLocal(this);
    dynamo = new DynamoDBClient(local.connection);
  });
  after(() => dynamo?.destroy());

  const chunkKey = (stream: string, version: bigint, index: number) => ({
    [ChunkAttr.owner]: { S: entryChunkOwner(stream, version) },
    [ChunkAttr.index]: { N: String(index) },
  });

  for (const keyring of [generateKeyring('kek-1'), undefined]) {
    it(`reads nothing but whole entries${keyring ? ', sealed,' : ', unsealed,'} when chunks are swapped or missing (DATA_LOSS)`, async () => {
      const prefix = freshTablePrefix();
      const tables = tableNames(prefix);
      const server = await startTestServer(keyring ? { keyring: JSON.stringify(keyring) } : {}, () => localStore(local, prefix));
      try {
        const eh = api(server.client);
        await eh.createStream({ stream: '/t' });
        for (let i = 0; i < 3; i++) {
          await eh.append({ stream: '/t', events: [{ type: 'blob', data: randomBytes(1 << 20), contentType: 'application/octet-stream' }] });
        }
        // Entry 1's first chunk becomes entry 2's first chunk: same size, same offset, another entry.
        const moved = await dynamo.send(new GetItemCommand({ TableName: tables.chunks, Key: chunkKey('/t', 2n, 0), ConsistentRead: true }));
        await dynamo.send(new PutItemCommand({ TableName: tables.chunks, Item: { ...moved.Item, ...chunkKey('/t', 1n, 0) } }));
        // Entry 3 loses its second chunk.
        await dynamo.send(new DeleteItemCommand({ TableName: tables.chunks, Key: chunkKey('/t', 3n, 1) }));

        const missing = await rejection(eh.read({ stream: '/t', fromVersion: 3n }), status.DATA_LOSS);
        assert.equal(missing.reason, 'CORRUPT_DATA');
        if (keyring) {
          // Sealed: the swapped chunk fails the entry's tag.
          assert.equal((await rejection(eh.read({ stream: '/t', fromVersion: 1n, limit: 1 }), status.DATA_LOSS)).reason, 'CORRUPT_DATA');
        } else {
          // Unsealed payloads carry no tag, in one item or in several: the bytes are served as stored.
          assert.equal((await eh.read({ stream: '/t', fromVersion: 1n, limit: 1 })).entries.length, 1);
        }
        assert.equal((await eh.read({ stream: '/t', fromVersion: 2n, limit: 1 })).entries[0]?.version, 2n, 'the others read');
      } finally {
        await server.stop();
      }
    });
  }
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
