import type { Logger } from 'pino';
import type { Codecs, StreamCodec } from '../codec/stream-codec';
import type { EventStoreCore } from '../core/event-store-core';
import { StreamAlreadyExistsError, StreamShreddedError } from '../core/errors';
import { systemEvent } from '../core/system-events';
import type { EventStore, StoredEntry } from '../store/port';
import { SYSTEM_ROOT } from '../model/stream-path';
import { AuthRegistry, type AuthEvent } from './registry';

/** The system stream of keys and policies. The public API refuses every path under `/$`. */
export const AUTH_STREAM = '/$/auth';
const PAGE = 500;

/** The store and codecs that auth events are read with (encrypted when at-rest encryption is on); an EventStoreCore is one. */
export interface AuthStore {
  store: EventStore;
  codecs: Codecs;
}

/** Creates `/$` and `/$/auth` through the core when missing. */
export async function ensureAuthStream(core: EventStoreCore): Promise<void> {
  for (const stream of [SYSTEM_ROOT, AUTH_STREAM]) {
    if (await core.store.describe(stream)) continue;
    try {
      await core.createStream(stream, [], { requestId: undefined, createParents: false });
    } catch (error) {
      if (!(error instanceof StreamAlreadyExistsError)) throw error;
    }
  }
}

/** Appends one auth event (creating the stream when needed). */
export async function appendAuthEvent(core: EventStoreCore, event: AuthEvent): Promise<void> {
  await ensureAuthStream(core);
  await core.append(AUTH_STREAM, [systemEvent(event.type, event.data)], undefined, undefined);
}

/**
 * Keeps an `AuthRegistry` current with the `/$/auth` stream: reads it whole at start, then polls
 * its head and applies new entries. Polling (not the in-process hub) because keys are managed by
 * the `eventhorizon auth` command, another process writing the same store.
 */
export class AuthStreamFollower {
  readonly registry = new AuthRegistry();
  private nextVersion = 0n;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private shreddedReported = false;
  /** The refresh running or last run: refreshes run one after the other (see `refresh`). */
  private refreshing: Promise<void> = Promise.resolve();
  private readonly changeListeners: Array<() => void> = [];
  /** Entries were applied since the listeners were last told. */
  private changed = false;

  constructor(private readonly source: AuthStore, private readonly intervalMs: number, private readonly logger: Logger) {}

  /** Calls `listener` after each refresh that applied new auth events (keys or policies changed). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  /** Reads everything so far, then follows. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * Applies the entries written since the last refresh, then tells the listeners if there were
   * any. A refresh asked for while one runs (`refreshAuth` next to the timer) waits for it: two
   * at once would both apply the same entries, and an older page applied after a newer one
   * could undo a revocation.
   */
  refresh(): Promise<void> {
    // Told even when the refresh failed half-way: what it applied is in force.
    const run = this.refreshing.then(() => this.applyNewEntries()).finally(() => this.announceChanges());
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  private announceChanges(): void {
    if (!this.changed) return;
    this.changed = false;
    for (const listener of this.changeListeners) listener();
  }

  /** Applies the entries written since the last refresh. */
  private async applyNewEntries(): Promise<void> {
    const { store, codecs } = this.source;
    const info = await store.describe(AUTH_STREAM);
    if (!info || info.headVersion < this.nextVersion) return;
    try {
      for (;;) {
        const page = await store.read(AUTH_STREAM, {
          fromVersion: this.nextVersion,
          direction: 'forward',
          limit: PAGE,
          maxBytes: 4 * 1024 * 1024,
        });
        // As every read does: an entry under a DEK version newer than the cached keys (the key
        // was rotated by another replica or by `eventhorizon`) reloads them, rather than failing
        // every refresh until the key cache expires.
        const codec = await codecs.forReading(AUTH_STREAM, page.entries.map((stored) => stored.payload));
        this.applyPage(codec, page.entries);
        if (!page.more || page.entries.length === 0) break;
      }
    } catch (error) {
      if (!(error instanceof StreamShreddedError)) throw error;
      // Older servers let it be shredded. That must not stop the start (only dropping the
      // keyring would bring the server back): it serves with the keys it has, none after a
      // start, so every call is refused; it says why, once.
      if (!this.shreddedReported) this.logger.error(`${AUTH_STREAM} was shredded: keys and policies cannot be read`);
      this.shreddedReported = true;
    }
  }

  private applyPage(codec: StreamCodec, entries: StoredEntry[]): void {
    for (const stored of entries) {
      for (const event of codec.decodeEntry(stored).events) {
        try {
          this.registry.apply({ type: event.type, data: JSON.parse(Buffer.from(event.data).toString('utf8')) });
        } catch (error) {
          this.logger.error({ err: error, version: stored.version.toString() }, 'skipping unreadable auth event');
        }
      }
      this.nextVersion = stored.version + 1n;
      this.changed = true;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.refresh()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'could not refresh keys and policies'))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}
