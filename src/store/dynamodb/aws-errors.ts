import {
  DynamoDBServiceException,
  type CancellationReason,
  type TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { StoreUnavailableError } from '../../core/errors';

/**
 * Turns what the SDK throws after its own retries into domain errors. Clients never see AWS error
 * text (it can name tables, keys and account details): the original stays as `cause`, for logs.
 */

/** Errors that mean "too much traffic right now": the SDK already retried them with backoff. */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'TransactionInProgressException',
]);

/** Network failures: no answer from DynamoDB at all. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** Whether an error means the backend is unreachable, overloaded or failing (worth a later retry). */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof DynamoDBServiceException) {
    return error.$fault === 'server' || THROTTLING.has(error.name) || (error.$metadata.httpStatusCode ?? 0) >= 500;
  }
  if (!(error instanceof Error)) return false;
  // A 5xx whose body is not DynamoDB's JSON (a load balancer's or proxy's 502/503 page): the SDK
  // fails to parse it and throws the parser's error (a SyntaxError), with the status attached.
  if (httpStatusOf(error) >= 500) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return error.name === 'TimeoutError' || (code !== undefined && NETWORK_CODES.has(code));
}

/** The HTTP status the SDK attached to an error it threw after an answer, or 0. */
function httpStatusOf(error: Error): number {
  const metadata: unknown = (error as { $metadata?: unknown }).$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('httpStatusCode' in metadata)) return 0;
  return typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : 0;
}

/**
 * The domain error for a failure the store does not handle itself: StoreUnavailableError for
 * throttling, 5xx and network failures; anything else unchanged (the service reports it as
 * INTERNAL without its text, and logs it).
 */
export function storeFailure(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  return new StoreUnavailableError('the storage backend is unavailable or overloaded; retry later', { cause: error });
}

/** Why one item of a cancelled transaction failed. */
export type CancellationCode = 'none' | 'condition' | 'conflict' | 'validation' | 'throttled' | 'other';

/**
 * The per-item reasons of a cancelled transaction, or undefined when DynamoDB sent none (it may
 * leave them out; callers then find out by reading).
 */
export function cancellationReasons(error: TransactionCanceledException): CancellationReasonInfo[] | undefined {
  const reasons = error.CancellationReasons;
  if (!reasons || reasons.length === 0) return undefined;
  return reasons.map(describeReason);
}

/** One decoded cancellation reason: its code and, for failed conditions, the item found. */
export interface CancellationReasonInfo {
  code: CancellationCode;
  item: CancellationReason['Item'];
}

function describeReason(reason: CancellationReason): CancellationReasonInfo {
  return { code: codeOf(reason.Code), item: reason.Item };
}

function codeOf(code: string | undefined): CancellationCode {
  switch (code) {
    case undefined:
    case 'None':
      return 'none';
    case 'ConditionalCheckFailed':
      return 'condition';
    case 'TransactionConflict':
      return 'conflict';
    case 'ValidationError':
      return 'validation';
    case 'ThrottlingError':
    case 'ProvisionedThroughputExceeded':
    case 'RequestLimitExceeded':
      return 'throttled';
    default:
      return 'other';
  }
}
