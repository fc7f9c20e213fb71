import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { maxStoredEntryBytes, maxStoredSnapshotBytes } from '../../src/codec/stored-size';
import { SubscribeResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Encoded } from '../../src/codec/encoded-messages';
import { DEFAULT_CONFIG, DEFAULT_LIMITS } from '../../src/config/config';
import type { EventStoreCore } from '../../src/core/event-store-core';
import { generateKeyring } from '../../src/crypto/keyring';
import { Lifetime } from '../../src/realtime/lifetime';
import { openEventStore } from '../../src/wiring';
import {
  CallAbandonedError,
  LimitExceededError,
  ParentNotFoundError,
  SnapshotAheadOfStreamError,
  StreamAlreadyExistsError,
  StoreUnavailableError,
  StreamNotFoundError,
  StreamShreddedError,
  WrongExpectedVersionError,
} from '../../src/core/errors';
import type { EventStore, ReadPage, ReadQuery } from '../../src/store/port';

/** Whether one of a method's parameters has a `signal` (an AbortSignal the caller may fire). */
type TakesSignal<Parameter> = Parameter extends object ? ('signal' extends keyof Parameter ? true : false) : false;
/** The EventStore methods that take a signal: the suite must check each (see "abandoned calls"). */
type MethodsTakingSignal = {
  [M in keyof EventStore]: EventStore[M] extends (...args: infer P) => unknown
    ? true extends TakesSignal<P[number]>
      ? M
      : never
    : never;
}[keyof EventStore] & string;

/** Builds a fresh, empty store; `dispose` releases it. */
export interface StoreFactory {
  create(): Promise<EventStore>;
  /** Another store over the same data as `store` (which may be closed); the caller closes it. */
  reopen(store: EventStore): Promise<EventStore>;
  dispose?(store: EventStore): Promise<void>;
}

const at = new Date('2026-01-02T03:04:05.678Z');
const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const text = (payload: Uint8Array) => Buffer.from(payload).toString();
const forward = (fromVersion = 0n, limit = 100): ReadQuery => ({ fromVersion, direction: 'forward', limit, maxBytes: 1 << 20 });
/** Bytes that no codec could shrink: what the store keeps of a large entry is that large. */
const randomPayload = (size: number) => new Uint8Array(randomBytes(size));

/**
 * Entries and snapshots as large as the embedded store takes (issue 17): 100 KB and 390 KB fit
 * one DynamoDB item, 1 MiB does not, and the last is the largest stored payload an entry within
 * the default limits can have (EH_MAX_ENTRY_BYTES and its events' framing, see stored-size.ts).
 */
const LARGE_SIZES: Array<[string, number]> = [
  ['100 KB', 100 * 1024],
  ['390 KB', 390 * 1024],
  ['1 MiB', 1 << 20],
  ['the configured maximum', maxStoredEntryBytes(DEFAULT_LIMITS)],
];

/**
 * The storage conformance suite: every store implementation runs it, so the embedded and the
 * DynamoDB store cannot drift apart. It speaks to the port directly, with opaque payloads.
 */
