import { ConditionalCheckFailedException, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDbContext } from './context';
import { entryItem, readEntryItem, type EntryItem } from './items';
import type { StreamHeads } from './stream-heads';
import { EntryAttr } from './tables';
import { backoff, MAX_WRITE_ATTEMPTS, tooContended } from './write-attempts';

/**
 * Writes the shred fence: an entry without payload at head + 1. Every append (and every
 * CreateStream's entry in its parent) is a conditional write of head + 1 that fails when an item
 * is there, so a replica whose cached head is older runs into the fence, learns it, and refuses
 * with StreamShreddedError; the fence costs the append path nothing. Entries committed before
 * the fence were written before the shred; none can be committed after it.
 *
 * Runs in the stream's write queue, after the appends queued before it.
 */
export async function fenceShredded(
  context: DynamoDbContext,
  heads: StreamHeads,
  stream: string,
  shreddedAt: Date,
): Promise<void> {
  const state = await heads.streamState(stream);
  // Keys of a path that holds no stream (keys are written just before a create): nothing to fence.
  if (!state) return;
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    if (state.head.shredded) return;
    const fence: EntryItem = {
      stream,
      version: state.head.version + 1n,
      payload: new Uint8Array(0),
      recordedAt: shreddedAt,
      bytesThrough: state.head.bytesThrough,
      shredded: true,
    };
    try {
      await context.call(() =>
        context.client.send(
          new PutItemCommand({
            TableName: context.tables.events,
            Item: entryItem(fence),
            ConditionExpression: 'attribute_not_exists(#v)',
            ExpressionAttributeNames: { '#v': EntryAttr.version },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      state.advance(fence);
      return;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Another replica appended (or fenced) first: learn its entries and go after them.
      const found = error.Item ? readEntryItem(error.Item) : undefined;
      if (found && found.version === state.head.version + 1n) state.advance(found);
      await heads.catchUp(stream, state);
      if (attempt > 0) await backoff(attempt);
    }
  }
  throw tooContended(stream);
}
