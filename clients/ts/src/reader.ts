/**
 * Read models: state folded from a stream's events, loaded from a snapshot plus the entries after
 * it, kept live by a subscription, snapshotted now and then, and used to decide new events with
 * optimistic concurrency (`transactWrite`).
 */
import type { CallSettings, EventHorizon } from './client';
import { ConflictError } from './errors';
import type { DeepPartial, Entry, Event } from './gen/eventhorizon/v1/eventhorizon';
import { MarkWaiters, startLiveLoop, type LiveLoop } from './live-loop';
import type { SubscribeOptions } from './subscription';

/** How a read model folds events into state and (de)serializes it for snapshots. */
export interface ReadModel<State> {
  /**
   * The snapshot perspective, e.g. "account-balance:v1". Change it whenever the state's shape or
   * meaning changes, so that old snapshots are not read as new ones.
   */
  readonly perspective: string;
  /** The event types `apply` is given; the reader skips the others (their versions still count). */
  readonly handles: readonly string[];
  /** The state of an empty stream. */
  initialState(): State;
  /** The state after one event (return a new state or the mutated one). */
  apply(state: State, event: Event, entry: Entry): State;
  /** Serializes the state for a snapshot. */
  encode(state: State): Uint8Array;
  /** Reads a snapshot written by `encode`. */
  decode(data: Uint8Array): State;
}

/** Options of a Reader. */
export interface ReaderOptions {
  /**
   * Store a snapshot once the state is this many versions past the stored one (default 100;
   * 0 never stores). Older snapshots never replace newer ones: the server keeps the newest.
   */
  snapshotEvery?: number;
  /** Reconnection settings of the live subscription. */
  subscribe?: Omit<SubscribeOptions, 'fromVersion' | 'signal'>;
  /** Told when storing a snapshot failed; the reader carries on (the next one may succeed). */
  onSnapshotError?: (error: unknown) => void;
  /** Settings of the reader's unary calls (deadline, metadata). */
  call?: Omit<CallSettings, 'signal'>;
}

/** What `transactWrite`'s decision function returns: the events to append, or none. */
export type Decision = DeepPartial<Event>[] | undefined;

/** Options of `transactWrite`. */
export interface TransactWriteOptions {
  /** Attempts before the last ConflictError is thrown (default 5). */
  maxAttempts?: number;
}

/** The outcome of `transactWrite`. */
export interface TransactWriteResult {
  /** Whether events were appended (false when the decision was to write nothing). */
  written: boolean;
  /** The version written, or the version the decision was made at when nothing was written. */
  version: bigint;
  /** How many times the decision was made (1 + the conflicts retried). */
  attempts: number;
}

/**
 * Holds one read model of one stream. `load()` builds it once; `start()` also keeps it live;
 * `transactWrite()` decides and appends new events against its current state.
 */
