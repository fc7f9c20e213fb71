import type { Logger } from 'pino';
import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { StreamNotFoundError, StreamShreddedError } from '../core/errors';
import type { EventStore, StoredEntry, Version } from '../store/port';
import type { Hub } from './hub';

/** What the tailer polls, where it publishes, and how often. */
export interface TailerOptions {
  store: EventStore;
  hub: Hub;
  /** Turns a stored entry into the API entry subscribers receive. */
  decode: (stream: string, stored: StoredEntry) => Promise<Entry>;
  logger: Logger;
  /** Longest wait between two polls of an idle stream (the configurable cap). */
  maxIntervalMs: number;
  /** Wait between polls of a stream that just had new entries (default 50 ms). */
  minIntervalMs?: number;
  /** Polls in flight at once, across all streams (default 32). */
  maxConcurrentPolls?: number;
  /** Time and timers (default: the real ones); tests pass a fake to count polls per tick. */
  clock?: TailerClock;
}

/** What the tailer needs of time: read once per tick and poll, not on any hot path. */
export interface TailerClock {
  now(): number;
  /** Calls `callback` after `ms` without keeping the process alive; returns what `cancel` takes. */
  schedule(callback: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

const REAL_CLOCK: TailerClock = {
  now: () => Date.now(),
  schedule: (callback, ms) => setTimeout(callback, ms).unref(),
  cancel: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/** What the tailer knows of one subscribed stream. */
interface TailState {
  /** The newest version published; undefined until the first poll. */
  last: Version | undefined;
  intervalMs: number;
  dueAt: number;
  polling: boolean;
}

/** Entries read per poll; a busier stream is polled again at once. */
const POLL_PAGE = 100;
const POLL_PAGE_BYTES = 1024 * 1024;
const LAST_VERSION = (1n << 63n) - 1n;

/**
 * Brings appends made by other replicas to this replica's subscribers.
 *
 * Local appends reach the hub at once; appends made elsewhere are only in the store. The tailer
 * polls the streams that have live subscribers here (and no others), each on its own adaptive
 * interval: back to the minimum when a poll finds something, doubling while idle, up to the
 * configured maximum. Each poll reads from the last version it published, inclusive, so an idle
 * stream costs one single-item read per poll and the page itself says where the head is.
 *
 * Subscriptions de-duplicate by version and fill gaps from the store, so the tailer may publish
 * an entry the service already published, or start from the head and skip older ones.
 */
export class Tailer {
  private readonly states = new Map<string, TailState>();
  private readonly minIntervalMs: number;
  private readonly maxConcurrentPolls: number;
  private inFlight = new Set<Promise<void>>();
  private readonly clock: TailerClock;
  private timer: unknown;
  private stopped = false;

  constructor(private readonly options: TailerOptions) {
    this.minIntervalMs = Math.min(options.minIntervalMs ?? 50, options.maxIntervalMs);
    this.maxConcurrentPolls = options.maxConcurrentPolls ?? 32;
    this.clock = options.clock ?? REAL_CLOCK;
  }

  start(): void {
    this.schedule();
  }

  /** Stops polling and waits for the polls in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.cancel(this.timer);
    await Promise.all(this.inFlight);
  }

  private schedule(): void {
    if (this.stopped) return;
    // Ticks at half the minimum interval, so a due stream waits at most that much longer.
    this.timer = this.clock.schedule(() => this.tick(), Math.max(5, this.minIntervalMs / 2));
  }

  private tick(): void {
    const now = this.clock.now();
    const subscribed = new Set(this.options.hub.subscribedStreams());
    for (const stream of this.states.keys()) {
      if (!subscribed.has(stream)) this.states.delete(stream);
    }
    for (const stream of subscribed) {
      let state = this.states.get(stream);
      if (!state) {
        state = { last: undefined, intervalMs: this.minIntervalMs, dueAt: now, polling: false };
        this.states.set(stream, state);
      }
      if (state.polling || state.dueAt > now) continue;
      if (this.inFlight.size >= this.maxConcurrentPolls) break;
      const poll = this.poll(stream, state).finally(() => this.inFlight.delete(poll));
      this.inFlight.add(poll);
    }
    this.schedule();
  }

  private async poll(stream: string, state: TailState): Promise<void> {
    state.polling = true;
    let found = false;
    let more = false;
    try {
      const page =
        state.last === undefined
          ? // First poll: only the head. Subscriptions read anything older from the store.
            await this.options.store.read(stream, {
              fromVersion: LAST_VERSION,
              direction: 'backward',
              limit: 1,
              maxBytes: POLL_PAGE_BYTES,
            })
          : await this.options.store.read(stream, {
              fromVersion: state.last,
              direction: 'forward',
              limit: POLL_PAGE,
              maxBytes: POLL_PAGE_BYTES,
            });
      for (const stored of page.entries) {
        if (state.last !== undefined && stored.version <= state.last) continue;
        state.last = stored.version;
        found = true;
        await this.publish(stream, stored);
      }
      more = page.more && state.last !== undefined;
      state.intervalMs = found ? this.minIntervalMs : Math.min(state.intervalMs * 2, this.options.maxIntervalMs);
    } catch (error) {
      if (error instanceof StreamShreddedError) {
        // Shredded (on this replica or another): its subscriptions here end with the error, and
        // the stream, no longer subscribed, is no longer polled.
        this.options.logger.info({ stream }, 'stream shredded: its subscriptions end');
        this.options.hub.close(stream, error);
        this.states.delete(stream);
        return;
      }
      // The store is unavailable (or the stream vanished): try again later, slowly.
      if (!(error instanceof StreamNotFoundError)) this.options.logger.warn({ err: error, stream }, 'tail poll failed');
      state.intervalMs = this.options.maxIntervalMs;
    } finally {
      state.polling = false;
      const now = this.clock.now();
      state.dueAt = more ? now : now + state.intervalMs;
    }
  }

  private async publish(stream: string, stored: StoredEntry): Promise<void> {
    let entry: Entry;
    try {
      entry = await this.options.decode(stream, stored);
    } catch (error) {
      // No keys any more: the poll ends the stream's subscriptions.
      if (error instanceof StreamShreddedError) throw error;
      // A subscriber reading it from the store gets the error; nothing to publish.
      this.options.logger.warn(
        { err: error, stream, version: stored.version.toString() },
        'cannot decode tailed entry',
      );
      return;
    }
    this.options.hub.publish(stream, entry);
  }
}
