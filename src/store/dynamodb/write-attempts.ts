import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../../core/errors';
import type { PayloadAt } from '../port';
import type { EntryItem } from './items';
import type { EntryMeta } from './stream-cache';

/** Write attempts for one append or create under contention from other replicas. */
export const MAX_WRITE_ATTEMPTS = 30;

/** What a write reports after MAX_WRITE_ATTEMPTS lost races. */
export function tooContended(stream: string): StoreUnavailableError {
  return new StoreUnavailableError(`stream ${stream} is too contended right now; retry later`);
}

/** Full jitter: a random wait up to an exponentially growing cap (10 ms, 20 ms, ... 1 s). */
export function backoff(attempt: number): Promise<void> {
  const cap = Math.min(1000, 10 * 2 ** attempt);
  return sleep(Math.random() * cap);
}

/** What one entry about to be written is made of, before its version is known. */
export interface EntryToWrite {
  payload: PayloadAt;
  recordedAt: Date;
  requestId?: string;
}

/** Entries at the versions after `head`, in order, each payload built for its own version. */
export function nextEntries(stream: string, head: EntryMeta, writes: EntryToWrite[]): EntryItem[] {
  let previous = head;
  return writes.map((write) => {
    const version = previous.version + 1n;
    const payload = write.payload(version);
    const entry: EntryItem = {
      stream,
      version,
      payload,
      recordedAt: write.recordedAt,
      bytesThrough: previous.bytesThrough + BigInt(payload.byteLength),
      ...(write.requestId !== undefined ? { requestId: write.requestId } : {}),
    };
    previous = entry;
    return entry;
  });
}
