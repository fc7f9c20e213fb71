import { QueryCommand, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { abortSignalOf, type CallSignal } from '../../core/call-signal';
import type { DynamoDbContext } from './context';
import type { Item } from './items';

/** How one paged Query runs: each page's Limit, and the caller's signal. */
export interface PagingOptions {
  /** The Limit of the next page, asked before each request (none when unset or undefined). */
  limit?: () => number | undefined;
  /** A caller that gave up stops the SDK's retries too (CallAbandonedError). */
  signal?: CallSignal;
}

/**
 * The pages of one Query, following DynamoDB's LastEvaluatedKey (a page stops at 1 MB or at its
 * Limit). A page is requested only when the caller asks for it: stopping the iteration stops the
 * requests. Every page reports its consumed capacity (the request meter counts it).
 */
export async function* queryPages(
  context: DynamoDbContext,
  input: QueryCommandInput,
  options: PagingOptions = {},
): AsyncGenerator<QueryCommandOutput, void, undefined> {
  const { signal } = options;
  let startKey: Item | undefined;
  do {
    const page = await context.call(
      () =>
        context.client.send(
          new QueryCommand({
            ...input,
            Limit: options.limit?.(),
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: 'TOTAL',
          }),
          // The SDK takes only a real AbortSignal: made here, for the reads that wait on the network.
          signal ? { abortSignal: abortSignalOf(signal) } : {},
        ),
      signal,
    );
    yield page;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Up to `max` items of a Query, following DynamoDB's 1 MB pages. */
export async function queryAll(context: DynamoDbContext, input: QueryCommandInput, max: number): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of queryPages(context, input, { limit: () => Math.min(max - items.length, 1000) })) {
    items.push(...(page.Items ?? []));
    if (items.length >= max) break;
  }
  return items.slice(0, max);
}