export function runStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, function () {
    let store: EventStore;

    beforeEach(async () => {
      store = await factory.create();
      await store.init(bytes('root'), at);
    });
    afterEach(async () => {
      if (factory.dispose) await factory.dispose(store);
      else await store.close();
    });

    async function create(
      stream: string,
      parent = stream.slice(0, stream.lastIndexOf('/')) || '/',
      initial?: string,
      childCreated: (version: bigint) => string = () => `child ${stream}`,
    ) {
      return store.createStream({
        stream,
        parent,
        recordedAt: at,
        startedPayload: bytes(`started ${stream}`),
        childCreatedPayload: (version) => bytes(childCreated(version)),
        ...(initial ? { initialPayload: bytes(initial) } : {}),
      });
    }

    describe('init and create', () => {
      it('opens without writing a stream, so keys can be read before the root exists', async () => {
        const fresh = await factory.create();
        try {
          await fresh.open();
          await fresh.open();
          assert.deepEqual(await fresh.getStreamKeys('/'), { keys: [], shredded: false });
          await assert.rejects(fresh.read('/', forward()), StreamNotFoundError);
        } finally {
          if (factory.dispose) await factory.dispose(fresh);
          else await fresh.close();
        }
      });

      it('creates the root once, with entry 0', async () => {
        await store.init(bytes('root again'), at);
        const page = await store.read('/', forward());
        assert.deepEqual(page.entries.map((e) => [e.version, text(e.payload)]), [[0n, 'root']]);
        assert.equal(page.headVersion, 0n);
      });

      it('writes the child entry 0 and the parent entry together', async () => {
        const result = await create('/a');
        assert.deepEqual(result, { headVersion: 0n, parentVersion: 1n });
        const child = await store.read('/a', forward());
        assert.deepEqual(child.entries.map((e) => [e.version, text(e.payload)]), [[0n, 'started /a']]);
        assert.equal(child.entries[0]?.recordedAt.getTime(), at.getTime());
        const root = await store.read('/', forward());
        assert.deepEqual(root.entries.map((e) => text(e.payload)), ['root', 'child /a']);
        const info = await store.describe('/');
        assert.equal(info?.childCount, 1n);
      });

      it('writes initial events as entry 1', async () => {
        const result = await create('/b', '/', 'first');
        assert.equal(result.headVersion, 1n);
        const page = await store.read('/b', forward());
        assert.deepEqual(page.entries.map((e) => text(e.payload)), ['started /b', 'first']);
      });

      it('refuses an existing stream and leaves its parent untouched', async () => {
        await create('/a');
        await assert.rejects(create('/a'), StreamAlreadyExistsError);
        assert.equal((await store.describe('/'))?.headVersion, 1n);
        assert.equal((await store.describe('/'))?.childCount, 1n);
      });

      it('refuses a missing parent and writes nothing', async () => {
        await assert.rejects(create('/x/y', '/x'), ParentNotFoundError);
        assert.equal(await store.describe('/x/y'), undefined);
      });

      it('creates many children of one parent concurrently, all recorded', async () => {
        await create('/p');
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) => create(`/p/c${i}`, '/p')));
        const parentVersions = results.map((r) => r.parentVersion).sort((x, y) => (x < y ? -1 : 1));
        assert.deepEqual(parentVersions, Array.from({ length: 25 }, (_, i) => BigInt(i + 1)));
        assert.equal((await store.describe('/p'))?.childCount, 25n);
      });
    });

    describe('append', () => {
      beforeEach(() => create('/s'));

      it('writes nothing for a caller that gave up before the write was sent', async () => {
        const gone = AbortSignal.abort();
        await assert.rejects(
          store.append({ stream: '/s', payload: () => bytes('late'), recordedAt: at, requestId: 'r-gone', signal: gone }),
          CallAbandonedError,
        );
        const page = await store.read('/s', forward());
        assert.deepEqual(page.entries.map((e) => text(e.payload)), ['started /s']);
        const retried = await store.append({ stream: '/s', payload: () => bytes('late'), recordedAt: at, requestId: 'r-gone' });
        assert.deepEqual([retried.version, retried.deduplicated], [1n, false]);
      });

      it('appends at head + 1 and reports the version', async () => {
        const first = await store.append({ stream: '/s', payload: () => bytes('one'), recordedAt: at });
        const second = await store.append({ stream: '/s', payload: () => bytes('two'), recordedAt: at });
        assert.equal(first.version, 1n);
        assert.equal(second.version, 2n);
        assert.equal(first.deduplicated, false);
        assert.equal((await store.describe('/s'))?.headVersion, 2n);
      });

      it('refuses a missing stream', async () => {
        await assert.rejects(store.append({ stream: '/nope', payload: () => bytes('x'), recordedAt: at }), StreamNotFoundError);
      });

      it('checks the expected version and reports the actual head', async () => {
        await store.append({ stream: '/s', payload: () => bytes('one'), recordedAt: at, expectedVersion: 0n });
        await assert.rejects(
          store.append({ stream: '/s', payload: () => bytes('two'), recordedAt: at, expectedVersion: 0n }),
          (error: unknown) => error instanceof WrongExpectedVersionError && error.actualVersion === 1n,
        );
        await assert.rejects(
          store.append({ stream: '/s', payload: () => bytes('far'), recordedAt: at, expectedVersion: 5n }),
          (error: unknown) => error instanceof WrongExpectedVersionError && error.actualVersion === 1n,
        );
        assert.equal((await store.describe('/s'))?.headVersion, 1n);
      });

      it('returns the original cursor for a retried request id, even after the head moved', async () => {
        const original = await store.append({ stream: '/s', payload: () => bytes('one'), recordedAt: at, requestId: 'r1', expectedVersion: 0n });
        await store.append({ stream: '/s', payload: () => bytes('two'), recordedAt: at });
        const retry = await store.append({ stream: '/s', payload: () => bytes('one'), recordedAt: new Date(), requestId: 'r1', expectedVersion: 0n });
        assert.equal(retry.version, original.version);
        assert.equal(retry.deduplicated, true);
        assert.equal(retry.recordedAt.getTime(), at.getTime());
        const page = await store.read('/s', forward());
        assert.deepEqual(page.entries.map((e) => text(e.payload)), ['started /s', 'one', 'two']);
      });

      it('lets exactly one of 20 racing writers win each version, without gaps', async () => {
        const writers = 20;
        const rounds = 5;
        const winners: bigint[] = [];
        for (let round = 0; round < rounds; round++) {
          const head = (await store.describe('/s'))?.headVersion ?? -1n;
          const outcomes = await Promise.allSettled(
            Array.from({ length: writers }, (_, w) =>
              store.append({ stream: '/s', payload: () => bytes(`r${round}w${w}`), recordedAt: at, expectedVersion: head }),
            ),
          );
          const won = outcomes.filter((o) => o.status === 'fulfilled');
          assert.equal(won.length, 1, `round ${round}: one winner`);
          for (const o of outcomes) {
            if (o.status === 'rejected') assert.ok(o.reason instanceof WrongExpectedVersionError);
          }
          winners.push((won[0] as PromiseFulfilledResult<{ version: bigint }>).value.version);
        }
        assert.deepEqual(winners, [1n, 2n, 3n, 4n, 5n]);
        const page = await store.read('/s', forward());
        assert.deepEqual(page.entries.map((e) => e.version), [0n, 1n, 2n, 3n, 4n, 5n]);
      });

      it('builds each payload for the version it is stored at', async () => {
        await store.append({ stream: '/s', payload: () => bytes('one'), recordedAt: at });
        const seen: bigint[] = [];
        const result = await store.append({
          stream: '/s',
          payload: (version) => (seen.push(version), bytes(`at ${version}`)),
          recordedAt: at,
        });
        assert.equal(result.version, 2n);
        assert.equal(seen[seen.length - 1], 2n);
        const page = await store.read('/s', forward(2n));
        assert.equal(text(page.entries[0]?.payload ?? bytes('')), 'at 2');
        await create('/s/child', '/s', undefined, (v) => `child at ${v}`);
        const parent = await store.read('/s', forward(3n));
        assert.equal(text(parent.entries[0]?.payload ?? bytes('')), 'child at 3');
      });

      it('counts the bytes stored', async () => {
        const before = (await store.describe('/s'))?.bytesStored ?? 0n;
        await store.append({ stream: '/s', payload: () => bytes('12345'), recordedAt: at });
        assert.equal((await store.describe('/s'))?.bytesStored, before + 5n);
      });
    });

    describe('read', () => {
      beforeEach(async () => {
        await create('/r');
        for (let i = 1; i <= 10; i++) await store.append({ stream: '/r', payload: () => bytes(`e${i}`), recordedAt: at });
      });

      it('pages forwards with a more flag', async () => {
        const first = await store.read('/r', forward(0n, 4));
        assert.deepEqual(first.entries.map((e) => e.version), [0n, 1n, 2n, 3n]);
        assert.equal(first.more, true);
        assert.equal(first.headVersion, 10n);
        const last = await store.read('/r', forward(8n, 4));
        assert.deepEqual(last.entries.map((e) => e.version), [8n, 9n, 10n]);
        assert.equal(last.more, false);
      });

      it('pages backwards', async () => {
        const page = await store.read('/r', { fromVersion: 10n, direction: 'backward', limit: 3, maxBytes: 1 << 20 });
        assert.deepEqual(page.entries.map((e) => e.version), [10n, 9n, 8n]);
        assert.equal(page.more, true);
        const fromFar = await store.read('/r', { fromVersion: 1n << 62n, direction: 'backward', limit: 1, maxBytes: 1 << 20 });
        assert.deepEqual(fromFar.entries.map((e) => e.version), [10n]);
        const end = await store.read('/r', { fromVersion: 1n, direction: 'backward', limit: 5, maxBytes: 1 << 20 });
        assert.deepEqual(end.entries.map((e) => e.version), [1n, 0n]);
        assert.equal(end.more, false);
      });

      it('returns nothing past the head', async () => {
        const page = await store.read('/r', forward(11n));
        assert.deepEqual(page.entries, []);
        assert.equal(page.more, false);
      });

      it('stops a page at maxBytes, but always returns at least one entry', async () => {
        const page = await store.read('/r', { fromVersion: 1n, direction: 'forward', limit: 100, maxBytes: 5 });
        assert.deepEqual(page.entries.map((e) => e.version), [1n, 2n]);
        assert.equal(page.more, true);
        const tiny = await store.read('/r', { fromVersion: 1n, direction: 'forward', limit: 100, maxBytes: 1 });
        assert.deepEqual(tiny.entries.map((e) => e.version), [1n]);
      });

      it('refuses a missing stream', async () => {
        await assert.rejects(store.read('/missing', forward()), StreamNotFoundError);
      });

      it('reads the same pages when the caller keeps no payload (transientPayloads), binary payloads byte for byte', async () => {
        // Payloads of any bytes (NUL, invalid UTF-8) and sizes, so that a store joining a page's
        // payloads (the SQLite store) is seen to split them where they were.
        await create('/bin');
        const written = new Map<bigint, Buffer>();
        for (let i = 0; i < 30; i++) {
          const payload = Buffer.alloc(1 + ((i * 37) % 300), i % 5 === 0 ? 0 : 0xff - i);
          payload[0] = 0xc3; // a UTF-8 lead byte without its continuation
          const { version } = await store.append({ stream: '/bin', payload: () => payload, recordedAt: new Date(at.getTime() + i) });
          written.set(version, payload);
        }
        const queries: ReadQuery[] = [];
        for (const direction of ['forward', 'backward'] as const) {
          for (const fromVersion of [0n, 1n, 7n, 30n, 31n, 1n << 62n]) {
            for (const [limit, maxBytes] of [[1, 1 << 20], [4, 1 << 20], [100, 1 << 20], [100, 500], [100, 1]]) {
              queries.push({ fromVersion, direction, limit: limit as number, maxBytes: maxBytes as number });
            }
          }
        }
        const shape = (page: ReadPage) => ({
          more: page.more,
          headVersion: page.headVersion,
          entries: page.entries.map((e) => ({ version: e.version, at: e.recordedAt.getTime(), payload: Buffer.from(e.payload).toString('hex') })),
        });
        for (const query of queries) {
          const kept = await store.read('/bin', query);
          const transient = await store.read('/bin', { ...query, transientPayloads: true });
          assert.deepEqual(shape(transient), shape(kept), JSON.stringify({ ...query, fromVersion: String(query.fromVersion) }));
          for (const entry of transient.entries) {
            const expected = written.get(entry.version);
            if (expected) assert.ok(Buffer.from(entry.payload).equals(expected), `payload of version ${entry.version}`);
          }
        }
      });

      it('reports a head version that agrees with its page while appends run', async function () {
        this.timeout(60_000);
        // A client that reads the latest entry and appends with expected_version = head_version
        // must never write after an entry it has not seen.
        const problems: string[] = [];
        let writing = 2;
        const writer = async (w: number) => {
          for (let i = 0; i < 40; i++) await store.append({ stream: '/r', payload: () => bytes(`w${w}-${i}`), recordedAt: at });
          writing--;
        };
        const reader = async () => {
          while (writing > 0) {
            const latest = await store.read('/r', { fromVersion: 1n << 62n, direction: 'backward', limit: 1, maxBytes: 1 << 20 });
            const newest = latest.entries[0]?.version;
            if (newest !== latest.headVersion) problems.push(`backward: entry ${newest}, head ${latest.headVersion}`);
            // Forwards past what was just seen: often empty, sometimes the entries appended since.
            const next = await store.read('/r', forward(latest.headVersion + 1n));
            const last = next.entries[next.entries.length - 1]?.version;
            if (last === undefined ? next.headVersion > latest.headVersion : last !== next.headVersion) {
              problems.push(`forward from ${latest.headVersion + 1n}: last entry ${last}, head ${next.headVersion}`);
            }
            // An embedded store may answer reads without leaving the microtask queue: let the writes run.
            await nextTurn();
          }
        };
        await Promise.all([writer(1), writer(2), reader(), reader()]);
        assert.deepEqual(problems, []);
      });
    });

    describe('describe and children', () => {
      it('describes a stream', async () => {
        await create('/d');
        const info = await store.describe('/d');
        assert.equal(info?.path, '/d');
        assert.equal(info?.headVersion, 0n);
        assert.equal(info?.createdAt.getTime(), at.getTime());
        assert.equal(info?.childCount, 0n);
        assert.equal(info?.bytesStored, BigInt('started /d'.length));
        assert.equal(await store.describe('/missing'), undefined);
      });

      it('lists children in byte order, page by page', async () => {
        await create('/t');
        for (const name of ['b', 'a', 'c', 'a-1', 'Z']) await create(`/t/${name}`, '/t');
        await create('/t/a/deep', '/t/a');
        assert.deepEqual(await store.listChildren('/t', undefined, 10), ['/t/Z', '/t/a', '/t/a-1', '/t/b', '/t/c']);
        assert.deepEqual(await store.listChildren('/t', '/t/a', 2), ['/t/a-1', '/t/b']);
        assert.deepEqual(await store.listChildren('/t/c', undefined, 10), []);
        await assert.rejects(store.listChildren('/missing', undefined, 10), StreamNotFoundError);
      });
    });

    describe('snapshots', () => {
      beforeEach(async () => {
        await create('/n');
        for (let i = 1; i <= 5; i++) await store.append({ stream: '/n', payload: () => bytes(`e${i}`), recordedAt: at });
      });
      const snap = (version: bigint, data: string) => ({
        perspective: 'view:v1',
        version,
        payload: bytes(data),
        contentType: 'application/json',
        storedAt: at,
      });

      it('stores only newer snapshots', async () => {
        assert.deepEqual(await store.putSnapshot('/n', snap(3n, 'three')), { stored: true, storedVersion: 3n });
        assert.deepEqual(await store.putSnapshot('/n', snap(2n, 'two')), { stored: false, storedVersion: 3n });
        assert.deepEqual(await store.putSnapshot('/n', snap(3n, 'three again')), { stored: false, storedVersion: 3n });
        const got = await store.getSnapshot('/n', 'view:v1');
        assert.equal(got && text(got.payload), 'three');
        assert.equal(got?.version, 3n);
        assert.deepEqual(await store.putSnapshot('/n', snap(5n, 'five')), { stored: true, storedVersion: 5n });
        assert.equal(text((await store.getSnapshot('/n', 'view:v1'))?.payload ?? bytes('')), 'five');
      });

      it('refuses a snapshot past the head', async () => {
        await assert.rejects(store.putSnapshot('/n', snap(6n, 'six')), SnapshotAheadOfStreamError);
      });

      it('lists, gets and deletes per perspective', async () => {
        await store.putSnapshot('/n', snap(1n, 'one'));
        await store.putSnapshot('/n', { ...snap(2n, 'other'), perspective: 'other:v2' });
        assert.deepEqual(await store.listPerspectives('/n'), ['other:v2', 'view:v1']);
        assert.equal(await store.getSnapshot('/n', 'nothing'), undefined);
        assert.equal(await store.deleteSnapshot('/n', 'view:v1'), true);
        assert.equal(await store.deleteSnapshot('/n', 'view:v1'), false);
        assert.deepEqual(await store.listPerspectives('/n'), ['other:v2']);
      });

      it('refuses snapshots of a missing stream', async () => {
        await assert.rejects(store.putSnapshot('/missing', snap(0n, 'x')), StreamNotFoundError);
        await assert.rejects(store.getSnapshot('/missing', 'view:v1'), StreamNotFoundError);
      });
    });

    describe('encryption keys', () => {
      const key = (dekVersion: number, kekId = 'kek-a', wrapped = `wrapped ${dekVersion}`) => ({
        dekVersion,
        kekId,
        wrapped: bytes(wrapped),
        createdAt: at,
      });

      it('adds key versions once, before or after the stream exists', async () => {
        assert.deepEqual(await store.getStreamKeys('/k'), { keys: [], shredded: false });
        assert.equal(await store.addStreamKey('/k', key(1)), true);
        assert.equal(await store.addStreamKey('/k', key(1, 'kek-a', 'a rival')), false, 'a version is added once');
        await create('/k');
        assert.equal(await store.addStreamKey('/k', key(2)), true);
        const { keys, shredded } = await store.getStreamKeys('/k');
        assert.equal(shredded, false);
        assert.deepEqual(keys.map((k) => [k.dekVersion, k.kekId, text(k.wrapped), k.createdAt.getTime()]), [
          [1, 'kek-a', 'wrapped 1', at.getTime()],
          [2, 'kek-a', 'wrapped 2', at.getTime()],
        ]);
      });

      it('re-wraps a key only when it is still wrapped by the expected KEK', async () => {
        await store.addStreamKey('/k', key(1));
        assert.equal(await store.rewrapStreamKey('/k', 1, 'kek-old', 'kek-b', bytes('by b')), false);
        assert.equal(await store.rewrapStreamKey('/k', 1, 'kek-a', 'kek-b', bytes('by b')), true);
        const [only] = (await store.getStreamKeys('/k')).keys;
        assert.deepEqual([only?.kekId, text(only?.wrapped ?? bytes(''))], ['kek-b', 'by b']);
      });

      it('shreds keys for good', async () => {
        await store.addStreamKey('/k', key(1));
        await store.addStreamKey('/k', key(2));
        await store.shredStreamKeys('/k', at);
        assert.deepEqual(await store.getStreamKeys('/k'), { keys: [], shredded: true });
        assert.equal(await store.addStreamKey('/k', key(3)), false, 'no new key after shredding');
        assert.deepEqual((await store.getStreamKeys('/k')).keys, []);
      });

      it('takes no append and no child once shredded, but still answers retries of earlier appends', async () => {
        await create('/k');
        await store.addStreamKey('/k', key(1));
        const before = await store.append({ stream: '/k', payload: () => bytes('before'), recordedAt: at, requestId: 'r-1' });
        await store.shredStreamKeys('/k', at);
        await assert.rejects(store.append({ stream: '/k', payload: () => bytes('after'), recordedAt: at }), StreamShreddedError);
        await assert.rejects(
          store.append({ stream: '/k', payload: () => bytes('after'), recordedAt: at, expectedVersion: before.version }),
          StreamShreddedError,
        );
        await assert.rejects(create('/k/child'), StreamShreddedError);
        const retried = await store.append({ stream: '/k', payload: () => bytes('before'), recordedAt: at, requestId: 'r-1' });
        assert.deepEqual(retried, { ...before, deduplicated: true });
        // Shredding again changes nothing.
        await store.shredStreamKeys('/k', at);
        await assert.rejects(store.append({ stream: '/k', payload: () => bytes('after'), recordedAt: at }), StreamShreddedError);
      });

      it('takes no sealed snapshot once shredded, whatever keys the caller holds', async () => {
        await create('/k');
        await store.addStreamKey('/k', key(1));
        await store.append({ stream: '/k', payload: () => bytes('sealed'), recordedAt: at });
        const sealed = (version: bigint) =>
          store.putSnapshot('/k', { perspective: 'p', version, payload: bytes('sealed'), contentType: 'application/json', storedAt: at }, { sealed: true });
        assert.deepEqual(await sealed(0n), { stored: true, storedVersion: 0n });
        assert.deepEqual(await sealed(0n), { stored: false, storedVersion: 0n }, 'still newer-only');
        await store.shredStreamKeys('/k', at);
        await assert.rejects(sealed(1n), StreamShreddedError);
        assert.equal((await store.getSnapshot('/k', 'p'))?.version, 0n, 'the older one is left as it was');
      });

      it('lists streams with keys page by page', async () => {
        for (const stream of ['/b', '/a', '/c']) await store.addStreamKey(stream, key(1));
        await store.addStreamKey('/a', key(2));
        const first = await store.listStreamKeys(undefined, 2);
        assert.deepEqual(first.map((s) => [s.stream, s.keys.map((k) => k.dekVersion)]), [['/a', [1, 2]], ['/b', [1]]]);
        const rest = await store.listStreamKeys('/b', 2);
        assert.deepEqual(rest.map((s) => s.stream), ['/c']);
      });
    });

    describe('features: the idempotency window', () => {
      beforeEach(() => create('/w'));
      const append = (payload: string, extra: { requestId?: string; expectedVersion?: bigint } = {}) =>
        store.append({ stream: '/w', payload: () => bytes(payload), recordedAt: at, ...extra });
      /** Newer entries after the original that leave it inside the window: the most there can be. */
      const newerWithin = () => {
        const window = store.features.idempotencyWindow;
        return window.kind === 'entries' ? window.count - 1 : 150;
      };

      it('recognises a retry whose original is within the window, on this store and on another over the same data', async function () {
        this.timeout(120_000);
        const original = await append('original', { requestId: 'r-w', expectedVersion: 0n });
        for (let i = 0; i < newerWithin(); i++) await append(`newer ${i}`);
        const head = (await store.describe('/w'))?.headVersion;
        // Another store (a replica, a restart) knows nothing yet: it must find the original too.
        const other = await factory.reopen(store);
        try {
          const elsewhere = await other.append({ stream: '/w', payload: () => bytes('original'), recordedAt: new Date(), requestId: 'r-w', expectedVersion: 0n });
          assert.deepEqual(elsewhere, { ...original, deduplicated: true });
        } finally {
          await other.close();
        }
        const retried = await append('original', { requestId: 'r-w', expectedVersion: 0n });
        assert.deepEqual(retried, { ...original, deduplicated: true });
        assert.equal((await store.describe('/w'))?.headVersion, head, 'nothing written');
      });

      it('does not recognise a retry past a bounded window: it appends again, or conflicts with its expected version', async function () {
        this.timeout(120_000);
        const window = store.features.idempotencyWindow;
        if (window.kind === 'unbounded') this.skip(); // the test above covers more entries than a bounded store keeps
        const count = window.kind === 'entries' ? window.count : 0;
        await append('original', { requestId: 'r-past', expectedVersion: 0n });
        for (let i = 0; i < count; i++) await append(`newer ${i}`);
        const head = BigInt(count) + 1n;
        await assert.rejects(
          append('original', { requestId: 'r-past', expectedVersion: 0n }),
          (error: unknown) => error instanceof WrongExpectedVersionError && error.actualVersion === head,
        );
        const again = await append('original', { requestId: 'r-past' });
        assert.deepEqual([again.version, again.deduplicated], [head + 1n, false]);
        // Written again: that copy is now the newest entry with the id, and a retry finds it.
        const retried = await append('original', { requestId: 'r-past' });
        assert.deepEqual([retried.version, retried.deduplicated], [head + 1n, true]);
      });
    });

    describe('large entries and snapshots', function () {
      // Megabytes per test, through DynamoDB Local on a shared machine.
      this.timeout(120_000);
      beforeEach(() => create('/big'));

      const sameBytes = (actual: Uint8Array | undefined, expected: Uint8Array, what: string) => {
        assert.ok(actual, `${what}: missing`);
        assert.equal(actual.byteLength, expected.byteLength, `${what}: size`);
        assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what}: bytes differ`);
      };
      /** Forwards, with a page bound no entry here reaches. */
      const whole = (fromVersion: bigint): ReadQuery => ({ fromVersion, direction: 'forward', limit: 100, maxBytes: 64 << 20 });
      const snapshotOf = (version: bigint, payload: Uint8Array) => ({
        perspective: 'big:v1',
        version,
        payload,
        contentType: 'application/octet-stream',
        storedAt: at,
      });

      for (const [name, size] of LARGE_SIZES) {
        it(`appends, reads, retries and snapshots an entry of ${name} (${size} bytes), whole, here and on another store over the same data`, async () => {
          const payload = randomPayload(size);
          const small = bytes('small');
          const appended = await store.append({ stream: '/big', payload: () => payload, recordedAt: at, requestId: 'r-big' });
          assert.deepEqual(appended, { version: 1n, recordedAt: at, deduplicated: false });
          await store.append({ stream: '/big', payload: () => small, recordedAt: at });

          const all = await store.read('/big', whole(0n));
          assert.deepEqual(all.entries.map((e) => e.version), [0n, 1n, 2n]);
          assert.equal(all.headVersion, 2n);
          sameBytes(all.entries[1]?.payload, payload, 'forward page');
          assert.equal(all.entries[1]?.recordedAt.getTime(), at.getTime());
          const alone = await store.read('/big', { fromVersion: 1n, direction: 'forward', limit: 1, maxBytes: 1 });
          assert.deepEqual([alone.entries.length, alone.more], [1, true]);
          sameBytes(alone.entries[0]?.payload, payload, 'a page of one');
          // The page bound counts the whole payload: it stops before the large entry.
          const bounded = await store.read('/big', { fromVersion: 0n, direction: 'forward', limit: 10, maxBytes: size });
          assert.deepEqual([bounded.entries.map((e) => e.version), bounded.more], [[0n], true]);
          const backward = await store.read('/big', { fromVersion: 1n << 62n, direction: 'backward', limit: 2, maxBytes: 64 << 20 });
          assert.deepEqual(backward.entries.map((e) => e.version), [2n, 1n]);
          sameBytes(backward.entries[1]?.payload, payload, 'backward page');
          const started = BigInt('started /big'.length);
          assert.equal((await store.describe('/big'))?.bytesStored, started + BigInt(size) + 5n);

          const retried = await store.append({ stream: '/big', payload: () => payload, recordedAt: new Date(), requestId: 'r-big' });
          assert.deepEqual(retried, { ...appended, deduplicated: true });
          const other = await factory.reopen(store);
          try {
            const elsewhere = await other.read('/big', whole(1n));
            sameBytes(elsewhere.entries[0]?.payload, payload, 'read by another store');
            const retriedElsewhere = await other.append({ stream: '/big', payload: () => payload, recordedAt: new Date(), requestId: 'r-big' });
            assert.deepEqual(retriedElsewhere, { ...appended, deduplicated: true });
          } finally {
            await other.close();
          }
          assert.equal((await store.describe('/big'))?.headVersion, 2n, 'retries wrote nothing');

          // Snapshots of that size: stored, replaced by a newer one (sealed), then by a small one.
          const first = randomPayload(size);
          assert.deepEqual(await store.putSnapshot('/big', snapshotOf(1n, first)), { stored: true, storedVersion: 1n });
          sameBytes((await store.getSnapshot('/big', 'big:v1'))?.payload, first, 'snapshot');
          assert.deepEqual(await store.putSnapshot('/big', snapshotOf(1n, small)), { stored: false, storedVersion: 1n });
          const second = randomPayload(size);
          assert.deepEqual(await store.putSnapshot('/big', snapshotOf(2n, second), { sealed: true }), { stored: true, storedVersion: 2n });
          const replaced = await store.getSnapshot('/big', 'big:v1');
          assert.equal(replaced?.version, 2n);
          sameBytes(replaced?.payload, second, 'newer snapshot');
          await store.append({ stream: '/big', payload: () => small, recordedAt: at });
          assert.deepEqual(await store.putSnapshot('/big', snapshotOf(3n, small)), { stored: true, storedVersion: 3n });
          sameBytes((await store.getSnapshot('/big', 'big:v1'))?.payload, small, 'small snapshot after a large one');
          assert.deepEqual(await store.putSnapshot('/big', snapshotOf(3n, first)), { stored: false, storedVersion: 3n });
          assert.deepEqual(await store.listPerspectives('/big'), ['big:v1']);
          assert.equal(await store.deleteSnapshot('/big', 'big:v1'), true);
          assert.equal(await store.getSnapshot('/big', 'big:v1'), undefined);
        });
      }

      it('group-commits large entries with small ones, more than one write holds: gap-free, each whole', async () => {
        const payloads = [1 << 20, 10, 390 * 1024, 20, 1 << 20, 30, 1 << 20, 1 << 20, 1 << 20, 40].map(randomPayload);
        const results = await Promise.all(payloads.map((payload) => store.append({ stream: '/big', payload: () => payload, recordedAt: at })));
        assert.deepEqual(
          results.map((r) => r.version).sort((x, y) => (x < y ? -1 : 1)),
          payloads.map((_, i) => BigInt(i + 1)),
        );
        const page = await store.read('/big', whole(1n));
        results.forEach((result, i) => {
          sameBytes(page.entries.find((e) => e.version === result.version)?.payload, payloads[i]!, `append ${i}`);
        });
      });

      it('refuses a large entry with a stale expected version and writes nothing', async () => {
        await store.append({ stream: '/big', payload: () => bytes('one'), recordedAt: at });
        await assert.rejects(
          store.append({ stream: '/big', payload: () => randomPayload(1 << 20), recordedAt: at, expectedVersion: 0n }),
          (error: unknown) => error instanceof WrongExpectedVersionError && error.actualVersion === 1n,
        );
        const large = randomPayload(1 << 20);
        assert.equal((await store.append({ stream: '/big', payload: () => large, recordedAt: at, expectedVersion: 1n })).version, 2n);
        const page = await store.read('/big', whole(1n));
        assert.deepEqual(page.entries.map((e) => e.version), [1n, 2n]);
        sameBytes(page.entries[1]?.payload, large, 'the large entry');
      });

      it('creates a stream whose initial entry is large', async () => {
        const initial = randomPayload(1 << 20);
        const result = await store.createStream({
          stream: '/big/child',
          parent: '/big',
          recordedAt: at,
          startedPayload: bytes('started'),
          childCreatedPayload: () => bytes('child'),
          initialPayload: initial,
        });
        assert.deepEqual(result, { headVersion: 1n, parentVersion: 1n });
        const page = await store.read('/big/child', whole(0n));
        sameBytes(page.entries[1]?.payload, initial, 'initial entry');
      });

      it('subscribes to large entries sealed with the stream key: catch-up, live, and catch-up on another store over the same data', async () => {
        // Subscriptions are the core's (catch-up reads of the store, then the hub): this test goes
        // through the core, with encryption on, so that what is split is sealed ciphertext.
        const config = { ...DEFAULT_CONFIG, keyring: JSON.stringify(generateKeyring('kek-1')) };
        const event = (data: Uint8Array, n: number) => ({
          id: `big-${n}`, type: 'blob', data: Buffer.from(data), contentType: 'application/octet-stream', metadata: {}, occurredAt: undefined,
        });
        // 1 MiB in one event, then the configured maximum: EH_MAX_ENTRY_BYTES in events of EH_MAX_EVENT_BYTES.
        const oneMiB = [randomPayload(1 << 20)];
        const largest = Array.from({ length: DEFAULT_LIMITS.maxEntryBytes / DEFAULT_LIMITS.maxEventBytes }, () => randomPayload(DEFAULT_LIMITS.maxEventBytes));
        const { core } = await openEventStore(config, { store });
        await core.createStream('/big/sub', [], { requestId: undefined, createParents: false });
        await core.append('/big/sub', oneMiB.map(event), undefined, undefined);

        const received = async (on: EventStoreCore, count: number, whileCaughtUp?: () => Promise<unknown>) => {
          const lifetime = new Lifetime();
          const entries: Array<{ version: bigint; data: Uint8Array[] }> = [];
          try {
            for await (const outgoing of on.subscribe('/big/sub', 1n, lifetime)) {
              const message = (outgoing instanceof Encoded ? SubscribeResponse.decode(outgoing.bytes) : outgoing).message;
              if (message?.$case === 'entry') entries.push({ version: message.value.version, data: message.value.events.map((e) => e.data) });
              if (message?.$case === 'caughtUp') await whileCaughtUp?.();
              if (entries.length === count) break;
            }
          } finally {
            lifetime.end();
          }
          return entries;
        };
        const live = await received(core, 2, () => core.append('/big/sub', largest.map(event), undefined, undefined));
        assert.deepEqual(live.map((e) => e.version), [1n, 2n]);
        live[0]?.data.forEach((data, i) => sameBytes(data, oneMiB[i]!, 'caught up'));
        live[1]?.data.forEach((data, i) => sameBytes(data, largest[i]!, `live, event ${i}`));
        assert.equal(live[1]?.data.length, largest.length);

        const other = await factory.reopen(store);
        try {
          const elsewhere = await openEventStore(config, { store: other });
          const caughtUp = await received(elsewhere.core, 2);
          caughtUp[1]?.data.forEach((data, i) => sameBytes(data, largest[i]!, `caught up elsewhere, event ${i}`));
          assert.equal(caughtUp[1]?.data.length, largest.length);
        } finally {
          await other.close();
        }
      });
    });

    describe('features: payload sizes', function () {
      this.timeout(120_000);
      beforeEach(() => create('/i'));
      const snapshotOf = (payload: Uint8Array) => ({ perspective: 'p', version: 0n, payload, contentType: 'application/octet-stream', storedAt: at });
      const createWith = (stream: string, payloads: { initial?: Uint8Array; childCreated?: Uint8Array }) =>
        store.createStream({
          stream,
          parent: '/i',
          recordedAt: at,
          startedPayload: bytes('started'),
          childCreatedPayload: () => payloads.childCreated ?? bytes('child'),
          ...(payloads.initial ? { initialPayload: payloads.initial } : {}),
        });

      it('holds every payload the default limits allow: no limit of its own, or one above them', () => {
        const max = store.features.maxPayloadBytes;
        if (max === undefined) return;
        assert.ok(maxStoredEntryBytes(DEFAULT_LIMITS) <= max, `entries of up to ${maxStoredEntryBytes(DEFAULT_LIMITS)} bytes, limit ${max}`);
        assert.ok(maxStoredSnapshotBytes(DEFAULT_LIMITS) <= max, `snapshots of up to ${maxStoredSnapshotBytes(DEFAULT_LIMITS)} bytes, limit ${max}`);
      });

      it('stores payloads of exactly maxPayloadBytes, and refuses one byte more and writes nothing', async function () {
        const max = store.features.maxPayloadBytes;
        // No limit of its own: "large entries and snapshots" above stores the largest the limits allow.
        if (max === undefined) this.skip();
        const tooLarge = new Uint8Array((max ?? 0) + 1);
        await assert.rejects(store.append({ stream: '/i', payload: () => tooLarge, recordedAt: at }), LimitExceededError);
        await assert.rejects(store.putSnapshot('/i', snapshotOf(tooLarge)), LimitExceededError);
        await assert.rejects(store.putSnapshot('/i', snapshotOf(tooLarge), { sealed: true }), LimitExceededError);
        await assert.rejects(createWith('/i/big', { initial: tooLarge }), LimitExceededError);
        await assert.rejects(createWith('/i/big', { childCreated: tooLarge }), LimitExceededError);
        assert.equal((await store.describe('/i'))?.headVersion, 0n);
        assert.equal(await store.describe('/i/big'), undefined);
        assert.deepEqual(await store.listChildren('/i', undefined, 10), []);
        assert.equal(await store.getSnapshot('/i', 'p'), undefined);

        const largest = randomPayload(max ?? 0);
        assert.equal((await store.append({ stream: '/i', payload: () => largest, recordedAt: at })).version, 1n);
        assert.deepEqual(await store.putSnapshot('/i', snapshotOf(largest), { sealed: true }), { stored: true, storedVersion: 0n });
        assert.deepEqual(await createWith('/i/big', { initial: largest }), { headVersion: 1n, parentVersion: 2n });
        const page = await store.read('/i', { fromVersion: 1n, direction: 'forward', limit: 1, maxBytes: 1 });
        assert.ok(Buffer.from(page.entries[0]?.payload ?? []).equals(largest), 'the entry, whole');
        assert.ok(Buffer.from((await store.getSnapshot('/i', 'p'))?.payload ?? []).equals(largest), 'the snapshot, whole');
        const child = await store.read('/i/big', { fromVersion: 1n, direction: 'forward', limit: 1, maxBytes: 1 });
        assert.ok(Buffer.from(child.entries[0]?.payload ?? []).equals(largest), 'the initial entry, whole');
      });
    });

    describe('features: reads after a shred', () => {
      it('refuses a read reaching the head of a shredded stream, or serves its entries as stored, as declared', async () => {
        await create('/x');
        await store.append({ stream: '/x', payload: () => bytes('one'), recordedAt: at });
        await store.shredStreamKeys('/x', at);
        if (store.features.readsRefusedAfterShred) {
          await assert.rejects(store.read('/x', forward()), StreamShreddedError);
        } else {
          const page = await store.read('/x', forward());
          assert.deepEqual(page.entries.map((e) => text(e.payload)), ['started /x', 'one']);
        }
        // Either way the head stays that of the last entry.
        assert.equal((await store.describe('/x'))?.headVersion, 1n);
      });
    });

    describe('abandoned calls', () => {
      beforeEach(() => create('/g'));

      it('drops an append whose caller gave up, alone, with an expected version, or among others sharing a write', async () => {
        const gone = AbortSignal.abort();
        await assert.rejects(
          store.append({ stream: '/g', payload: () => bytes('gone'), recordedAt: at, expectedVersion: 0n, signal: gone }),
          CallAbandonedError,
        );
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            store.append({ stream: '/g', payload: () => bytes(`w${i}`), recordedAt: at, ...(i % 2 === 1 ? { signal: gone } : {}) }),
          ),
        );
        outcomes.forEach((outcome, i) => {
          if (i % 2 === 1) assert.ok(outcome.status === 'rejected' && outcome.reason instanceof CallAbandonedError, `append ${i}`);
          else assert.equal(outcome.status, 'fulfilled', `append ${i}`);
        });
        const page = await store.read('/g', forward());
        assert.deepEqual(page.entries.map((e) => text(e.payload)).sort(), ['started /g', 'w0', 'w2', 'w4']);
      });

      it('honours the signal of every method that takes one', async () => {
        const gone = AbortSignal.abort();
        // Typed by the port: a method that gains a signal fails to compile until it is listed here.
        const calls: Record<MethodsTakingSignal, () => Promise<void>> = {
          append: async () => {
            await assert.rejects(store.append({ stream: '/g', payload: () => bytes('x'), recordedAt: at, signal: gone }), CallAbandonedError);
          },
          read: async () => {
            const reading = store.read('/g', { ...forward(), signal: gone });
            if (store.features.abandonedReadsStop) await assert.rejects(reading, CallAbandonedError);
            else assert.deepEqual((await reading).entries.map((e) => text(e.payload)), ['started /g']);
          },
          readFeed: async () => {
            const reading = store.readFeed({ after: 0n, subtree: { path: '/g', descendants: true }, limit: 10, maxBytes: 1 << 20, signal: gone });
            if (store.features.abandonedReadsStop) await assert.rejects(reading, CallAbandonedError);
            else await reading;
          },
        };
        for (const call of Object.values(calls)) await call();
        assert.equal((await store.describe('/g'))?.headVersion, 0n, 'nothing written');
      });
    });

    it('answers ping while open', async () => {
      assert.equal(await store.ping(), true);
    });

    it('after close, rejects every method with StoreUnavailableError and writes nothing', async () => {
      await create('/a');
      await store.append({ stream: '/a', payload: () => bytes('one'), recordedAt: at });
      await store.close();
      const key = { dekVersion: 1, kekId: 'kek', wrapped: bytes('w'), createdAt: at };
      // Typed by the port: a method added to EventStore fails to compile until it is listed here.
      // The group state's methods are checked after close in groups-conformance.ts.
      const calls: Record<Exclude<keyof EventStore, 'features' | 'ping' | 'close' | 'background' | 'groups'>, () => Promise<unknown>> = {
        open: () => store.open(),
        init: () => store.init(bytes('root'), at),
        createStream: () => create('/b'),
        append: () => store.append({ stream: '/a', payload: () => bytes('two'), recordedAt: at }),
        read: () => store.read('/a', forward()),
        readFeed: () => store.readFeed({ after: 0n, subtree: { path: '/', descendants: true }, limit: 10, maxBytes: 1 << 20 }),
        feedHead: () => store.feedHead(),
        describe: () => store.describe('/a'),
        listChildren: () => store.listChildren('/', undefined, 10),
        putSnapshot: () => store.putSnapshot('/a', { perspective: 'p', version: 1n, payload: bytes('s'), contentType: 'application/json', storedAt: at }),
        getSnapshot: () => store.getSnapshot('/a', 'p'),
        deleteSnapshot: () => store.deleteSnapshot('/a', 'p'),
        listPerspectives: () => store.listPerspectives('/a'),
        getStreamKeys: () => store.getStreamKeys('/a'),
        addStreamKey: () => store.addStreamKey('/a', key),
        rewrapStreamKey: () => store.rewrapStreamKey('/a', 1, 'kek', 'kek-2', bytes('w2')),
        shredStreamKeys: () => store.shredStreamKeys('/a', at),
        listStreamKeys: () => store.listStreamKeys(undefined, 10),
      };
      for (const [method, call] of Object.entries(calls)) {
        // A call, not a synchronous throw: callers await the store.
        let promise: Promise<unknown> | undefined;
        assert.doesNotThrow(() => (promise = call()), method);
        await assert.rejects(promise as Promise<unknown>, StoreUnavailableError, method);
      }
      assert.equal(await store.ping(), false);
      await store.close();

      const reopened = await factory.reopen(store);
      try {
        const page = await reopened.read('/a', forward());
        assert.deepEqual(page.entries.map((e) => text(e.payload)), ['started /a', 'one']);
        assert.equal(await reopened.describe('/b'), undefined);
        assert.deepEqual(await reopened.listChildren('/', undefined, 10), ['/a']);
        assert.equal(await reopened.getSnapshot('/a', 'p'), undefined);
        assert.deepEqual(await reopened.getStreamKeys('/a'), { keys: [], shredded: false });
      } finally {
        await reopened.close();
      }
    });
  });
}
