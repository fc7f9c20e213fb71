/**
 * Read models over many streams: state folded from the feed of a subtree, kept together with the
 * feed position it includes, so that a restarted process resumes exactly after what its state
 * already holds.
 */
import type { EventHorizon } from './client';
import type { Event, FeedEntry } from './gen/eventhorizon/v1/eventhorizon';
import type { FollowOptions } from './feed';
import { MarkWaiters, startLiveLoop, type LiveLoop } from './live-loop';

/** How a subtree read model folds events into state. */
export interface SubtreeModel<State> {
  /**
   * The event types `apply` is given: the server filters the feed to them ("order.*" forms
   * allowed). Empty: every event.
   */
  readonly handles: readonly string[];
  /** The state before any entry. */
  initialState(): State;
  /** The state after one event (return a new state or the mutated one). */
  apply(state: State, event: Event, entry: FeedEntry): State;
}

/**
 * Where a subtree reader keeps its state and position, in one write: the read model's own
 * database, typically (a row with the state's tables, or a document). Saving both together is
 * what makes a restart exact: the position never says more, or less, than the state holds.
 */
export interface PositionStore<State> {
  load(): Promise<{ state: State; position: bigint } | undefined>;
  save(state: State, position: bigint): Promise<void>;
}

/** A PositionStore in memory: for tests, and read models rebuilt from the feed at each start. */
export function memoryPositionStore<State>(): PositionStore<State> & { saved: { state: State; position: bigint } | undefined } {
  const store = {
    saved: undefined as { state: State; position: bigint } | undefined,
    load: () => Promise.resolve(store.saved),
    save(state: State, position: bigint) {
      store.saved = { state, position };
      return Promise.resolve();
    },
  };
  return store;
}

/** Options of a SubtreeReader. */
export interface SubtreeReaderOptions<State> {
  /** Where state and position are kept (default: in memory, so every start reads the whole feed). */
  store?: PositionStore<State>;
  /** Save after the position moved this many times (entries and checkpoints; default 100; 0: only at caught-up and stop). */
  saveEvery?: number;
  /** Following settings: only the stream itself, reconnection, checkpoints. */
  follow?: Omit<FollowOptions, 'afterPosition' | 'fromNow' | 'eventTypes' | 'signal'>;
  /** Told when saving failed; the reader carries on (the next save may succeed). */
  onSaveError?: (error: unknown) => void;
}

/**
 * Holds one read model over a subtree. `start()` loads the saved state and position, follows the
 * feed after it and resolves once caught up; the state then stays live until `stop()`.
 */
export class SubtreeReader<State> {
  private currentState: State;
  private currentPosition = 0n;
  private savedPosition = 0n;
  private moves = 0;
  private live: LiveLoop | undefined;
  private hasCaughtUp = false;
  private readonly waiters = new MarkWaiters();
  private readonly store: PositionStore<State>;

  constructor(
    private readonly client: EventHorizon,
    /** The subtree's root: "/" for every stream. */
    readonly subtree: string,
    private readonly model: SubtreeModel<State>,
    private readonly options: SubtreeReaderOptions<State> = {},
  ) {
    this.currentState = model.initialState();
    this.store = options.store ?? memoryPositionStore<State>();
  }

  get state(): State {
    return this.currentState;
  }

  /** The feed position the state includes everything up to. */
  get position(): bigint {
    return this.currentPosition;
  }

  get caughtUp(): boolean {
    return this.hasCaughtUp;
  }

  /** Loads, follows, and resolves once caught up; rejects if that fails first. */
  start(): Promise<void> {
    if (this.live) throw new Error(`the reader of ${this.subtree} is already started`);
    const saveEvery = this.options.saveEvery ?? 100;
    const { loop, ready } = startLiveLoop(
      async (signal, caughtUp) => {
        const saved = await this.store.load();
        if (saved) {
          this.currentState = saved.state;
          this.currentPosition = this.savedPosition = saved.position;
        }
        const items = this.client.follow(this.subtree, {
          ...this.options.follow,
          afterPosition: this.currentPosition,
          eventTypes: [...this.model.handles],
          signal,
        });
        for await (const item of items) {
          if (item.kind === 'entry') {
            let state = this.currentState;
            for (const event of item.entry.events) state = this.model.apply(state, event, item.entry);
            this.currentState = state;
          }
          this.moveTo(item.kind === 'entry' ? item.entry.position : item.position);
          if (item.kind === 'caughtUp') {
            this.hasCaughtUp = true;
            await this.save();
            caughtUp();
          } else if (saveEvery > 0 && this.moves >= saveEvery) {
            await this.save();
          }
        }
      },
      (error) => this.waiters.fail(error),
    );
    this.live = loop;
    return ready;
  }

  /** Stops following, saves, and waits for the end; pending `waitForPosition`s reject. */
  async stop(): Promise<void> {
    const live = this.live;
    if (!live) return;
    await live.stop();
    this.live = undefined;
    this.hasCaughtUp = false;
    await this.save();
    this.waiters.rejectAll(new Error(`the reader of ${this.subtree} was stopped`));
  }

  /** Resolves once the state includes the feed up to `position` (read-your-writes over the feed). */
  waitForPosition(position: bigint): Promise<void> {
    return this.waiters.wait(this.currentPosition, position);
  }

  private moveTo(position: bigint): void {
    if (position <= this.currentPosition) return;
    this.currentPosition = position;
    this.moves++;
    this.waiters.reached(position);
  }

  private async save(): Promise<void> {
    if (this.currentPosition === this.savedPosition) return;
    const position = this.currentPosition;
    try {
      await this.store.save(this.currentState, position);
      this.savedPosition = position;
      this.moves = 0;
    } catch (error) {
      this.options.onSaveError?.(error);
    }
  }
}
