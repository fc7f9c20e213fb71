import type { TransactionCanceledException, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError, ParentNotFoundError, StoreUnavailableError, StreamAlreadyExistsError } from '../../core/errors';
import type { CreateStreamCommand, CreateStreamResult } from '../port';
import { cancellationReasons } from './aws-errors';
import { entryWrites } from './chunks';
import type { DynamoDbContext } from './context';
import { GroupCommit, type GroupCommitKind, type Waiting } from './group-commit';
import { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, readEntryItem, transactItemSize, type EntryItem } from './items';
import type { KeyedQueue } from './keyed-queue';
import { StreamState } from './stream-cache';
import type { StreamHeads } from './stream-heads';
import { ChildAttr } from './tables';

/** A CreateStream waiting for its parent's next transaction. */
interface PendingCreate extends Waiting<CreateStreamResult> {
  command: CreateStreamCommand;
  /** The child's entry 0, and entry 1 with initial events. */
  started: EntryItem;
  initial?: EntryItem;
  /** The transaction actions writing the child's entries (their items, and chunks when split). */
  childWrites: TransactWriteItem[];
}

/**
 * The part of a create each of its transaction items writes: the parent's entry item, a child's
 * entry item, or something without a condition (chunks, the children item).
 */
type CreatePart = 'parent' | 'child' | 'other';

/**
 * CreateStream: the child's entries, the parent's `child-created` entry and the children item, in
 * one transaction. Creates go through the parent's queue (the `child-created` entries take the
 * parent's next versions): while one transaction is in flight the next creates gather, so many
 * concurrent creates under one parent cost few round trips (group commit).
 */
export class Creates {
  private readonly groupCommit: GroupCommit<PendingCreate, CreateStreamResult>;

  constructor(
    private readonly context: DynamoDbContext,
    private readonly heads: StreamHeads,
    writes: KeyedQueue,
  ) {
    this.groupCommit = new GroupCommit(context, heads, writes, this.kind());
  }

  createStream(command: CreateStreamCommand): Promise<CreateStreamResult> {
    const { stream, recordedAt } = command;
    const started: EntryItem = {
      stream,
      version: 0n,
      payload: command.startedPayload,
      recordedAt,
      bytesThrough: BigInt(command.startedPayload.byteLength),
    };
    const initial: EntryItem | undefined = command.initialPayload && {
      stream,
      version: 1n,
      payload: command.initialPayload,
      recordedAt,
      bytesThrough: started.bytesThrough + BigInt(command.initialPayload.byteLength),
    };
    let childWrites: TransactWriteItem[];
    try {
      childWrites = [...entryWrites(this.context.tables, started), ...(initial ? entryWrites(this.context.tables, initial) : [])];
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.groupCommit.submit(command.parent, {
        command,
        started,
        ...(initial ? { initial } : {}),
        childWrites,
        resolve,
        reject,
      });
    });
  }

  /** How the group commit writes creates, keyed by their parent. */
  private kind(): GroupCommitKind<PendingCreate, CreateStreamResult> {
    const { context, heads } = this;
    return {
      takeBatch: takeCreateBatch,
      missing: (parent, create) => new ParentNotFoundError(create.command.stream, parent),
      entryOf: ({ command }) => ({ payload: command.childCreatedPayload, recordedAt: command.recordedAt }),
      // The parent's entry first (its condition failing says where the parent's head went), the
      // child's entries, each on condition that it is not there yet, and the children item.
      writes: (parent, create, parentEntry) => [
        ...entryWrites(context.tables, parentEntry),
        ...create.childWrites,
        {
          Put: {
            TableName: context.tables.children,
            Item: { [ChildAttr.parent]: { S: parent }, [ChildAttr.child]: { S: create.command.stream } },
          },
        },
      ],
      afterCancelled: (error, parent, parentState, creates, writes) =>
        this.afterCancelledCreate(error, parent, parentState, creates, writes),
      committed: (create, parentEntry) => {
        const childState = new StreamState(create.started, heads.window);
        if (create.initial) childState.advance(create.initial);
        heads.remember(create.command.stream, childState);
        create.resolve({ headVersion: create.initial ? 1n : 0n, parentVersion: parentEntry.version });
      },
    };
  }

  /**
   * Decides what a cancelled CreateStream transaction means: rejects the creates that cannot
   * succeed (the child exists, the request is invalid), refreshes the parent's head, and returns
   * the creates to try again.
   */
  private async afterCancelledCreate(
    error: TransactionCanceledException,
    parent: string,
    parentState: StreamState,
    creates: PendingCreate[],
    writes: TransactWriteItem[][],
  ): Promise<PendingCreate[]> {
    const reasons = cancellationReasons(error);
    const failed = new Set<number>();
    if (!reasons) {
      // DynamoDB may leave the reasons out: find out by reading.
      const existing = await Promise.all(creates.map((create) => this.heads.exists(create.command.stream)));
      existing.forEach((exists, i) => exists && failed.add(i));
    } else {
      if (reasons.some((r) => r.code === 'validation')) {
        const invalid = new InvalidArgumentError([
          { field: 'stream', description: 'was refused by the storage backend' },
        ]);
        for (const create of creates) create.reject(invalid);
        return [];
      }
      if (reasons.every((r) => r.code === 'other')) {
        const refused = new StoreUnavailableError('the storage backend refused the write; retry later', {
          cause: error,
        });
        for (const create of creates) create.reject(refused);
        return [];
      }
      /** Which create each transaction item belongs to, and what part of it it writes. */
      const owners = writes.flatMap((actions, i) =>
        actions.map((action, j): { create: number; part: CreatePart } => ({
          create: i,
          part: j === 0 ? 'parent' : action.Put?.TableName === this.context.tables.events ? 'child' : 'other',
        })),
      );
      reasons.forEach((reason, index) => {
        const owner = owners[index];
        if (owner?.part === 'child' && reason.code === 'condition') failed.add(owner.create);
      });
      // The first parent entry tells where the parent's head went, when another writer got there.
      const first = reasons[0];
      if (first?.code === 'condition' && first.item) {
        const found = readEntryItem(first.item);
        if (found.version === parentState.head.version + 1n) parentState.advance(found);
      }
    }
    for (const index of failed) creates[index]?.reject(new StreamAlreadyExistsError(creates[index].command.stream));
    // The parent may have moved on (another replica appended or created), or transactions conflicted.
    await this.heads.catchUp(parent, parentState);
    return creates.filter((_, i) => !failed.has(i));
  }
}

/**
 * Takes the creates of the next transaction off the front of the queue: as many as fit its item
 * and size limits, each child path once (a transaction cannot write one item twice).
 */
function takeCreateBatch(waiting: PendingCreate[]): PendingCreate[] {
  const batch: PendingCreate[] = [];
  const paths = new Set<string>();
  let items = 0;
  let bytes = 0;
  for (let i = 0; i < waiting.length;) {
    const create = waiting[i]!;
    // The parent's entry and the children item are small (a path, a system event).
    const size = create.childWrites.reduce((sum, action) => sum + transactItemSize(action), 0) + 2048;
    const count = create.childWrites.length + 2;
    const fits =
      batch.length === 0 || (items + count <= MAX_TRANSACTION_ITEMS && bytes + size <= MAX_TRANSACTION_BYTES);
    if (!fits) break;
    if (paths.has(create.command.stream)) {
      i++; // the same path again: the next transaction decides it
      continue;
    }
    paths.add(create.command.stream);
    batch.push(create);
    waiting.splice(i, 1);
    items += count;
    bytes += size;
  }
  return batch;
}
