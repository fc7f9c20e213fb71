import { randomUUID } from 'node:crypto';
import {
  TransactionCanceledException,
  TransactWriteItemsCommand,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { StreamShreddedError } from '../../core/errors';
import type { DynamoDbContext } from './context';
import { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, payloadTooLarge, transactItemSize, type EntryItem } from './items';
import type { KeyedQueue } from './keyed-queue';
import type { StreamHeads } from './stream-heads';
import type { EntryMeta, StreamState } from './stream-cache';
import { backoff, MAX_WRITE_ATTEMPTS, nextEntries, tooContended, type EntryToWrite } from './write-attempts';

/** A request waiting for its stream's next write: an append, or a create waiting on its parent. */
export interface Waiting<Result> {
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

/**
 * What differs between the kinds of request a group commit writes. Each request adds one entry to
 * the queue's stream (the key): an append its entry, a create the parent's `child-created` entry,
 * along with the child's items.
 */
export interface GroupCommitKind<W extends Waiting<Result>, Result> {
  /** Takes the requests of the next write off the front of the queue. */
  takeBatch(waiting: W[]): W[];
  /** Writes a request that is alone in its batch without a transaction, when the kind can. */
  writeAlone?(request: W): Promise<Result>;
  /** The error of each request when the key's stream does not exist. */
  missing(key: string, request: W): unknown;
  /** Settles the requests that need no write any more (a retry already committed, a caller gone); returns the others. */
  settleUnwritten?(state: StreamState, requests: W[]): W[];
  /** What the request adds to the key's stream, before its version is known. */
  entryOf(request: W): EntryToWrite;
  /**
   * The transaction actions writing one request, given its entry in the key's stream: that entry's
   * (its item, and its chunks when split) first. Throws for a request that cannot be written at all
   * (LimitExceededError): that request alone is refused.
   */
  writes(key: string, request: W, entry: EntryItem): TransactWriteItem[];
  /**
   * Decides a cancelled transaction: settles the requests that cannot succeed, brings the key's
   * state up to DynamoDB's head, and returns the requests to try again (or throws, rejecting all).
   * `writes[i]` are request i's actions, in the order the transaction had them.
   */
  afterCancelled(
    error: TransactionCanceledException,
    key: string,
    state: StreamState,
    requests: W[],
    writes: TransactWriteItem[][],
  ): Promise<W[]>;
  /** Settles a committed request; the key's state has already advanced past its entry. */
  committed(request: W, entry: EntryItem): void;
}

/**
 * Group commit, for appends (keyed by stream) and creates (keyed by parent) alike. Requests wait
 * per key; the key's write runs in its KeyedQueue, so requests arriving while a write is in flight
 * gather and share the next one, a transaction: many concurrent requests on one stream cost few
 * round trips. Alone, a request may be written without a transaction (an append: one PutItem).
 */
export class GroupCommit<W extends Waiting<Result>, Result> {
  /** Requests waiting for their key's next write, by key. */
  private readonly pending = new Map<string, W[]>();

  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
    private readonly writes: KeyedQueue,
    private readonly kind: GroupCommitKind<W, Result>,
  ) {}

  /** Queues a request for its key's next write. */
  submit(key: string, request: W): void {
    const waiting = this.pending.get(key) ?? [];
    waiting.push(request);
    this.pending.set(key, waiting);
    // void: writeNext settles each request it takes (a failed write rejects them) and does not
    // itself reject; callers wait on their request, not on the queue.
    void this.writes.run(key, () => this.writeNext(key));
  }

  /** Puts requests back at the front of their key's queue, for its next write. */
  private requeue(key: string, requests: W[]): void {
    const waiting = this.pending.get(key) ?? [];
    waiting.unshift(...requests);
    this.pending.set(key, waiting);
    // void: as in submit.
    void this.writes.run(key, () => this.writeNext(key));
  }

  /** Writes the next batch waiting on one key. Runs in the key's queue. */
  private async writeNext(key: string): Promise<void> {
    const waiting = this.pending.get(key);
    if (!waiting || waiting.length === 0) return;
    const batch = this.kind.takeBatch(waiting);
    if (waiting.length === 0) this.pending.delete(key);
    const [only] = batch;
    if (batch.length === 1 && only && this.kind.writeAlone) {
      await this.kind.writeAlone(only).then(only.resolve, only.reject);
      return;
    }
    try {
      await this.commit(key, batch);
    } catch (error) {
      for (const request of batch) request.reject(error);
    }
  }

  /** Writes a batch in one transaction at the key's next versions, settling each request. */
  private async commit(key: string, batch: W[]): Promise<void> {
    const state = await this.heads.streamState(key);
    if (!state) {
      for (const request of batch) request.reject(this.kind.missing(key, request));
      return;
    }
    let remaining = batch;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && remaining.length > 0; attempt++) {
      if (this.kind.settleUnwritten) remaining = this.kind.settleUnwritten(state, remaining);
      if (state.head.shredded) {
        for (const request of remaining) request.reject(new StreamShreddedError(key));
        return;
      }
      const built = this.build(key, state, remaining);
      if ('refused' in built) {
        // That request cannot be written at all: the others are numbered again without it.
        remaining[built.refused]?.reject(built.error);
        remaining = remaining.filter((_, i) => i !== built.refused);
        attempt--;
        continue;
      }
      const { entries, writes } = built;
      if (entries.length < remaining.length) {
        // The rest did not fit this transaction: back to the front of the queue, for the next write.
        this.requeue(key, remaining.slice(entries.length));
        remaining = remaining.slice(0, entries.length);
      }
      if (remaining.length === 0) return;
      try {
        await transact(this.context, writes.flat());
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        remaining = await this.kind.afterCancelled(error, key, state, remaining, writes);
        if (attempt > 0) await backoff(attempt);
        continue;
      }
      remaining.forEach((request, i) => {
        const entry = entries[i]!;
        state.advance(entry);
        this.kind.committed(request, entry);
      });
      return;
    }
    for (const request of remaining) request.reject(tooContended(key));
  }

  /**
   * The next transaction of a batch: each request's entry at the key's next version, in batch
   * order, and its actions, for as many requests as fit DynamoDB's 100 actions and 4 MB (at least
   * the first). The payloads of the requests after those are not built: they are built at their
   * own versions in the next write. Or the first request that no transaction can hold.
   */
  private build(
    key: string,
    state: StreamState,
    requests: W[],
  ): { entries: EntryItem[]; writes: TransactWriteItem[][] } | { refused: number; error: unknown } {
    const entries: EntryItem[] = [];
    const writes: TransactWriteItem[][] = [];
    let previous: EntryMeta = state.head;
    let items = 0;
    let bytes = 0;
    for (const [index, request] of requests.entries()) {
      let entry: EntryItem;
      let actions: TransactWriteItem[];
      let size: number;
      try {
        [entry] = nextEntries(key, previous, [this.kind.entryOf(request)]) as [EntryItem];
        actions = this.kind.writes(key, request, entry);
        size = actions.reduce((sum, action) => sum + transactItemSize(action), 0);
        if (actions.length > MAX_TRANSACTION_ITEMS || size > MAX_TRANSACTION_BYTES) throw payloadTooLarge(size);
      } catch (error) {
        return { refused: index, error };
      }
      if (index > 0 && (items + actions.length > MAX_TRANSACTION_ITEMS || bytes + size > MAX_TRANSACTION_BYTES)) break;
      items += actions.length;
      bytes += size;
      entries.push(entry);
      writes.push(actions);
      previous = entry;
    }
    return { entries, writes };
  }
}

/** One transaction: of a group commit, or of a sealed snapshot with its shred check. */
export async function transact(context: DynamoDbContext, items: TransactWriteItem[]): Promise<void> {
  await context.call(() =>
    context.client.send(
      new TransactWriteItemsCommand({
        TransactItems: items,
        // Makes the SDK's own retries of this attempt idempotent (DynamoDB keeps it 10 minutes).
        ClientRequestToken: randomUUID(),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    ),
  );
}
