import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Hub, type LiveFeed } from '../../src/realtime/hub';
import { Tailer, type TailerClock } from '../../src/realtime/tailer';
import { StreamNotFoundError } from '../../src/core/errors';
import type { EventStore, ReadPage, ReadQuery, StoredEntry } from '../../src/store/port';

/** Lets the promises of polls started by a tick run to their end (the fake store answers at once). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Time that moves only when the test says, running the timers due on the way. */
class FakeClock implements TailerClock {
  private time = 0;
  private timers: Array<{ at: number; callback: () => void }> = [];

  now(): number {
    return this.time;
  }

  schedule(callback: () => void, ms: number): unknown {
    const timer = { at: this.time + ms, callback };
    this.timers.push(timer);
    return timer;
  }

  cancel(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time on by `ms`, one timer at a time, letting each tick's polls finish. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.time = due.at;
      due.callback();
      await settle();
    }
    this.time = until;
  }
}

/**
 * The one thing Tailer calls on a store, read(), over in-memory streams; each read is recorded
 * with the fake time it was made at. A read can be made to fail or held until released.
 */
class FakeStore {
  readonly streams = new Map<string, StoredEntry[]>();
  readonly reads: Array<{ stream: string; at: number; query: ReadQuery }> = [];
  private failures: Error[] = [];
  private held: Promise<void> | undefined;

  constructor(private readonly clock: FakeClock) {}

  /** What Tailer takes: only read() exists, which is all Tailer calls. */
  asEventStore(): EventStore {
    return this as unknown as EventStore;
  }

  append(stream: string, count = 1): void {
    let entries = this.streams.get(stream);
    if (!entries) this.streams.set(stream, (entries = []));
    for (let i = 0; i < count; i++) {
      entries.push({ version: BigInt(entries.length), recordedAt: new Date(0), payload: new Uint8Array() });
    }
  }

  failNextRead(error: Error): void {
    this.failures.push(error);
  }

  /** Holds every read from now on until the returned release is called. */
  holdReads(): () => void {
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = undefined;
      release();
    };
  }

  readsOf(stream: string): number[] {
    return this.reads.filter((read) => read.stream === stream).map((read) => read.at);
  }

  async read(stream: string, query: ReadQuery): Promise<ReadPage> {
    this.reads.push({ stream, at: this.clock.now(), query });
    if (this.held) await this.held;
    const failure = this.failures.shift();
    if (failure) throw failure;
    const entries = this.streams.get(stream);
    if (!entries) throw new StreamNotFoundError(stream);
    const head = BigInt(entries.length - 1);
    if (query.direction === 'backward') {
      const from = Number(query.fromVersion > head ? head : query.fromVersion);
      const page = entries.slice(Math.max(0, from - query.limit + 1), from + 1).reverse();
      return { entries: page, more: from - page.length >= 0, headVersion: head };
    }
    const from = Number(query.fromVersion);
    const page = entries.slice(from, from + query.limit);
    return { entries: page, more: from + page.length < entries.length, headVersion: head };
  }
}

/** The versions the feed received, taking them. */
function drain(feed: LiveFeed): bigint[] {
  const versions: bigint[] = [];
  for (let entry = feed.shift(); entry; entry = feed.shift()) versions.push(entry.version);
  return versions;
}