export class Reader<State> {
  private currentState: State;
  private currentVersion = -1n;
  private snapshotVersion = -1n;
  private readonly handled: ReadonlySet<string>;
  private readonly snapshotEvery: number;
  private live: LiveLoop | undefined;
  private readonly waiters = new MarkWaiters();
  private hasCaughtUp = false;
  /** The end of the last queued transactWrite: one reader's writes take turns. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: EventHorizon,
    /** The stream this reader folds. */
    readonly stream: string,
    private readonly model: ReadModel<State>,
    private readonly options: ReaderOptions = {},
  ) {
    this.currentState = model.initialState();
    this.handled = new Set(model.handles);
    this.snapshotEvery = options.snapshotEvery ?? 100;
  }

  /** The state as of `version`. Treat it as read-only. */
  get state(): State {
    return this.currentState;
  }

  /** The version of the last entry folded into `state` (-1 before any). */
  get version(): bigint {
    return this.currentVersion;
  }

  /** Whether the live subscription has delivered everything that was stored when it started. */
  get caughtUp(): boolean {
    return this.hasCaughtUp;
  }

  /**
   * Loads the state: the model's snapshot, if any, plus every entry after it (GetSnapshot with
   * entries_after, then Read for the rest); stores a newer snapshot when due.
   */
  async load(): Promise<void> {
    const response = await this.client.getSnapshot(
      { stream: this.stream, perspective: this.model.perspective, entriesAfter: true },
      this.options.call,
    );
    if (response.snapshot && response.snapshot.version > this.currentVersion) {
      this.currentState = this.model.decode(response.snapshot.data);
      this.currentVersion = response.snapshot.version;
      this.snapshotVersion = response.snapshot.version;
    }
    for (const entry of response.entries) this.fold(entry);
    if (response.more) await this.readFrom(response.nextVersion);
    await this.snapshotIfDue();
  }

  /** Folds whatever was appended since `version`, up to the current head. */
  async refresh(): Promise<void> {
    await this.readFrom(this.currentVersion + 1n);
  }

  /**
   * Loads, then keeps the state live with a subscription from the next version. Resolves once
   * the subscription has caught up; rejects if loading or the subscription fails first.
   */
  start(): Promise<void> {
    if (this.live) throw new Error(`the reader of ${this.stream} is already started`);
    const { loop, ready } = startLiveLoop(
      async (signal, caughtUp) => {
        await this.load();
        const items = this.client.subscribe(this.stream, {
          ...this.options.subscribe,
          fromVersion: this.currentVersion + 1n,
          signal,
        });
        for await (const item of items) {
          if (item.kind === 'caughtUp') {
            this.hasCaughtUp = true;
            caughtUp();
            continue;
          }
          this.fold(item.entry);
          await this.snapshotIfDue();
        }
      },
      (error) => this.waiters.fail(error),
    );
    this.live = loop;
    return ready;
  }

  /** Stops the live subscription and waits for it to end; pending `waitForVersion`s reject. */
  async stop(): Promise<void> {
    const live = this.live;
    if (!live) return;
    await live.stop();
    this.live = undefined;
    this.hasCaughtUp = false;
    this.waiters.rejectAll(new Error(`the reader of ${this.stream} was stopped`));
  }

  /**
   * Resolves once the state includes `version` (for read-your-writes after an append). Without a
   * live subscription nothing advances the state but `refresh()`, `load()` and `transactWrite()`.
   */
  waitForVersion(version: bigint): Promise<void> {
    return this.waiters.wait(this.currentVersion, version);
  }

  /**
   * Decides new events from the current state and appends them with `expectedVersion` set to the
   * state's version. When another writer got there first (ConflictError), it folds the new
   * entries and decides again, up to `maxAttempts` times; then the ConflictError is thrown.
   * `decide` may run several times, so it must not have side effects beyond returning events.
   * Calls on one reader run one after another, since they would only conflict with each other;
   * conflicts come from other processes.
   */
  transactWrite(
    decide: (state: State, version: bigint) => Decision | Promise<Decision>,
    options: TransactWriteOptions = {},
  ): Promise<TransactWriteResult> {
    const result = this.writes.then(() => this.decideAndAppend(decide, options));
    this.writes = result.catch(() => undefined);
    return result;
  }

  private async decideAndAppend(
    decide: (state: State, version: bigint) => Decision | Promise<Decision>,
    options: TransactWriteOptions,
  ): Promise<TransactWriteResult> {
    const maxAttempts = options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt += 1) {
      await this.refresh();
      const version = this.currentVersion;
      const events = await decide(this.currentState, version);
      if (!events || events.length === 0) return { written: false, version, attempts: attempt };
      try {
        const response = await this.client.append(
          { stream: this.stream, events, expectedVersion: version },
          this.options.call,
        );
        return { written: true, version: response.cursor?.version ?? version + 1n, attempts: attempt };
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= maxAttempts) throw error;
      }
    }
  }

  private async readFrom(fromVersion: bigint): Promise<void> {
    for await (const entry of this.client.readAll(this.stream, { ...this.options.call, fromVersion })) {
      this.fold(entry);
    }
  }

  /**
   * Folds one entry. Entries arrive from the snapshot load, reads and the live subscription,
   * possibly overlapping; each version is folded once, and only in order.
   */
  private fold(entry: Entry): void {
    if (entry.version <= this.currentVersion) return;
    if (entry.version !== this.currentVersion + 1n) {
      throw new Error(`${this.stream}: entry ${entry.version} arrived after ${this.currentVersion}`);
    }
    let state = this.currentState;
    for (const event of entry.events) {
      if (this.handled.has(event.type)) state = this.model.apply(state, event, entry);
    }
    this.currentState = state;
    this.currentVersion = entry.version;
    this.waiters.reached(entry.version);
  }

  private async snapshotIfDue(): Promise<void> {
    const due = this.snapshotEvery > 0 && this.currentVersion - this.snapshotVersion >= BigInt(this.snapshotEvery);
    if (!due) return;
    const version = this.currentVersion;
    const data = Buffer.from(this.model.encode(this.currentState));
    try {
      const response = await this.client.putSnapshot(
        { stream: this.stream, perspective: this.model.perspective, version, data },
        this.options.call,
      );
      this.snapshotVersion = response.storedVersion;
    } catch (error) {
      // A reader that cannot store snapshots still serves reads; it only loads slower next time.
      this.snapshotVersion = version;
      this.options.onSnapshotError?.(error);
    }
  }
}
