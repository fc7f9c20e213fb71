import { status } from '@grpc/grpc-js';
import type { Entry, Event } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { Connection } from './connection';
import { TargetConflictError, isServiceError } from './exit-codes';

/** Entries per read while matching the target stream against the file. */
const READ_PAGE = 1000;

/** What importing one entry did. */
export type ImportOutcome = 'written' | 'skipped';

/**
 * Imports the entries of one stream, in file order, so that a resumed import neither skips nor
 * repeats one, whatever the store's idempotency window (DynamoDB recognises a request id only
 * among the newest entries of a stream).
 *
 * The file's entries are matched, one by one, against the user entries already in the target
 * stream (server-written `$` entries are left aside, as export leaves them out): an entry that
 * is there (same event ids and types, in the same place) is skipped, a different one is a
 * TargetConflictError. Once the target has no more, each entry is appended with
 * `expected_version` set to the head this importer saw, so nothing can be written twice, nor
 * after something it did not see.
 */
export class StreamImporter {
  /** Target entries read but not matched yet. */
  private pending: Entry[] = [];
  /** Where the next read of the target starts. */
  private readFrom = 0n;
  /** Whether every stored entry of the target has been read (some may still be pending). */
  private readAll = false;
  /** Whether every user entry of the target has been matched: from then on, entries are appended. */
  private appending = false;
  /** The target's head version as this importer knows it. */
  private head = -1n;

  constructor(
    private readonly api: Connection,
    readonly stream: string,
  ) {}

  async import(events: Event[], requestId: string): Promise<ImportOutcome> {
    if (!this.appending) {
      const existing = await this.nextUserEntry();
      if (existing) {
        if (!sameEvents(existing.events, events)) throw this.conflict(existing, events);
        return 'skipped';
      }
      this.appending = true;
    }
    for (;;) {
      try {
        // The request id still guards a retry after a lost reply within the window; the
        // expected version is what makes resumption exact.
        const result = await this.api.append({ stream: this.stream, events, expectedVersion: this.head, requestId });
        this.head = result.cursor?.version ?? this.head + 1n;
        return result.deduplicated ? 'skipped' : 'written';
      } catch (error) {
        if (!(isServiceError(error) && error.code === status.ABORTED)) throw error;
        // Someone wrote after the head seen: creating a child stream writes a
        // $stream.child-created entry, which is expected; so is this very entry when an earlier
        // attempt committed. A head that did not move is not a conflict this can resolve.
        const head = this.head;
        if (await this.advancePast(events)) return 'written';
        if (this.head === head) throw error;
      }
    }
  }

  /** The next user entry of the target, or undefined when the target has no more. */
  private async nextUserEntry(): Promise<Entry | undefined> {
    for (;;) {
      const entry = this.pending.shift();
      if (entry) {
        this.head = entry.version;
        if (!isServerWritten(entry)) return entry;
        continue;
      }
      if (this.readAll) return undefined;
      const page = await this.api.read({ stream: this.stream, fromVersion: this.readFrom, limit: READ_PAGE });
      this.pending = page.entries;
      const last = page.entries[page.entries.length - 1];
      if (last) this.readFrom = last.version + 1n;
      if (!page.more || !last) this.readAll = true;
    }
  }

  /**
   * Reads the entries after the known head: server-written ones move the head on; `events`
   * itself means an earlier attempt committed (true); anything else is a conflict.
   */
  private async advancePast(events: Event[]): Promise<boolean> {
    for (;;) {
      const page = await this.api.read({ stream: this.stream, fromVersion: this.head + 1n, limit: READ_PAGE });
      for (const entry of page.entries) {
        if (isServerWritten(entry)) {
          this.head = entry.version;
          continue;
        }
        if (!sameEvents(entry.events, events)) throw this.conflict(entry, events);
        this.head = entry.version;
        return true;
      }
      if (!page.more || page.entries.length === 0) return false;
    }
  }

  private conflict(found: Entry, events: Event[]): TargetConflictError {
    const ids = (list: Event[]) => list.map((event) => event.id).join(',');
    return new TargetConflictError(
      `${this.stream} already holds other entries than the file: version ${found.version} has events [${ids(found.events)}] ` +
        `where the file has [${ids(events)}]; nothing more was imported into this stream`,
    );
  }
}

/** Entries only the server writes ($stream.started, $stream.child-created): export leaves them out. */
export function isServerWritten(entry: Entry): boolean {
  return entry.events.every((event) => event.type.startsWith('$'));
}

/** The same events: ids are kept by import, and the type guards against reused ids. */
function sameEvents(stored: Event[], events: Event[]): boolean {
  return stored.length === events.length && stored.every((event, i) => event.id === events[i]?.id && event.type === events[i]?.type);
}
