import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { maxStoredEntryBytes } from '../../src/codec/stored-size';
import { DEFAULT_LIMITS } from '../../src/config/config';
import type { EventStore, FeedEntry, Position, Subtree } from '../../src/store/port';
import type { StoreFactory } from './store-conformance';

/** A store factory that can also wait until the feed covers every committed entry. */
export interface FeedStoreFactory extends StoreFactory {
  /**
   * Resolves once every entry committed so far is in the feed (DynamoDB: indexed). The embedded
   * store's feed is written with the entries, so it has nothing to wait for.
   */
  feedCaughtUp?(store: EventStore): Promise<void>;
}

const at = new Date('2026-01-02T03:04:05.678Z');
const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const text = (payload: Uint8Array) => Buffer.from(payload).toString();
const everything: Subtree = { path: '/', descendants: true };

/**
 * The feed's part of the storage conformance suite: what a consumer of the feed relies on, on
 * every store. Payloads are opaque text naming stream and entry, so a test reads what it got.
 */
export function runFeedConformance(name: string, factory: FeedStoreFactory): void {
  describe(`store conformance: ${name}: the feed`, function () {
    this.timeout(60_000);
    let store: EventStore;

    beforeEach(async () => {
      store = await factory.create();
      await store.init(bytes('root'), at);
    });
    afterEach(async () => {
      if (factory.dispose) await factory.dispose(store);
      else await store.close();
    });

    async function create(stream: string) {
      const parent = stream.slice(0, stream.lastIndexOf('/')) || '/';
      await store.createStream({
        stream,
        parent,
        recordedAt: at,
        startedPayload: bytes(`${stream}@0`),
        childCreatedPayload: (version) => bytes(`${parent}@${version}`),
      });
    }

    async function append(stream: string) {
      const result = await store.append({ stream, payload: (version) => bytes(`${stream}@${version}`), recordedAt: at });
      return result.version;
    }

    /** Every entry of the subtree after `after`, page by page with the given page size. */
    async function readAll(subtree: Subtree, after: Position = 0n, limit = 1000, maxBytes = 1 << 20): Promise<FeedEntry[]> {
      await factory.feedCaughtUp?.(store);
      const entries: FeedEntry[] = [];
      let position = after;
      for (let pages = 0; ; pages++) {
        assert.ok(pages < 100_000, 'the feed keeps saying more');
        const page = await store.readFeed({ after: position, subtree, limit, maxBytes });
        assert.ok(page.reached >= position, `reached ${page.reached} went back from ${position}`);
        assert.ok(page.entries.length <= limit, 'no more entries than the limit');
        for (const entry of page.entries) {
          assert.ok(entry.position > position && entry.position <= page.reached, `entry ${entry.position} outside (${position}, ${page.reached}]`);
        }
        entries.push(...page.entries);
        if (!page.more) return entries;
        assert.ok(page.reached > position || page.entries.length > 0, 'a page that says more moves on');
        position = page.reached;
      }
    }

    const label = (entry: FeedEntry) => text(entry.payload);

    it('holds every entry once, each stream in version order, positions strictly increasing', async () => {
      const streams = Array.from({ length: 12 }, (_, i) => `/s${i}`);
      for (const stream of streams) await create(stream);
      // Concurrent appends to every stream: they land in one or more group commits.
      const expected = new Set<string>(['root', '/@1', ...streams.map((s) => `${s}@0`)]);
      await Promise.all(
        streams.map(async (stream) => {
          for (let i = 0; i < 10; i++) expected.add(`${stream}@${await append(stream)}`);
        }),
      );
      // The root's child-created entries: /@1 .. /@12.
      for (let v = 1; v <= streams.length; v++) expected.add(`/@${v}`);

      const feed = await readAll(everything);
      const labels = feed.map(label);
      assert.equal(new Set(labels).size, labels.length, 'no entry twice');
      assert.deepEqual(new Set(labels), expected);
      for (let i = 1; i < feed.length; i++) {
        assert.ok((feed[i]?.position ?? 0n) > (feed[i - 1]?.position ?? 0n), 'positions strictly increase');
      }
      const versions = new Map<string, bigint>();
      for (const entry of feed) {
        const previous = versions.get(entry.stream);
        if (previous !== undefined) assert.equal(entry.version, previous + 1n, `${entry.stream} in version order`);
        assert.equal(label(entry), `${entry.stream === '/' && entry.version === 0n ? 'root' : `${entry.stream}@${entry.version}`}`);
        versions.set(entry.stream, entry.version);
      }
      assert.equal(await store.feedHead(), feed[feed.length - 1]?.position);
    });

    it('resumes after any position with exactly the rest', async () => {
      await create('/a');
      await create('/b');
      for (let i = 0; i < 5; i++) {
        await append('/a');
        await append('/b');
      }
      const all = await readAll(everything);
      for (let cut = 0; cut < all.length; cut++) {
        const after = cut === 0 ? 0n : (all[cut - 1]?.position ?? 0n);
        const rest = await readAll(everything, after, 3);
        assert.deepEqual(rest.map(label), all.slice(cut).map(label), `after position ${after}`);
      }
    });

    it('reads a subtree: the stream and its descendants, or the stream alone', async () => {
      for (const stream of ['/a', '/a/b', '/a/b/c', '/ab', '/z']) await create(stream);
      for (const stream of ['/a', '/a/b/c', '/ab', '/z', '/a/b']) await append(stream);
      const subtree = await readAll({ path: '/a', descendants: true }, 0n, 2);
      assert.deepEqual(
        subtree.map(label).sort(),
        ['/a@0', '/a@1', '/a@2', '/a/b@0', '/a/b@1', '/a/b@2', '/a/b/c@0', '/a/b/c@1'].sort(),
        'no /ab: a subtree is whole path segments',
      );
      const alone = await readAll({ path: '/a', descendants: false });
      assert.deepEqual(alone.map(label), ['/a@0', '/a@1', '/a@2']);
      assert.deepEqual((await readAll({ path: '/nothing', descendants: true })).map(label), []);
    });

    it('bounds a page by bytes, with at least one entry', async () => {
      await create('/big');
      for (let i = 0; i < 4; i++) {
        await store.append({ stream: '/big', payload: () => new Uint8Array(1000).fill(i), recordedAt: at });
      }
      await factory.feedCaughtUp?.(store);
      const page = await store.readFeed({ after: 0n, subtree: { path: '/big', descendants: false }, limit: 100, maxBytes: 1500 });
      assert.ok(page.entries.length >= 1 && page.entries.length <= 2, `${page.entries.length} entries`);
      assert.equal(page.more, true);
      const tiny = await store.readFeed({ after: 0n, subtree: { path: '/big', descendants: false }, limit: 100, maxBytes: 1 });
      assert.equal(tiny.entries.length, 1, 'one entry even when it alone passes the bound');
      assert.equal(tiny.reached, tiny.entries[0]?.position, 'the page covers the feed up to its last entry');
      assert.equal((await readAll({ path: '/big', descendants: false }, 0n, 1, 1)).length, 5);
    });

    it('holds entries of 1 MiB and of the configured maximum whole, in order, beside small ones', async () => {
      // Bytes no codec could shrink; on DynamoDB both are split over chunk items (issue 17).
      const large = [1 << 20, maxStoredEntryBytes(DEFAULT_LIMITS)].map((size) => new Uint8Array(randomBytes(size)));
      await create('/large');
      await create('/small');
      for (const payload of large) {
        await store.append({ stream: '/large', payload: () => payload, recordedAt: at });
        await append('/small');
      }
      // A page of 3 MiB (the server's): the largest entry passes it alone, as one page of its own.
      const feed = await readAll(everything, 0n, 1000, 3 << 20);
      const positions = feed.map((entry) => entry.position);
      assert.deepEqual([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), positions, 'positions increase');
      const ofLarge = feed.filter((entry) => entry.stream === '/large');
      assert.deepEqual(ofLarge.map((entry) => entry.version), [0n, 1n, 2n], 'every entry once, in version order');
      assert.equal(label(ofLarge[0] as FeedEntry), '/large@0');
      large.forEach((payload, i) => {
        const got = ofLarge[i + 1]?.payload ?? new Uint8Array(0);
        assert.equal(got.byteLength, payload.byteLength, `entry ${i + 1}: size`);
        assert.ok(Buffer.from(got).equals(payload), `entry ${i + 1}: the same bytes`);
      });
      assert.deepEqual(
        feed.filter((entry) => entry.stream === '/small').map(label),
        ['/small@0', '/small@1', '/small@2'],
      );
      // The bytes bound counts a large entry whole: a page of 1 MiB stops before the first.
      const bounded = await store.readFeed({ after: 0n, subtree: { path: '/large', descendants: false }, limit: 100, maxBytes: 1 << 20 });
      assert.deepEqual(bounded.entries.map(label), ['/large@0']);
      assert.equal(bounded.more, true);
      // Read one at a time, each whole.
      const single = await readAll({ path: '/large', descendants: false }, 0n, 1, 1);
      assert.deepEqual(single.map((entry) => entry.payload.byteLength), [ofLarge[0]?.payload.byteLength, ...large.map((p) => p.byteLength)]);
    });

    it('says where the feed ends: its head, and no more past it', async () => {
      await create('/h');
      await append('/h');
      await factory.feedCaughtUp?.(store);
      const head = await store.feedHead();
      const page = await store.readFeed({ after: head, subtree: everything, limit: 10, maxBytes: 1 << 20 });
      assert.deepEqual(page.entries, []);
      assert.equal(page.more, false);
      assert.equal(page.reached, head);
      await append('/h');
      const next = await readAll(everything, head);
      assert.deepEqual(next.map(label), ['/h@2']);
      assert.ok((next[0]?.position ?? 0n) > head);
    });

    it('keeps positions across a reopen, and numbers new entries after them', async () => {
      await create('/r');
      await append('/r');
      const before = await readAll(everything);
      await store.close();
      const reopened = await factory.reopen(store);
      try {
        await reopened.append({ stream: '/r', payload: (version) => bytes(`/r@${version}`), recordedAt: at });
        await factory.feedCaughtUp?.(reopened);
        const page = await reopened.readFeed({ after: 0n, subtree: everything, limit: 1000, maxBytes: 1 << 20 });
        assert.deepEqual(page.entries.slice(0, before.length).map((e) => [e.position, label(e)]), before.map((e) => [e.position, label(e)]));
        assert.equal(page.entries[before.length] && label(page.entries[before.length] as FeedEntry), '/r@2');
        assert.ok((page.entries[before.length]?.position ?? 0n) > (before[before.length - 1]?.position ?? 0n));
      } finally {
        await reopened.close();
      }
    });
  });
}
