import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ReadResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { appendAuthEvent, AUTH_STREAM } from '../../src/auth/auth-stream';
import { AUTH_EVENTS } from '../../src/auth/registry';
import { DEFAULT_CONFIG } from '../../src/config/config';
import { StreamAlreadyExistsError, StreamNotShreddableError, EncryptionDisabledError } from '../../src/core/errors';
import { CHILD_CREATED, STREAM_STARTED } from '../../src/core/system-events';
import { CallAbandonedError } from '../../src/core/errors';
import { Lifetime } from '../../src/realtime/lifetime';
import { createStore } from '../../src/store/factory';
import type { EventStore, ReadPage, ReadQuery } from '../../src/store/port';
import { openEventStore, type OpenedEventStore } from '../../src/wiring';
import { tempDir } from '../helpers/server';
import { abortSignalOf } from '../../src/core/call-signal';

/** The core on its own: no gRPC server, as the CLI and a future feed use it. */
describe('EventStoreCore without a transport', () => {
  let dataDir: string;
  let opened: OpenedEventStore;

  beforeEach(async () => {
    dataDir = tempDir('eh-core-');
    opened = await openEventStore({ ...DEFAULT_CONFIG, dataDir });
  });

  afterEach(async () => {
    await opened.store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const event = (type: string) => ({
    id: crypto.randomUUID(),
    type,
    data: Buffer.from('{}'),
    contentType: 'application/json',
    metadata: {},
    occurredAt: undefined,
  });

  it('creates parents, and recognises a retried create by its request id', async () => {
    const { core } = opened;
    const first = await core.createStream('/a/b', [event('one')], { requestId: 'r-1', createParents: true });
    assert.deepEqual(first, { head: { stream: '/a/b', version: 1n }, created: ['/a', '/a/b'], deduplicated: false });
    const retried = await core.createStream('/a/b', [event('one')], { requestId: 'r-1', createParents: true });
    assert.deepEqual(retried, { head: { stream: '/a/b', version: 1n }, created: ['/a', '/a/b'], deduplicated: true });
    await assert.rejects(core.createStream('/a/b', [], { requestId: 'r-2', createParents: false }), StreamAlreadyExistsError);
    const page = await core.read('/a', undefined, 'forward', 10);
    assert.deepEqual(page.entries.map((entry) => entry.events[0]?.type), [STREAM_STARTED, CHILD_CREATED]);
  });

  it('appends, publishes to the hub, and reads back', async () => {
    const { core, hub } = opened;
    await core.createStream('/s', [], { requestId: undefined, createParents: false });
    const feed = hub.register('/s', 10);
    const appended = await core.append('/s', [event('x')], 0n, undefined);
    assert.deepEqual(appended, { cursor: { stream: '/s', version: 1n }, deduplicated: false });
    assert.equal(feed.shift()?.version, 1n);
    const page = await core.read('/s', undefined, 'backward', 1);
    assert.equal(page.entries[0]?.events[0]?.type, 'x');
    assert.equal(page.headVersion, 1n);
  });

  it('serializes a Read page from the stored events exactly as encoding the decoded page does, bounds included', async () => {
    const { core } = opened;
    await core.createStream('/r', [], { requestId: undefined, createParents: false });
    const withData = (data: string) => ({ ...event('x'), data: Buffer.from(JSON.stringify({ data })), metadata: { k: data.slice(0, 3) } });
    // Small entries (stored as they are), compressible ones, and 1 MiB ones that the 3 MiB
    // decoded bound splits across pages although they are small when stored.
    for (let i = 0; i < 6; i++) await core.append('/r', [withData(`${i}`)], undefined, undefined);
    for (let i = 0; i < 4; i++) await core.append('/r', [withData('y'.repeat(2000)), withData(`${i}`)], undefined, undefined);
    for (let i = 0; i < 5; i++) await core.append('/r', [withData('z'.repeat(1 << 20))], undefined, undefined);
    for (const [from, direction, limit] of [
      [undefined, 'forward', 100],
      [3n, 'forward', 4],
      [11n, 'forward', 100],
      [undefined, 'backward', 100],
      [4n, 'backward', 10],
      [0n, 'backward', 1],
      [100n, 'forward', 10],
    ] as const) {
      const viaObjects = Buffer.from(ReadResponse.encode(await core.read('/r', from, direction, limit)).finish());
      const serialized = await core.readEncoded('/r', from, direction, limit);
      assert.deepEqual(serialized.bytes, viaObjects, `from ${from} ${direction}, limit ${limit}`);
    }
    const bounded = ReadResponse.decode((await core.readEncoded('/r', 11n, 'forward', 100)).bytes);
    assert.deepEqual(bounded.entries.map((entry) => entry.version), [11n, 12n], 'two 1 MiB entries, not a third past 3 MiB');
    assert.equal(bounded.more, true);
    assert.equal(bounded.nextVersion, 13n);
  });

  it('writes the auth stream through the core, and hides system streams from the root', async () => {
    const { core } = opened;
    await appendAuthEvent(core, { type: AUTH_EVENTS.policyRemoved, data: { principal: 'p' } });
    assert.equal((await core.store.describe(AUTH_STREAM))?.headVersion, 1n);
    assert.equal((await core.describe('/')).childCount, 0n);
    assert.deepEqual(await core.listChildren('/', undefined, 10), { children: [], more: false });
  });

  it('refuses to shred the root, and key operations without encryption', async () => {
    const { core } = opened;
    await assert.rejects(core.shredStream('/'), StreamNotShreddableError);
    await assert.rejects(core.rotateStreamKey('/'), EncryptionDisabledError);
  });
});

/** A subscription's catch-up read on a store whose reads can hang (the network) and stop. */
describe('EventStoreCore.subscribe with a hanging store read', () => {
  it('stops the catch-up read when the subscription ends, and the subscription leaves the hub', async () => {
    const dataDir = tempDir('eh-core-');
    const sqlite = createStore({ kind: 'sqlite', dataDir, dynamodb: DEFAULT_CONFIG.dynamodb });
    let hang = false;
    let readStarted!: () => void;
    const started = new Promise<void>((resolve) => (readStarted = resolve));
    // The SQLite store, with reads that hang once `hang` is set and stop on their signal, as
    // DynamoDB's do (abandonedReadsStop).
    const store = Object.create(sqlite, {
      features: { value: { ...sqlite.features, abandonedReadsStop: true } },
      read: {
        value: (stream: string, query: ReadQuery): Promise<ReadPage> => {
          if (!hang) return sqlite.read(stream, query);
          readStarted();
          return new Promise((_, reject) => {
            if (query.signal) abortSignalOf(query.signal).addEventListener('abort', () => reject(new CallAbandonedError()), { once: true });
          });
        },
      },
    }) as EventStore;
    const opened = await openEventStore({ ...DEFAULT_CONFIG, dataDir }, { store });
    try {
      const { core, hub } = opened;
      await core.createStream('/s', [], { requestId: undefined, createParents: false });
      hang = true;
      const lifetime = new Lifetime();
      const messages = core.subscribe('/s', 0n, lifetime)[Symbol.asyncIterator]();
      const next = messages.next();
      await started;
      assert.equal(hub.subscriberCount(), 1, 'registered before the read');
      lifetime.end();
      assert.deepEqual(await next, { done: true, value: undefined });
      assert.equal(hub.subscriberCount(), 0);
    } finally {
      await opened.store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