describe('Tailer', () => {
  // The tailer ticks every minIntervalMs / 2 = 25 ms of fake time.
  const MIN = 50;
  const MAX = 400;
  let clock: FakeClock;
  let store: FakeStore;
  let hub: Hub;
  let logs: Array<{ msg: string; stream?: string }>;
  let tailer: Tailer;

  beforeEach(() => {
    clock = new FakeClock();
    store = new FakeStore(clock);
    hub = new Hub();
    logs = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line) as { msg: string }) });
    tailer = new Tailer({
      store: store.asEventStore(),
      hub,
      decode: async (_stream, stored): Promise<Entry> => ({ version: stored.version, events: [], recordedAt: stored.recordedAt }),
      logger,
      maxIntervalMs: MAX,
      minIntervalMs: MIN,
      clock,
    });
    tailer.start();
  });

  afterEach(async () => {
    await tailer.stop();
  });

  it('polls only the streams with live subscribers', async () => {
    store.append('/watched', 3);
    store.append('/unwatched', 3);
    hub.register('/watched', 100);
    await clock.advance(1000);
    assert.ok(store.readsOf('/watched').length > 0);
    assert.deepEqual(store.readsOf('/unwatched'), []);
  });

  it('publishes the head on the first poll, then each new entry once, in order', async () => {
    store.append('/s', 3);
    const feed = hub.register('/s', 1000);
    await clock.advance(25);
    assert.deepEqual(drain(feed), [2n], 'older entries are the subscriptions’ to read from the store');
    store.append('/s', 150); // more than a poll page: the next poll reads on at once
    await clock.advance(1000);
    assert.deepEqual(
      drain(feed),
      Array.from({ length: 150 }, (_, i) => BigInt(i + 3)),
    );
    await clock.advance(1000);
    assert.deepEqual(drain(feed), [], 'nothing published twice');
  });

  it('polls again soon after new entries and backs off to maxIntervalMs while idle', async () => {
    store.append('/s');
    hub.register('/s', 100);
    await clock.advance(1200);
    // First tick at 25 finds the head (interval back to 50), then idle: 100, 200, 400, 400.
    assert.deepEqual(store.readsOf('/s'), [25, 75, 175, 375, 775, 1175]);
    store.append('/s'); // at 1200, by another replica
    await clock.advance(600);
    // Found at 1575 (the idle stream's next poll): 50 later, then backing off again.
    assert.deepEqual(store.readsOf('/s').slice(6), [1575, 1625, 1725]);
  });

  it('reads on at once while a poll page says there is more', async () => {
    store.append('/s');
    hub.register('/s', 100);
    await clock.advance(25);
    store.append('/s', 250);
    await clock.advance(1000);
    // 50 ms after the first poll, then every tick (25 ms) while pages are full, then 50 ms.
    assert.deepEqual(store.readsOf('/s').slice(0, 6), [25, 75, 100, 125, 175, 275]);
  });

  it('stops polling a stream when its last subscriber leaves, and starts again from the head', async () => {
    store.append('/s', 2);
    const first = hub.register('/s', 100);
    const second = hub.register('/s', 100);
    await clock.advance(100);
    hub.unregister(first);
    const before = store.readsOf('/s').length;
    await clock.advance(1000);
    assert.ok(store.readsOf('/s').length > before, 'one subscriber still listens');
    hub.unregister(second);
    const after = store.readsOf('/s').length;
    await clock.advance(5000);
    assert.equal(store.readsOf('/s').length, after, 'no poll without subscribers');

    store.append('/s', 5);
    const again = hub.register('/s', 100);
    await clock.advance(25);
    assert.equal(store.reads.at(-1)?.query.direction, 'backward', 'a new start reads only the head');
    assert.deepEqual(drain(again), [6n]);
  });

  it('polls a missing stream at maxIntervalMs without logging, and tails it once it exists', async () => {
    const feed = hub.register('/later', 100);
    await clock.advance(1000);
    assert.deepEqual(store.readsOf('/later'), [25, 425, 825]);
    assert.deepEqual(logs, []);
    store.append('/later');
    await clock.advance(400);
    assert.deepEqual(store.readsOf('/later'), [25, 425, 825, 1225, 1275, 1375]);
    assert.deepEqual(drain(feed), [0n]);
  });

  it('logs a failed poll and retries it after maxIntervalMs, publishing what it missed', async () => {
    store.append('/s');
    const feed = hub.register('/s', 100);
    await clock.advance(25);
    assert.deepEqual(drain(feed), [0n]);
    store.failNextRead(new Error('throttled'));
    store.append('/s', 2);
    await clock.advance(50);
    assert.deepEqual(drain(feed), []);
    assert.deepEqual(
      logs.map((log) => [log.msg, log.stream]),
      [['tail poll failed', '/s']],
    );
    await clock.advance(MAX);
    assert.deepEqual(store.readsOf('/s'), [25, 75, 475]);
    assert.deepEqual(drain(feed), [1n, 2n]);
  });

  it('stop() waits for the polls in flight and schedules no more', async () => {
    store.append('/s');
    const feed = hub.register('/s', 100);
    const release = store.holdReads();
    await clock.advance(25);
    assert.equal(store.reads.length, 1, 'a poll is in flight');
    let stopped = false;
    const stopping = tailer.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop() waits for the poll');
    release();
    await stopping;
    assert.deepEqual(drain(feed), [0n], 'the poll in flight ran to its end');
    assert.equal(clock.pending, 0, 'no tick scheduled');
    await clock.advance(5000);
    assert.equal(store.reads.length, 1);
  });
});
