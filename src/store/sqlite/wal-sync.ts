import fs from 'node:fs';
import path from 'node:path';

/** Called once the commits it waited for are on disk, or with the error that kept them off it. */
export type Synced = (error: Error | null) => void;

/**
 * Makes committed WAL frames durable off the event loop. SQLite commits with
 * `synchronous=NORMAL` (no fsync in the commit); this then fsyncs the WAL file on libuv's thread
 * pool and calls back the writers it covers. While one fsync runs, the event loop keeps taking
 * requests and committing them; every commit made meanwhile shares the next fsync. A WAL is
 * written in order, so an fsync makes every commit before it durable.
 */
export class WalSync {
  private fd: number | undefined;
  /** Callbacks of commits made since the running fsync started (or since the last one). */
  private waiting: Synced[] = [];
  /** Whether something was committed that no started fsync covers. */
  private dirty = false;
  private running: Synced[] | undefined;
  private closing = false;

  constructor(private readonly walFile: string) {}

  /** Call right after a commit: `synced` runs once that commit is on disk. */
  afterCommit(synced: Synced): void {
    this.dirty = true;
    this.waiting.push(synced);
    if (!this.running) this.start();
  }

  /** Whether some commit is not known to be on disk yet. */
  get pending(): boolean {
    return this.dirty || this.running !== undefined;
  }

  /** Resolves once everything committed so far is on disk (readers must not see less). */
  settled(): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done: Synced = (error) => (error ? reject(error) : resolve());
      if (this.dirty) this.waiting.push(done);
      else this.running?.push(done);
    });
  }

  /** Synchronously makes everything durable and calls every waiter (at close). */
  syncNow(): void {
    let error: Error | null = null;
    try {
      if (this.dirty) fs.fdatasyncSync(this.open());
    } catch (caught) {
      error = caught as Error;
    }
    const waiters = [...(this.running ?? []), ...this.waiting];
    // A running fsync keeps `running` set until it returns, so that close() waits for it.
    if (this.running) this.running = [];
    this.waiting = [];
    this.dirty = false;
    for (const synced of waiters) synced(error);
  }

  /** Closes the WAL file (after syncNow); waits for an fsync still running on the thread pool. */
  close(): void {
    this.closing = true;
    if (this.running === undefined && this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.dirty = false;
    this.running = batch;
    let fd: number;
    try {
      fd = this.open();
    } catch (error) {
      this.finish(batch, error as Error);
      return;
    }
    fs.fdatasync(fd, (error) => this.finish(batch, error));
  }

  private finish(batch: Synced[], error: Error | null): void {
    if (this.closing) {
      // syncNow() has answered everyone already.
      this.running = undefined;
      this.close();
      return;
    }
    this.running = undefined;
    // `batch` may have grown: readers that joined while it ran.
    for (const synced of batch) synced(error);
    if (this.waiting.length > 0) this.start();
  }

  private open(): number {
    if (this.fd === undefined) {
      this.fd = fs.openSync(this.walFile, 'r');
      // The WAL file's own directory entry must be durable too, once.
      const directory = fs.openSync(path.dirname(this.walFile), 'r');
      try {
        fs.fsyncSync(directory);
      } finally {
        fs.closeSync(directory);
      }
    }
    return this.fd;
  }
}
