import {
  ConditionalCheckFailedException,
  PutItemCommand,
  TransactionCanceledException,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import {
  CallAbandonedError,
  StoreUnavailableError,
  StreamNotFoundError,
  StreamShreddedError,
  WrongExpectedVersionError,
} from '../../core/errors';
import type { AppendCommand, AppendResult } from '../port';
import { cancellationReasons } from './aws-errors';
import { entryWrites } from './chunks';
import type { DynamoDbContext } from './context';
import { GroupCommit, transact, type GroupCommitKind, type Waiting } from './group-commit';
import { readEntryItem, type EntryItem } from './items';
import type { KeyedQueue } from './keyed-queue';
import type { StreamHeads } from './stream-heads';
import { backoff, MAX_WRITE_ATTEMPTS, nextEntries, tooContended } from './write-attempts';

/** Appends in one group commit: more waiting ones go in the next. */
const MAX_APPENDS_PER_TRANSACTION = 50;

/** An Append waiting for its stream's next write. */
interface PendingAppend extends Waiting<AppendResult> {
  command: AppendCommand;
}

/**
 * Appends. Each stream's appends are written through its queue, so appends arriving while a write
 * is in flight gather: alone, an append is one PutItem (the steady state), or one transaction of
 * its item and its chunks when its payload does not fit one item (chunks.ts); several go together
 * in one transaction (group commit, as the embedded store does), which costs twice the write units
 * per entry but one round trip for up to 50 entries.
 */
export class Appends {
  private readonly groupCommit: GroupCommit<PendingAppend, AppendResult>;

  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
    writes: KeyedQueue,
  ) {
    this.groupCommit = new GroupCommit(context, heads, writes, this.kind());
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.groupCommit.submit(command.stream, { command, resolve, reject });
    });
  }

  /** How the group commit writes appends: a batch has no expected versions and distinct request ids. */
  private kind(): GroupCommitKind<PendingAppend, AppendResult> {
    const { context, heads } = this;
    return {
      takeBatch: takeAppendBatch,
      writeAlone: (append) => this.appendNow(append.command),
      missing: (stream) => new StreamNotFoundError(stream),
      settleUnwritten: (state, appends) =>
        appends.filter((append) => {
          const earlier = append.command.requestId === undefined ? undefined : state.find(append.command.requestId);
          if (earlier) append.resolve({ ...earlier, deduplicated: true });
          else if (append.command.signal?.aborted) append.reject(new CallAbandonedError());
          else return true;
          return false;
        }),
      entryOf: (append) => append.command,
      writes: (_stream, _append, entry) => entryWrites(context.tables, entry),
      afterCancelled: async (error, stream, state, appends) => {
        const reasons = cancellationReasons(error);
        if (reasons?.some((r) => r.code === 'validation') || reasons?.every((r) => r.code === 'other')) {
          throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
        }
        // Another replica took some of these versions, or transactions conflicted: learn the
        // entries written meanwhile (their request ids too) and try again.
        await heads.catchUp(stream, state);
        return appends;
      },
      committed: (append, entry) =>
        append.resolve({ version: entry.version, recordedAt: entry.recordedAt, deduplicated: false }),
    };
  }

  /**
   * Appends alone: one conditional PutItem at the cached head + 1 (the steady state); a payload
   * larger than one item makes it a transaction, with the same condition on the entry's item.
   */
  private async appendNow(command: AppendCommand): Promise<AppendResult> {
    const { stream, requestId, expectedVersion } = command;
    const state = await this.heads.streamState(stream);
    if (!state) throw new StreamNotFoundError(stream);

    /** Whether the state was just brought up to DynamoDB's head (no need to ask again). */
    let current = false;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const earlier = requestId === undefined ? undefined : state.find(requestId);
      if (earlier) return { ...earlier, deduplicated: true };
      // The head is the shred fence (learnt from a failed write or a catch-up): nothing follows it.
      if (state.head.shredded) throw new StreamShreddedError(stream);
      // Checked before each write is sent, never during one: the outcome of a write in flight
      // must be learnt, or this replica's view of the stream's head would go stale.
      if (command.signal?.aborted) throw new CallAbandonedError();
      if (expectedVersion !== undefined && expectedVersion !== state.head.version) {
        // The cache may be behind: only DynamoDB can tell a conflict (or a retry of ours) apart.
        if (!current) await this.heads.catchUp(stream, state);
        const committed = requestId === undefined ? undefined : state.find(requestId);
        if (committed) return { ...committed, deduplicated: true };
        if (state.head.shredded) throw new StreamShreddedError(stream);
        if (expectedVersion !== state.head.version) {
          throw new WrongExpectedVersionError(stream, expectedVersion, state.head.version);
        }
      }

      const [entry] = nextEntries(stream, state.head, [command]) as [EntryItem];
      const { version } = entry;
      const taken = await this.writeEntry(entryWrites(this.context.tables, entry));
      if (!taken) {
        state.advance(entry);
        return { version, recordedAt: command.recordedAt, deduplicated: false };
      }
      const { found } = taken;
      if (found && sameWrite(found, entry)) {
        // Our own write, committed by an SDK retry after a lost response.
        state.advance(found);
        return { version, recordedAt: command.recordedAt, deduplicated: false };
      }
      if (found) state.advance(found);
      await this.heads.catchUp(stream, state);
      current = true;
      // The next attempt has the fresh head; back off only when another replica keeps winning.
      if (attempt > 0) await backoff(attempt);
    }
    throw tooContended(stream);
  }

  /**
   * Writes one entry: one conditional PutItem when it fits one item (the steady state), or one
   * transaction of its item and its chunks. Undefined once written; when its version was taken
   * (or the transaction met another on the same items), what DynamoDB showed there, if anything.
   */
  private async writeEntry(writes: TransactWriteItem[]): Promise<{ found?: EntryItem } | undefined> {
    const [only, ...chunks] = writes;
    if (only?.Put && chunks.length === 0) {
      try {
        // On conflict, DynamoDB shows what is there (ALL_OLD): no extra read to learn the new head.
        await this.context.call(() => this.context.client.send(new PutItemCommand({ ...only.Put!, ReturnConsumedCapacity: 'TOTAL' })));
        return undefined;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        return error.Item ? { found: readEntryItem(error.Item) } : {};
      }
    }
    try {
      await transact(this.context, writes);
      return undefined;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = cancellationReasons(error);
      if (reasons?.some((r) => r.code === 'validation') || reasons?.every((r) => r.code === 'other')) {
        throw new StoreUnavailableError('the storage backend refused the write; retry later', { cause: error });
      }
      // The entry's item comes first: its condition tells that the version was taken, and by what.
      const item = reasons?.[0]?.code === 'condition' ? reasons[0].item : undefined;
      return item ? { found: readEntryItem(item) } : {};
    }
  }
}

