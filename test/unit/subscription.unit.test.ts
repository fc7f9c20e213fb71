import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SubscribeResponse, type Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { BATCH_BYTES, encodeEntryMessage, serializeSubscribeResponse, type Encoded, type OutgoingSubscribeMessage } from '../../src/codec/encoded-messages';
import { CallAbandonedError } from '../../src/core/errors';
import { Hub, type CallWriter, type LiveEntry } from '../../src/realtime/hub';
import { Lifetime } from '../../src/realtime/lifetime';
import { subscription } from '../../src/realtime/subscription';

const STREAM = '/orders';

/** One promise and its resolver, for holding a read until the test lets it go. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A stream's stored entries in memory, read a page at a time like the service's readPage.
 * `append` commits then publishes to the hub, in that order, as the service does; a read can be
 * held (`holdNextRead`) to race appends against it, or failed (`failNextRead`).
 */
class FakeLog {
  readonly entries: LiveEntry[] = [];
  /** The `fromVersion` of every read, in order. */
  readonly reads: bigint[] = [];
  private held: Array<{ snapshotAt: 'call' | 'release'; gate: Promise<void>; started: () => void }> = [];
  private failure: Error | undefined;
  private hanging: (() => void) | undefined;

  constructor(private readonly hub: Hub, private readonly pageSize = 2) {}

  /** Stores the next entry without publishing it: an entry the feed never saw. */
  store(): bigint {
    const version = BigInt(this.entries.length);
    this.entries.push(liveEntry(version));
    return version;
  }

  /** Stores the next entry, with one event of `dataBytes` bytes, without publishing it. */
  storeEntry(dataBytes: number): bigint {
    const version = BigInt(this.entries.length);
    const event = { id: 'e', type: 't', data: Buffer.alloc(dataBytes), contentType: 'application/octet-stream', metadata: {}, occurredAt: undefined };
    this.entries.push({ version, message: encodeEntryMessage({ ...entryAt(version), events: [event] }) });
    return version;
  }

  /** Stores then publishes the next entry, as an append through the service does. */
  append(): bigint {
    const version = this.store();
    this.hub.publish(STREAM, entryAt(version));
    return version;
  }

  /**
   * Holds the next read until the returned release is called; `started` resolves once the read was
   * called. The page is taken when the read is called ('call', the read saw the store before
   * later appends) or when released ('release', it saw them).
   */
  holdNextRead(snapshotAt: 'call' | 'release'): { started: Promise<void>; release: () => void } {
    const gate = deferred();
    const started = deferred();
    this.held.push({ snapshotAt, gate: gate.promise, started: () => started.resolve() });
    return { started: started.promise, release: () => gate.resolve() };
  }

  /**
   * The next read never returns on its own, like a DynamoDB read that hangs: it stops with
   * CallAbandonedError when the signal of the lifetime it was given fires, as the store's does.
   * Resolves once the read was called.
   */
  hangNextRead(): Promise<void> {
    const started = deferred();
    this.hanging = () => started.resolve();
    return started.promise;
  }

  failNextRead(error: Error): void {
    this.failure = error;
  }

  readonly readPage = async (fromVersion: bigint, lifetime?: Lifetime): Promise<{ entries: LiveEntry[]; more: boolean }> => {
    this.reads.push(fromVersion);
    const hanging = this.hanging;
    if (hanging) {
      this.hanging = undefined;
      hanging();
      const signal = lifetime?.signal();
      return new Promise((_, reject) =>
        signal?.addEventListener('abort', () => reject(new CallAbandonedError()), { once: true }),
      );
    }
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    const hold = this.held.shift();
    if (!hold) return this.page(fromVersion);
    const early = this.page(fromVersion);
    hold.started();
    await hold.gate;
    return hold.snapshotAt === 'call' ? early : this.page(fromVersion);
  };

  private page(fromVersion: bigint): { entries: LiveEntry[]; more: boolean } {
    const from = Number(fromVersion);
    const entries = this.entries.slice(from, from + this.pageSize);
    return { entries, more: from + this.pageSize < this.entries.length };
  }
}

function entryAt(version: bigint): Entry {
  return { version, events: [], recordedAt: new Date(1_764_000_000_000 + Number(version)) };
}

