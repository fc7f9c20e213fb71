import type { Version } from '../port';
import type { EntryItem } from './items';

/** What the cache keeps of an entry: everything but its payload, which can be 400 KB. */
export interface EntryMeta {
  version: Version;
  recordedAt: Date;
  bytesThrough: bigint;
  requestId?: string;
  /** The shred fence: the stream takes no more entries. */
  shredded?: boolean;
}

/** The entry without its payload. */
export function metaOf(entry: EntryItem | EntryMeta): EntryMeta {
  const meta: EntryMeta = { version: entry.version, recordedAt: entry.recordedAt, bytesThrough: entry.bytesThrough };
  if (entry.requestId !== undefined) meta.requestId = entry.requestId;
  if (entry.shredded) meta.shredded = true;
  return meta;
}

/** Where an earlier append with a request id was committed. */
export interface CommittedRequest {
  version: Version;
  recordedAt: Date;
}

/**
 * What this replica knows of one stream: its head (never ahead of the truth, because heads only
 * grow and it is only set from items read or written) and the request ids of the entries of a
 * contiguous range of versions ending at the head.
 *
 * Knowing every request id of the range `[knownFrom, head]` is what makes one conditional PutItem
 * enough for an idempotent append: a retry whose original is in that range is answered locally,
 * and a retry whose original is past the head makes the PutItem at head + 1 fail and shows the
 * item there, so the range grows up to it.
 */
export class StreamState {
  /** Request id → where it was committed, for the entries of versions `knownFrom..head`. */
  private readonly requests = new Map<string, CommittedRequest>();
  /** The same request ids in version order, to forget the oldest. */
  private readonly order: Array<{ version: Version; requestId: string }> = [];
  private knownFrom: Version;

  head: EntryMeta;

  constructor(
    head: EntryItem | EntryMeta,
    /** How many of the newest entries' request ids are remembered (the idempotency window). */
    private readonly window: number,
  ) {
    this.head = metaOf(head);
    this.knownFrom = head.version;
    this.remember(head);
  }

  /** The first version whose request id is known; 0 means all of them are. */
  get firstKnownVersion(): Version {
    return this.knownFrom;
  }

  /** Whether request ids are known for as many of the newest entries as the window promises. */
  get windowComplete(): boolean {
    return this.knownFrom === 0n || this.head.version - this.knownFrom + 1n >= BigInt(this.window);
  }

  /** Where `requestId` was committed, when it is one of the known entries. */
  find(requestId: string): CommittedRequest | undefined {
    return this.requests.get(requestId);
  }

  /** Records the entry right after the head (written here, or learned from DynamoDB). */
  advance(entry: EntryItem | EntryMeta): void {
    if (entry.version !== this.head.version + 1n) {
      throw new Error(`stream cache: entry ${entry.version} does not follow head ${this.head.version}`);
    }
    this.head = metaOf(entry);
    this.remember(entry);
    this.forgetOld();
  }

  /** Forgets everything and starts again from `entry` as the head (after falling far behind). */
  resetTo(entry: EntryItem | EntryMeta): void {
    this.requests.clear();
    this.order.length = 0;
    this.head = metaOf(entry);
    this.knownFrom = entry.version;
    this.remember(entry);
  }

  /**
   * Records entries older than the known range, newest first, each right before the range
   * (filling the window after a cold start).
   */
  prependOlder(entry: EntryItem | EntryMeta): void {
    if (entry.version !== this.knownFrom - 1n) {
      throw new Error(`stream cache: entry ${entry.version} does not precede ${this.knownFrom}`);
    }
    this.knownFrom = entry.version;
    if (entry.requestId !== undefined && !this.requests.has(entry.requestId)) {
      this.requests.set(entry.requestId, { version: entry.version, recordedAt: entry.recordedAt });
      this.order.unshift({ version: entry.version, requestId: entry.requestId });
    }
  }

  private remember(entry: EntryItem | EntryMeta): void {
    if (entry.requestId === undefined) return;
    this.requests.set(entry.requestId, { version: entry.version, recordedAt: entry.recordedAt });
    this.order.push({ version: entry.version, requestId: entry.requestId });
  }

  private forgetOld(): void {
    const oldestKept = this.head.version - BigInt(this.window) + 1n;
    if (this.knownFrom >= oldestKept) return;
    this.knownFrom = oldestKept;
    while (this.order.length > 0 && (this.order[0]?.version ?? 0n) < oldestKept) {
      const dropped = this.order.shift();
      if (dropped && this.requests.get(dropped.requestId)?.version === dropped.version) {
        this.requests.delete(dropped.requestId);
      }
    }
  }
}