/**
 * Takes the appends of the next write off the front of the queue: an append with an expected
 * version goes alone (it is decided against the head before it); others go together, as many as
 * fit one transaction, each request id once (its retry then finds the first committed).
 */
function takeAppendBatch(waiting: PendingAppend[]): PendingAppend[] {
  const first = waiting.shift();
  if (!first) return [];
  const batch = [first];
  if (first.command.expectedVersion !== undefined) return batch;
  const requestIds = new Set(first.command.requestId === undefined ? [] : [first.command.requestId]);
  // Payload sizes are known only once versions are assigned: the group commit trims to 4 MB then.
  const maxEntries = MAX_APPENDS_PER_TRANSACTION;
  for (let i = 0; i < waiting.length && batch.length < maxEntries;) {
    const next = waiting[i]!;
    if (next.command.expectedVersion !== undefined) break;
    const requestId = next.command.requestId;
    if (requestId !== undefined && requestIds.has(requestId)) {
      i++;
      continue;
    }
    if (requestId !== undefined) requestIds.add(requestId);
    batch.push(next);
    waiting.splice(i, 1);
  }
  return batch;
}

/** Whether a stored entry is exactly the one this attempt tried to write. */
function sameWrite(found: EntryItem, attempted: EntryItem): boolean {
  return (
    found.requestId === attempted.requestId &&
    found.recordedAt.getTime() === attempted.recordedAt.getTime() &&
    Buffer.from(found.payload).equals(Buffer.from(attempted.payload))
  );
}