function liveEntry(version: bigint): LiveEntry {
  return { version, message: encodeEntryMessage(entryAt(version)) };
}

/** A message as a user of the API sees it: `entry 3`, `caughtUp 2`, `heartbeat`. */
function describeMessage(message: OutgoingSubscribeMessage): string {
  const decoded = SubscribeResponse.decode(serializeSubscribeResponse(message)).message;
  switch (decoded?.$case) {
    case 'entry':
      return `entry ${decoded.value.version}`;
    case 'caughtUp':
      return `caughtUp ${decoded.value.version}`;
    case 'heartbeat':
      return 'heartbeat';
    case 'entries':
      return `entries ${decoded.value.entries.map((entry) => entry.version).join(' ')}`;
    default:
      return `unexpected ${JSON.stringify(decoded)}`;
  }
}

/**
 * A subscriber's call as the service gives it to the subscription: the hub writes live entries to
 * it, and the consumer (as serveStream) writes each message it pulls. It takes `capacity` messages,
 * then needs draining (write answers false, as grpc-js's call past its high-water mark).
 */
class FakeCall implements CallWriter {
  readonly written: OutgoingSubscribeMessage[] = [];
  capacity = Number.POSITIVE_INFINITY;
  private sinceDrain = 0;
  private needDrain = false;
  private waiters: Array<() => void> = [];

  write(message: OutgoingSubscribeMessage): boolean {
    this.written.push(message);
    if (++this.sinceDrain >= this.capacity) this.needDrain = true;
    return !this.needDrain;
  }

  get blocked(): boolean {
    return this.needDrain;
  }

  drained(): Promise<void> {
    return this.needDrain ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }

