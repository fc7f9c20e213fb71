import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CallSignal } from '../../core/call-signal';
import type { TableNames } from './tables';

/**
 * Runs one SDK call, turning throttling, 5xx and network failures (after the SDK's retries)
 * into StoreUnavailableError and DynamoDB's item-size refusal into LimitExceededError; with a
 * signal that has fired, into CallAbandonedError.
 */
export type CallDynamoDb = <T>(request: () => Promise<T>, signal?: CallSignal) => Promise<T>;

/** What every part of the DynamoDB store works with: the client, the tables, the error mapping. */
export interface DynamoDbContext {
  readonly client: DynamoDBClient;
  readonly tables: TableNames;
  readonly call: CallDynamoDb;
}
