import type { ConsumedCapacity, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';

/** Requests and capacity units one store has used, by operation (PutItem, Query, ...). */
export interface RequestCounts {
  /** HTTP requests sent, SDK retries included. */
  requests: Record<string, number>;
  readUnits: number;
  writeUnits: number;
}

/**
 * Counts every request the DynamoDB client sends and the capacity DynamoDB reports consuming,
 * through SDK middleware, so tests and benchmarks measure what is billed rather than guess it.
 */
export class RequestMeter {
  private counts: RequestCounts = emptyCounts();

  /** Installs the counting middleware on a client (DynamoDB's, or its streams' for the feed indexer). */
  attach(client: DynamoDBClient | DynamoDBStreamsClient): void {
    (client.middlewareStack as DynamoDBClient['middlewareStack']).add(
      (next, context) => async (args) => {
        // The deserialize step runs once per attempt, inside the SDK's retry loop.
        const operation = context.commandName?.replace(/Command$/, '') ?? 'unknown';
        this.counts.requests[operation] = (this.counts.requests[operation] ?? 0) + 1;
        const result = await next(args);
        const output = result.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } | undefined;
        this.addCapacity(WRITES.has(operation), output?.ConsumedCapacity);
        return result;
      },
      { step: 'deserialize', priority: 'high', name: 'eventhorizonRequestMeter' },
    );
  }

  /** A copy of the counts so far. */
  snapshot(): RequestCounts {
    return {
      requests: { ...this.counts.requests },
      readUnits: this.counts.readUnits,
      writeUnits: this.counts.writeUnits,
    };
  }

  /** Starts counting from zero. */
  reset(): void {
    this.counts = emptyCounts();
  }

  /** All requests counted so far, of every operation. */
  totalRequests(): number {
    return Object.values(this.counts.requests).reduce((sum, n) => sum + n, 0);
  }

  private addCapacity(isWrite: boolean, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    // With ReturnConsumedCapacity=TOTAL, DynamoDB reports CapacityUnits per table touched.
    for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      if (isWrite) this.counts.writeUnits += entry.CapacityUnits ?? 0;
      else this.counts.readUnits += entry.CapacityUnits ?? 0;
    }
  }
}

/** Operations whose consumed capacity is write units. */
const WRITES = new Set(['PutItem', 'DeleteItem', 'UpdateItem', 'TransactWriteItems', 'BatchWriteItem']);

function emptyCounts(): RequestCounts {
  return { requests: {}, readUnits: 0, writeUnits: 0 };
}