  /** The client read everything. */
  drain(): void {
    this.sinceDrain = 0;
    this.needDrain = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** What the client received, described one entry at a time. */
  received(): string[] {
    return this.written.flatMap((message) => flatten(describeMessage(message)));
  }
}

function entries(...versions: number[]): string[] {
  return versions.map((v) => `entry ${v}`);
}

/** A described message one entry at a time: `entries 3 4` is `entry 3`, `entry 4`. */
function flatten(described: string): string[] {
  return described.startsWith('entries ') ? described.slice('entries '.length).split(' ').map((v) => `entry ${v}`) : [described];
}

describe('subscription()', () => {
  let hub: Hub;
  let log: FakeLog;
  let lifetime: Lifetime;

  beforeEach(() => {
    hub = new Hub();
    log = new FakeLog(hub);
    lifetime = new Lifetime();
  });

  function subscribe(options: { fromVersion?: bigint; bufferEntries?: number; heartbeatIntervalMs?: number; maxEntriesPerMessage?: number } = {}) {
    const messages = subscription({
      stream: STREAM,
      fromVersion: options.fromVersion ?? 0n,
      hub,
      readPage: log.readPage,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
      bufferEntries: options.bufferEntries ?? 100,
      lifetime,
      ...(options.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: options.maxEntriesPerMessage } : {}),
    });
    /** The next `count` messages, described. */
    async function take(count: number): Promise<string[]> {
      const taken: string[] = [];
      while (taken.length < count) {
        const next = await messages.next();
        if (next.done) throw new Error(`the subscription ended after ${JSON.stringify(taken)}`);
        taken.push(describeMessage(next.value));
      }
      return taken;
    }
    return { messages, take };
  }

  it('delivers stored entries from fromVersion across pages, then caught_up at the last one, then live entries', async () => {
    for (let i = 0; i < 5; i++) log.store();
    const { messages, take } = subscribe({ fromVersion: 1n });
    assert.deepEqual(await take(5), [...entries(1, 2, 3, 4), 'caughtUp 4']);
    assert.deepEqual(log.reads, [1n, 3n], 'paged reads, each from the next version');
    log.append();
    log.append();
    assert.deepEqual(await take(2), entries(5, 6));
    assert.equal(log.reads.length, 2, 'live entries come from the feed, not the store');
    await messages.return(undefined);
  });

  it('says caught_up at fromVersion - 1 when nothing is stored from there', async () => {
    for (let i = 0; i < 3; i++) log.store();
    const { messages, take } = subscribe({ fromVersion: 3n });
    assert.deepEqual(await take(1), ['caughtUp 2']);
    log.append();
    assert.deepEqual(await take(1), entries(3));
    await messages.return(undefined);
  });

  for (const snapshotAt of ['call', 'release'] as const) {
    const seen = snapshotAt === 'call' ? 'does not see it' : 'sees it';
    it(`delivers an append racing the catch-up read once, without a gap, when the read ${seen}`, async () => {
      log.store();
      log.store();
      const hold = log.holdNextRead(snapshotAt);
      const { messages, take } = subscribe();
      const pending = take(4);
      await hold.started;
      log.append(); // version 2, committed and published while the catch-up read is in flight
      hold.release();
      assert.deepEqual(
        await pending,
        snapshotAt === 'call'
          ? [...entries(0, 1), 'caughtUp 1', 'entry 2'] // from the feed
          : [...entries(0, 1, 2), 'caughtUp 2'], // from the store
      );
      log.append();
      assert.deepEqual(await take(1), entries(3), 'entry 2 was not delivered twice');
      await messages.return(undefined);
    });
  }

  it('delivers every entry once, in order, after the bounded feed overflowed behind a slow consumer', async () => {
    log.store();
    const { messages, take } = subscribe({ bufferEntries: 3 });
    assert.deepEqual(await take(2), ['entry 0', 'caughtUp 0']);
    // The consumer does not pull: ten appends overflow a feed of three.
    for (let i = 0; i < 10; i++) log.append();
    assert.equal(hub.largestBacklog(), 0, 'the overflowed feed dropped its queue');
    const readsBefore = log.reads.length;
    assert.deepEqual(await take(10), entries(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    assert.ok(log.reads.length > readsBefore, 'the missed entries came from the store');
    log.append();
    assert.deepEqual(await take(1), entries(11), 'live again after the re-read');
    await messages.return(undefined);
  });

  it('does not deliver twice what the re-read after an overflow already read and the feed also got', async () => {
    log.store();
    const { messages, take } = subscribe({ bufferEntries: 3 });
    assert.deepEqual(await take(2), ['entry 0', 'caughtUp 0']);
    for (let i = 0; i < 4; i++) log.append(); // overflows the feed of three
    // The re-read after the overflow sees entries appended while it was in flight; the reset feed
    // gets them too.
    const hold = log.holdNextRead('release');
    const pending = take(6);
    await hold.started;
    log.append();
    log.append();
    hold.release();
    assert.deepEqual(await pending, entries(1, 2, 3, 4, 5, 6));
    assert.equal(hub.largestBacklog(), 2, 'entries 5 and 6 wait in the feed, already delivered');
    log.append();
    assert.deepEqual(await take(1), entries(7), 'the next message is the next append, not a duplicate');
    await messages.return(undefined);
  });

  it('fills a gap from the store when the feed brings a version past the next one', async () => {
    log.store();
    const { messages, take } = subscribe();
    assert.deepEqual(await take(2), ['entry 0', 'caughtUp 0']);
    log.store(); // version 1: committed, never published here (another replica's append, say)
    log.append(); // version 2, published
    const readsBefore = log.reads.length;
    assert.deepEqual(await take(2), entries(1, 2));
    assert.deepEqual(log.reads.slice(readsBefore, readsBefore + 1), [1n], 'read from the missing version');
    log.append();
    assert.deepEqual(await take(1), entries(3), 'entry 2 was not delivered twice');
    await messages.return(undefined);
  });

  it('ends when the lifetime ends during a catch-up read, delivering nothing more, and leaves the hub', async () => {
    log.store();
    log.store();
    const hold = log.holdNextRead('call');
    const { messages } = subscribe();
    const next = messages.next();
    await hold.started;
    assert.equal(hub.subscriberCount(), 1, 'registered before the read');
    lifetime.end();
    hold.release();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(hub.subscriberCount(), 0);
    assert.deepEqual([...hub.subscribedStreams()], []);
  });

  it('ends when the lifetime ends during a catch-up read that hangs: the read stops, the subscription leaves the hub', async () => {
    const started = log.hangNextRead();
    const { messages } = subscribe();
    const next = messages.next();
    await started;
    assert.equal(hub.subscriberCount(), 1, 'registered before the read');
    lifetime.end();
    // Quietly: the read stopped because the subscription ended, which is no failure.
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(hub.subscriberCount(), 0);
  });

  it('ends when the lifetime ends while waiting for a live entry, and leaves the hub', async () => {
    log.store();
    const { messages, take } = subscribe();
    assert.deepEqual(await take(2), ['entry 0', 'caughtUp 0']);
    const next = messages.next();
    lifetime.end();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.deepEqual([...hub.subscribedStreams()], []);
  });

  it('leaves the hub when the consumer stops pulling (return), as the service does on break', async () => {
    log.store();
    const { messages, take } = subscribe();
    await take(2);
    assert.equal(hub.subscriberCount(), 1);
    await messages.return(undefined);
    assert.equal(hub.subscriberCount(), 0);
  });

  it('throws a store error met mid-catch-up to the consumer, and leaves the hub', async () => {
    for (let i = 0; i < 5; i++) log.store();
    const { take } = subscribe();
    assert.deepEqual(await take(2), entries(0, 1));
    const failure = new Error('store unavailable');
    log.failNextRead(failure);
    await assert.rejects(take(1), (error) => error === failure);
    assert.equal(hub.subscriberCount(), 0);
    assert.deepEqual([...hub.subscribedStreams()], []);
  });

  it('sends heartbeats while idle, and entries as they come', async () => {
    log.store();
    const { messages, take } = subscribe({ heartbeatIntervalMs: 5 });
    assert.deepEqual(await take(4), ['entry 0', 'caughtUp 0', 'heartbeat', 'heartbeat']);
    log.append();
    assert.deepEqual(await take(1), entries(1));
    await messages.return(undefined);
  });

  describe('in batches (maxEntriesPerMessage)', () => {
    /** Takes messages until `count` items came (a batch counts its entries), described one per entry. */
    async function takeItems(messages: AsyncGenerator<OutgoingSubscribeMessage>, count: number): Promise<string[]> {
      const taken: string[] = [];
      while (taken.length < count) {
        const next = await messages.next();
        if (next.done) throw new Error(`the subscription ended after ${JSON.stringify(taken)}`);
        taken.push(...flatten(describeMessage(next.value)));
      }
      return taken;
    }

    it('sends the entries of each page in batches of at most maxEntriesPerMessage, then caught_up, then queued live entries together and a lone one as entry', async () => {
      log = new FakeLog(hub, 5);
      for (let i = 0; i < 8; i++) log.store();
      const { messages, take } = subscribe({ maxEntriesPerMessage: 3 });
      assert.deepEqual(await take(4), ['entries 0 1 2', 'entries 3 4', 'entries 5 6 7', 'caughtUp 7']);
      assert.deepEqual(log.reads, [0n, 5n]);
      // Live entries queued while the consumer does not pull leave together.
      for (let i = 0; i < 4; i++) log.append();
      assert.deepEqual(await take(2), ['entries 8 9 10', 'entry 11']);
      log.append();
      assert.deepEqual(await take(1), ['entry 12'], 'an entry ready alone is an entry message');
      assert.equal(log.reads.length, 2, 'live entries come from the feed');
      await messages.return(undefined);
    });

    it('sends one entry per message with maxEntriesPerMessage 1, as without it', async () => {
      log = new FakeLog(hub, 5);
      for (let i = 0; i < 3; i++) log.store();
      const { messages, take } = subscribe({ maxEntriesPerMessage: 1 });
      assert.deepEqual(await take(4), [...entries(0, 1, 2), 'caughtUp 2']);
      log.append();
      log.append();
      assert.deepEqual(await take(2), entries(3, 4));
      await messages.return(undefined);
    });

    it('stops a batch before BATCH_BYTES, and sends a larger entry alone', async () => {
      log = new FakeLog(hub, 10);
      // Three entries of a little under half the budget, one over it, two small ones.
      for (const size of [0.45, 0.45, 0.45, 1.2, 0, 0]) log.storeEntry(Math.floor(size * BATCH_BYTES));
      const { messages } = subscribe({ maxEntriesPerMessage: 100 });
      const sent: string[] = [];
      for (let next = await messages.next(); !next.done; next = await messages.next()) {
        const message = next.value as Encoded;
        const described = describeMessage(message);
        sent.push(described);
        if (described.startsWith('entries')) assert.ok(message.bytes.byteLength <= BATCH_BYTES + 8, `a batch of ${message.bytes.byteLength} bytes`);
        if (described.startsWith('caughtUp')) break;
      }
      assert.deepEqual(sent, ['entries 0 1', 'entry 2', 'entry 3', 'entries 4 5', 'caughtUp 5']);
      await messages.return(undefined);
    });

    for (const snapshotAt of ['call', 'release'] as const) {
      const seen = snapshotAt === 'call' ? 'does not see it' : 'sees it';
      it(`delivers an append racing the catch-up read once, without a gap, when the read ${seen}`, async () => {
        log = new FakeLog(hub, 10);
        for (let i = 0; i < 3; i++) log.store();
        const hold = log.holdNextRead(snapshotAt);
        const { messages } = subscribe({ maxEntriesPerMessage: 10 });
        const pending = takeItems(messages, 6);
        await hold.started;
        log.append(); // version 3, committed and published while the catch-up read is in flight
        log.append(); // version 4
        hold.release();
        assert.deepEqual(
          await pending,
          snapshotAt === 'call'
            ? [...entries(0, 1, 2), 'caughtUp 2', ...entries(3, 4)] // from the feed
            : [...entries(0, 1, 2, 3, 4), 'caughtUp 4'], // from the store
        );
        log.append();
        assert.deepEqual(await takeItems(messages, 1), entries(5), 'entries 3 and 4 were not delivered twice');
        await messages.return(undefined);
      });
    }

    it('delivers every entry once and in order whatever the appends, unpublished entries, overflows and pulls', async () => {
      // An operation: append (committed and published), store (committed, never published: a gap
      // the feed shows later), or pull (the consumer takes that many messages).
      const operation = fc.oneof(
        { weight: 6, arbitrary: fc.constant({ kind: 'append' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'store' as const }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('pull' as const), messages: fc.integer({ min: 1, max: 4 }) }) },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 6 }),
          fc.array(operation, { maxLength: 60 }),
          fc.integer({ min: 2, max: 5 }),
          fc.integer({ min: 2, max: 5 }),
          async (stored, operations, maxEntriesPerMessage, bufferEntries) => {
            hub = new Hub();
            log = new FakeLog(hub, 3);
            lifetime = new Lifetime();
            for (let i = 0; i < stored; i++) log.store();
            const { messages } = subscribe({ maxEntriesPerMessage, bufferEntries });
            const delivered: bigint[] = [];
            let caughtUps = 0;
            // A pull takes a message that is ready, or leaves the wait for the next pull: an entry
            // committed but not published comes only once a later one is.
            let waiting: Promise<IteratorResult<OutgoingSubscribeMessage>> | undefined;
            const pull = async () => {
              waiting ??= messages.next();
              const next = await Promise.race([waiting, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
              if (!next) return;
              waiting = undefined;
              assert.ok(!next.done);
              const decoded = SubscribeResponse.decode(serializeSubscribeResponse(next.value)).message;
              if (decoded?.$case === 'entry') delivered.push(decoded.value.version);
              else if (decoded?.$case === 'entries') {
                assert.ok(decoded.value.entries.length >= 2 && decoded.value.entries.length <= maxEntriesPerMessage);
                delivered.push(...decoded.value.entries.map((entry) => entry.version));
              } else if (decoded?.$case === 'caughtUp') caughtUps++;
            };
            await pull(); // the catch-up starts: the feed is registered
            for (const op of operations) {
              if (op.kind === 'append') log.append();
              else if (op.kind === 'store') log.store();
              else for (let i = 0; i < op.messages; i++) await pull();
            }
            const last = log.append(); // published: whatever is missing before it is read from the store
            while (delivered[delivered.length - 1] !== last || caughtUps === 0) await pull();
            assert.deepEqual(delivered, log.entries.map((entry) => entry.version));
            assert.equal(caughtUps, 1);
            await messages.return(undefined);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  it('sends no heartbeat when an entry arrives within the interval', async () => {
    log.store();
    const { messages, take } = subscribe({ heartbeatIntervalMs: 60_000 });
    assert.deepEqual(await take(2), ['entry 0', 'caughtUp 0']);
    const next = take(1);
    setTimeout(() => log.append(), 5);
    assert.deepEqual(await next, entries(1));
    await messages.return(undefined);
  });

  describe('with the call it is written to (the hub writes live entries to an idle subscriber)', () => {
    let call: FakeCall;

    beforeEach(() => {
      call = new FakeCall();
    });

    function subscribeWriting(options: { bufferEntries?: number; heartbeatIntervalMs?: number; maxEntriesPerMessage?: number } = {}) {
      const messages = subscription({
        stream: STREAM,
        fromVersion: 0n,
        hub,
        readPage: log.readPage,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
        bufferEntries: options.bufferEntries ?? 100,
        lifetime,
        writer: call,
        ...(options.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: options.maxEntriesPerMessage } : {}),
      });
      /**
       * As serveStream: takes the next message if it is ready, writes it to the call, and takes
       * nothing while the call needs draining. Resolves false when no message was ready.
       */
      let waiting: Promise<IteratorResult<OutgoingSubscribeMessage>> | undefined;
      async function pull(): Promise<boolean> {
        if (call.blocked) {
          await new Promise((resolve) => setImmediate(resolve));
          return false;
        }
        waiting ??= messages.next();
        const next = await Promise.race([waiting, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
        if (!next) return false;
        waiting = undefined;
        assert.ok(!next.done, 'the subscription ended');
        call.write(next.value);
        return true;
      }
      /** Ends it as the service does on cancel: a pull may be waiting. */
      async function end(): Promise<void> {
        lifetime.end();
        await messages.return(undefined);
      }
      return { messages, pull, end };
    }

    it('writes live entries and heartbeats to the call, with no message pulled', async () => {
      log.store();
      const { pull, end } = subscribeWriting({ heartbeatIntervalMs: 30 });
      while (call.written.length < 2) await pull();
      assert.deepEqual(call.received(), ['entry 0', 'caughtUp 0']);
      assert.equal(await pull(), false, 'waits idle: the hub writes what comes');
      log.append();
      log.append();
      assert.deepEqual(call.received(), [...entries(0), 'caughtUp 0', ...entries(1, 2)], 'written at publish');
      // Heartbeats too, an interval after the last message, while the subscriber stays idle.
      const heartbeats = () => call.received().filter((message) => message === 'heartbeat').length;
      while (heartbeats() < 2) assert.equal(await pull(), false, 'no message pulled: the hub wrote the heartbeat');
      assert.deepEqual(call.received(), [...entries(0), 'caughtUp 0', ...entries(1, 2), 'heartbeat', 'heartbeat']);
      log.append();
      assert.deepEqual(call.received().slice(-1), entries(3));
      assert.deepEqual(log.reads, [0n], 'live entries came from the hub, not the store');
      await end();
      log.append();
      assert.deepEqual(call.received().slice(-1), entries(3), 'nothing is written once the subscription ended');
    });

    it('reads a gap from the store through the subscription, then writes from the hub again', async () => {
      const { pull, end } = subscribeWriting();
      await pull(); // $stream.started is not stored here: caughtUp -1
      log.append(); // 0, written by the hub
      log.store(); // 1, never published
      log.append(); // 2: a gap, the subscription reads 1 and 2 from the store
      while (call.written.length < 4) await pull();
      assert.equal(await pull(), false, 'waits idle again');
      log.append(); // 3, written by the hub
      assert.deepEqual(call.received(), ['caughtUp -1', ...entries(0, 1, 2, 3)]);
      await end();
    });

    it('stops writing from the hub when the call is full, waits for it to drain, and delivers the rest once, in order', async () => {
      const { pull, end } = subscribeWriting({ bufferEntries: 3 });
      await pull();
      assert.equal(await pull(), false, 'waits idle');
      call.capacity = 3; // the call takes two more messages, the second of which fills it
      log.append(); // 0
      log.append(); // 1: the call is full now
      for (let i = 0; i < 6; i++) log.append(); // 2-7: queued for the subscription, which overflows
      assert.equal(await pull(), false, 'nothing is taken while the call needs draining');
      assert.deepEqual(call.received(), ['caughtUp -1', ...entries(0, 1)]);
      call.capacity = Number.POSITIVE_INFINITY;
      call.drain();
      while (call.received().length < 9) await pull();
      assert.equal(log.reads[1], 2n, 'what the feed dropped was read from the store');
      assert.equal(await pull(), false, 'waits idle again');
      log.append(); // 8, from the hub again once the subscription waits idle
      assert.deepEqual(call.received(), ['caughtUp -1', ...entries(0, 1, 2, 3, 4, 5, 6, 7, 8)]);
      await end();
    });

    it('ends with the error a write to its call throws, leaving the publisher and the other subscribers alone', async () => {
      const { messages } = subscribeWriting();
      const otherCall = new FakeCall();
      const otherLifetime = new Lifetime();
      const other = subscription({
        stream: STREAM, fromVersion: 0n, hub, readPage: log.readPage, heartbeatIntervalMs: 60_000, bufferEntries: 100,
        lifetime: otherLifetime, writer: otherCall,
      });
      otherCall.write((await other.next()).value as OutgoingSubscribeMessage); // caughtUp
      const otherNext = other.next(); // waits idle
      call.write((await messages.next()).value as OutgoingSubscribeMessage); // caughtUp
      const ending = messages.next(); // waits idle
      await new Promise((resolve) => setImmediate(resolve));
      const broken = new Error('the call is broken');
      call.write = () => {
        throw broken;
      };
      assert.doesNotThrow(() => log.append(), 'the append is not the subscriber\'s failure');
      await assert.rejects(ending, (error) => error === broken, 'the subscription ends with the error');
      assert.deepEqual(otherCall.received(), ['caughtUp -1', ...entries(0)], 'the other subscriber got the entry');
      assert.equal(hub.subscriberCount(), 1, 'the failed subscription left the hub');
      otherLifetime.end();
      await otherNext;
      assert.equal(hub.subscriberCount(), 0);
    });

    it('delivers every entry once and in order whatever the appends, unpublished entries, full calls and pulls', async () => {
      const operation = fc.oneof(
        { weight: 6, arbitrary: fc.constant({ kind: 'append' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'store' as const }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('pull' as const), messages: fc.integer({ min: 1, max: 4 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('fill' as const), capacity: fc.integer({ min: 1, max: 4 }) }) },
        { weight: 2, arbitrary: fc.constant({ kind: 'drain' as const }) },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 6 }),
          fc.array(operation, { maxLength: 60 }),
          fc.integer({ min: 1, max: 5 }),
          fc.integer({ min: 2, max: 5 }),
          async (stored, operations, maxEntriesPerMessage, bufferEntries) => {
            hub = new Hub();
            log = new FakeLog(hub, 3);
            lifetime = new Lifetime();
            call = new FakeCall();
            for (let i = 0; i < stored; i++) log.store();
            const { pull, end } = subscribeWriting({ maxEntriesPerMessage, bufferEntries });
            await pull(); // the catch-up starts: the feed is registered
            for (const op of operations) {
              if (op.kind === 'append') log.append();
              else if (op.kind === 'store') log.store();
              else if (op.kind === 'fill') call.capacity = op.capacity;
              else if (op.kind === 'drain') call.drain();
              else for (let i = 0; i < op.messages; i++) await pull();
            }
            call.capacity = Number.POSITIVE_INFINITY;
            call.drain();
            const last = log.append(); // published: whatever is missing before it is read from the store
            const expected = [...log.entries.map((entry) => `entry ${entry.version}`)];
            const isEntry = (described: string) => described.startsWith('entry ');
            for (let pulls = 0; call.received().filter(isEntry).at(-1) !== `entry ${last}` || !call.received().some((d) => d.startsWith('caughtUp')); pulls++) {
              assert.ok(pulls < 1000, `stuck after ${JSON.stringify(call.received())}`);
              await pull();
            }
            const received = call.received();
            assert.deepEqual(received.filter(isEntry), expected);
            assert.equal(received.filter((d) => d.startsWith('caughtUp')).length, 1);
            const caughtUpAt = received.findIndex((d) => d.startsWith('caughtUp'));
            const caughtUpVersion = Number(received[caughtUpAt]?.slice('caughtUp '.length));
            assert.ok(caughtUpVersion >= stored - 1, 'caught up at least at the head when the subscription began');
            assert.deepEqual(received.slice(0, caughtUpAt), expected.slice(0, caughtUpVersion + 1), 'caught up after the entries up to it');
            await end();
          },
        ),
        { numRuns: 200 },
      );
    });
  });
});
