import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { Direction, type Entry, type Event, type SubscribeResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { EventStore } from '../../src/store/port';
import { eventually as waitFor } from '../helpers/eventually';
import { watchWriteBuffers } from '../helpers/write-buffers';
import { api, dataOf, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';

/** How the suite gets a store: undefined means the server's default (the embedded store). */
export interface ApiSuiteOptions {
  store?: () => EventStore;
  /**
   * Entries written by the subscription stress tests (default 3000). A store that is slower per
   * append (DynamoDB Local on a 2-core machine) runs fewer, to keep the suite's time bounded;
   * the properties checked are the same.
   */
  stressEntries?: number;
}

/**
 * The gRPC API suite: the real server on a loopback port, spoken to over real gRPC. Every store
 * runs it, so each store answers every RPC the same way.
 */
export function runApiSuite(name: string, options: ApiSuiteOptions = {}): void {
  describe(`gRPC API: ${name}`, function () {
    let test: TestServer;
    let eh: Api;
    let streamCounter = 0;
    /** A fresh top-level stream name, so tests do not see each other's data. */
    const fresh = (prefix = 's') => `/${prefix}-${process.pid}-${++streamCounter}`;

    before(async () => {
      test = await startTestServer({ limits: { maxEventsPerEntry: 50, maxEventBytes: 64 * 1024, maxEntryBytes: 256 * 1024, maxSnapshotBytes: 64 * 1024 } }, options.store);
      eh = api(test.client);
    });
    after(async () => test.stop());

    describe('CreateStream', () => {
      it('creates a stream with entry 0 and records it in its parent', async () => {
        const stream = fresh();
        const rootBefore = await eh.describeStream({ stream: '/' });
        const created = await eh.createStream({ stream });
        assert.equal(created.head?.version, 0n);
        assert.deepEqual(created.created, [stream]);

        const own = await eh.read({ stream });
        assert.deepEqual(own.entries.map((e) => e.events.map((ev) => ev.type)), [['$stream.started']]);
        const root = await eh.read({ stream: '/', fromVersion: rootBefore.headVersion + 1n, limit: 1000 });
        const childCreated = root.entries.flatMap((e) => e.events).filter((e) => e.type === '$stream.child-created');
        assert.ok(childCreated.some((e) => (dataOf(e) as { child: string }).child === stream));
      });

      it('writes initial events as entry 1', async () => {
        const stream = fresh();
        const created = await eh.createStream({ stream, events: [jsonEvent('opened', { n: 1 })] });
        assert.equal(created.head?.version, 1n);
        const page = await eh.read({ stream, fromVersion: 1n });
        assert.equal(page.entries[0]?.events[0]?.type, 'opened');
      });

      it('answers NOT_FOUND for a missing parent, unless create_parents', async () => {
        const top = fresh();
        const details = await rejection(eh.createStream({ stream: `${top}/a/b` }), status.NOT_FOUND);
        assert.equal(details.reason, 'PARENT_NOT_FOUND');
        assert.equal(details.metadata.parent, `${top}/a`);
        await rejection(eh.describeStream({ stream: top }), status.NOT_FOUND);

        const created = await eh.createStream({ stream: `${top}/a/b`, createParents: true });
        assert.deepEqual(created.created, [top, `${top}/a`, `${top}/a/b`]);
        const children = await eh.listChildren({ stream: `${top}/a` });
        assert.deepEqual(children.children, [`${top}/a/b`]);
      });

      it('answers ALREADY_EXISTS for an existing stream, the root included', async () => {
        const stream = fresh();
        await eh.createStream({ stream });
        const details = await rejection(eh.createStream({ stream }), status.ALREADY_EXISTS);
        assert.equal(details.reason, 'STREAM_ALREADY_EXISTS');
        await rejection(eh.createStream({ stream: '/' }), status.ALREADY_EXISTS);
      });

      it('answers a retry with the same request id with the original result, writing nothing', async () => {
        const top = fresh();
        const request = { stream: `${top}/a/b`, createParents: true, events: [jsonEvent('opened', {})], requestId: 'create-1' };
        const first = await eh.createStream(request);
        assert.deepEqual([first.created, first.deduplicated], [[top, `${top}/a`, `${top}/a/b`], false]);
        const parentBefore = await eh.describeStream({ stream: `${top}/a` });

        // As after a lost reply: the same request again.
        const retry = await eh.createStream(request);
        assert.deepEqual([retry.head?.version, retry.created, retry.deduplicated], [1n, first.created, true]);
        assert.equal((await eh.describeStream({ stream: `${top}/a` })).headVersion, parentBefore.headVersion);
        assert.equal((await eh.describeStream({ stream: `${top}/a/b` })).headVersion, 1n);
        const started = (await eh.read({ stream: `${top}/a/b`, limit: 1 })).entries[0]?.events[0];
        assert.deepEqual(dataOf(started ?? assert.fail()), { stream: `${top}/a/b`, parent: `${top}/a`, requestId: 'create-1' });

        // Another request id, or none, on the existing stream is a conflict as before.
        await rejection(eh.createStream({ ...request, requestId: 'create-2' }), status.ALREADY_EXISTS);
        await rejection(eh.createStream({ stream: `${top}/a/b` }), status.ALREADY_EXISTS);
        const tooLong = await rejection(eh.createStream({ stream: fresh(), requestId: 'r'.repeat(129) }), status.INVALID_ARGUMENT);
        assert.equal(tooLong.violations[0]?.field, 'request_id');
      });

      it('refuses bad names with INVALID_ARGUMENT naming the field and rule', async () => {
        const bad = ['', 'relative', '/trailing/', '/a//b', '/sp ace', '/ü', '/a/..', `/${'x'.repeat(129)}`,
          '/' + Array.from({ length: 17 }, () => 'a').join('/'), '/$/system'];
        for (const stream of bad) {
          const details = await rejection(eh.createStream({ stream }), status.INVALID_ARGUMENT);
          assert.equal(details.violations[0]?.field, 'stream', `for ${JSON.stringify(stream)}`);
          assert.ok((details.violations[0]?.description ?? '').length > 0);
        }
      });
    });

    describe('Append', () => {
      let stream: string;
      beforeEach(async () => {
        stream = fresh();
        await eh.createStream({ stream });
      });

      it('appends entries at increasing versions and round-trips every event field', async () => {
        const occurredAt = new Date('2025-05-05T05:05:05.005Z');
        const first = await eh.append({
          stream,
          events: [
            jsonEvent('order.placed', { id: 42 }, { id: 'evt-1', metadata: { user: 'ann' }, occurredAt }),
            { type: 'blob', data: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' },
          ],
        });
        assert.deepEqual(first.cursor, { stream, version: 1n });
        assert.equal(first.deduplicated, false);
        const second = await eh.append({ stream, events: [jsonEvent('order.paid', {})] });
        assert.equal(second.cursor?.version, 2n);

        const page = await eh.read({ stream, fromVersion: 1n });
        const [placed, blob] = page.entries[0]?.events ?? [];
        assert.equal(placed?.id, 'evt-1');
        assert.equal(placed?.type, 'order.placed');
        assert.deepEqual(dataOf(placed), { id: 42 });
        assert.equal(placed?.contentType, 'application/json');
        assert.deepEqual(placed?.metadata, { user: 'ann' });
        assert.equal(placed?.occurredAt?.getTime(), occurredAt.getTime());
        assert.deepEqual([...(blob?.data ?? [])], [0, 1, 2, 255]);
        assert.match(blob?.id ?? '', /^[0-9a-f-]{36}$/, 'a server-generated id');
        assert.ok(page.entries[0]?.recordedAt instanceof Date);
      });

      it('answers ABORTED with the actual head when the expected version is wrong', async () => {
        await eh.append({ stream, events: [jsonEvent('a', {})], expectedVersion: 0n });
        const details = await rejection(eh.append({ stream, events: [jsonEvent('b', {})], expectedVersion: 0n }), status.ABORTED);
        assert.equal(details.reason, 'WRONG_EXPECTED_VERSION');
        assert.equal(details.metadata.actual_version, '1');
        assert.equal(details.metadata.expected_version, '0');
        assert.equal((await eh.describeStream({ stream })).headVersion, 1n);
      });

      it('never writes twice for a retried request id', async () => {
        const request = { stream, events: [jsonEvent('paid', { amount: 5 })], expectedVersion: 0n, requestId: 'pay-1' };
        const original = await eh.append(request);
        const retry = await eh.append(request);
        assert.equal(retry.cursor?.version, original.cursor?.version);
        assert.equal(retry.deduplicated, true);
        assert.equal((await eh.describeStream({ stream })).headVersion, 1n);
      });

      it('lets exactly one of 20 concurrent writers win each version', async () => {
        const won: bigint[] = [];
        for (let round = 0; round < 5; round++) {
          const head = (await eh.describeStream({ stream })).headVersion;
          const outcomes = await Promise.allSettled(
            Array.from({ length: 20 }, (_, w) => eh.append({ stream, events: [jsonEvent('w', { w, round })], expectedVersion: head })),
          );
          const winners = outcomes.filter((o) => o.status === 'fulfilled');
          assert.equal(winners.length, 1);
          for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code: number }).code, status.ABORTED);
          won.push((winners[0] as PromiseFulfilledResult<{ cursor?: { version: bigint } }>).value.cursor?.version ?? -1n);
        }
        assert.deepEqual(won, [1n, 2n, 3n, 4n, 5n]);
      });

      it('answers NOT_FOUND for a missing stream', async () => {
        const details = await rejection(eh.append({ stream: fresh(), events: [jsonEvent('a', {})] }), status.NOT_FOUND);
        assert.equal(details.reason, 'STREAM_NOT_FOUND');
      });

      it('refuses invalid events field by field and writes nothing', async () => {
        const cases: Array<[Array<Partial<Event>>, string]> = [
          [[], 'events'],
          [[{ type: '' }], 'events[0].type'],
          [[{ type: '$system' }], 'events[0].type'],
          [[{ type: 'ok', data: Buffer.from('{not json') }], 'events[0].data'],
          [[{ type: 'ok', contentType: 'not a type' }], 'events[0].content_type'],
          [[{ type: 'a', id: 'same' }, { type: 'b', id: 'same' }], 'events[1].id'],
          [[{ type: 'has space' }], 'events[0].type'],
        ];
        for (const [events, field] of cases) {
          const details = await rejection(eh.append({ stream, events }), status.INVALID_ARGUMENT);
          assert.ok(details.violations.some((v) => v.field === field), `${field} in ${JSON.stringify(details.violations)}`);
        }
        const negative = await rejection(eh.append({ stream, events: [jsonEvent('a', {})], expectedVersion: -1n }), status.INVALID_ARGUMENT);
        assert.equal(negative.violations[0]?.field, 'expected_version');
        const longId = await rejection(eh.append({ stream, events: [jsonEvent('a', {})], requestId: 'r'.repeat(129) }), status.INVALID_ARGUMENT);
        assert.equal(longId.violations[0]?.field, 'request_id');
        assert.equal((await eh.describeStream({ stream })).headVersion, 0n, 'nothing was written');
      });

      it('answers RESOURCE_EXHAUSTED naming the limit for oversized input', async () => {
        const tooMany = await rejection(
          eh.append({ stream, events: Array.from({ length: 51 }, () => jsonEvent('a', {})) }),
          status.RESOURCE_EXHAUSTED,
        );
        assert.equal(tooMany.metadata.limit, 'max_events_per_entry');
        const bigEvent = await rejection(
          eh.append({ stream, events: [{ type: 'big', data: Buffer.alloc(65 * 1024), contentType: 'application/octet-stream' }] }),
          status.RESOURCE_EXHAUSTED,
        );
        assert.equal(bigEvent.metadata.limit, 'max_event_bytes');
        const bigEntry = await rejection(
          eh.append({
            stream,
            events: Array.from({ length: 5 }, () => ({ type: 'big', data: Buffer.alloc(60 * 1024), contentType: 'application/octet-stream' })),
          }),
          status.RESOURCE_EXHAUSTED,
        );
        assert.equal(bigEntry.metadata.limit, 'max_entry_bytes');
        assert.equal((await eh.describeStream({ stream })).headVersion, 0n);
      });
    });

    describe('Read', () => {
      let stream: string;
      before(async () => {
        stream = fresh();
        await eh.createStream({ stream });
        for (let i = 1; i <= 25; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
      });

      it('pages forwards with more and next_version', async () => {
        const seen: bigint[] = [];
        let from: bigint | undefined;
        for (;;) {
          const page = await eh.read({ stream, limit: 10, ...(from !== undefined ? { fromVersion: from } : {}) });
          seen.push(...page.entries.map((e) => e.version));
          assert.equal(page.headVersion, 25n);
          if (!page.more) break;
          from = page.nextVersion;
        }
        assert.deepEqual(seen, Array.from({ length: 26 }, (_, i) => BigInt(i)));
      });

      it('reads backwards from the head by default', async () => {
        const page = await eh.read({ stream, direction: Direction.DIRECTION_BACKWARD, limit: 3 });
        assert.deepEqual(page.entries.map((e) => e.version), [25n, 24n, 23n]);
        assert.equal(page.more, true);
        assert.equal(page.nextVersion, 22n);
      });

      it('bounds a page by decoded bytes, so compressible entries stay within the message limit', async () => {
        // Each entry holds 240 KB of events but only a few hundred bytes stored: a page bounded
        // by stored bytes alone (all 21 entries) would pass the 4 MiB a client accepts by default.
        const big = fresh();
        await eh.createStream({ stream: big });
        const text = 'a'.repeat(60_000);
        for (let i = 1; i <= 20; i++) {
          await eh.append({ stream: big, events: Array.from({ length: 4 }, () => jsonEvent('big', { i, text })) });
        }
        const first = await eh.read({ stream: big });
        assert.ok(first.entries.length < 21, `one page held all ${first.entries.length} entries`);
        assert.equal(first.more, true);
        const seen = first.entries.map((e) => e.version);
        let page = first;
        while (page.more) {
          page = await eh.read({ stream: big, fromVersion: page.nextVersion });
          seen.push(...page.entries.map((e) => e.version));
          assert.deepEqual(dataOf(page.entries[0]?.events[0] ?? assert.fail()), { i: Number(page.entries[0]?.version), text });
        }
        assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => BigInt(i)));
      });

      it('returns an empty page past the head', async () => {
        const page = await eh.read({ stream, fromVersion: 1000n });
        assert.deepEqual(page.entries, []);
        assert.equal(page.more, false);
      });

      it('refuses a bad limit and a missing stream', async () => {
        const details = await rejection(eh.read({ stream, limit: 1001 }), status.INVALID_ARGUMENT);
        assert.equal(details.violations[0]?.field, 'limit');
        await rejection(eh.read({ stream: fresh() }), status.NOT_FOUND);
      });
    });

    describe('Snapshots', () => {
      let stream: string;
      beforeEach(async () => {
        stream = fresh();
        await eh.createStream({ stream });
        for (let i = 1; i <= 4; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
      });
      const state = (n: number) => Buffer.from(JSON.stringify({ total: n }));

      it('keeps only newer snapshots and returns the entries after them', async () => {
        assert.deepEqual(await eh.putSnapshot({ stream, perspective: 'totals:v1', version: 2n, data: state(3) }), { stored: true, storedVersion: 2n });
        assert.deepEqual(await eh.putSnapshot({ stream, perspective: 'totals:v1', version: 1n, data: state(1) }), { stored: false, storedVersion: 2n });
        const got = await eh.getSnapshot({ stream, perspective: 'totals:v1', entriesAfter: true });
        assert.equal(got.snapshot?.version, 2n);
        assert.deepEqual(JSON.parse(Buffer.from(got.snapshot?.data ?? []).toString()), { total: 3 });
        assert.equal(got.snapshot?.contentType, 'application/json');
        assert.deepEqual(got.entries.map((e) => e.version), [3n, 4n]);
        assert.equal(got.more, false);
      });

      it('counts the snapshot in the response size: a 3 MiB snapshot and 1.2 MiB of entries after it stay under a default client\'s 4 MiB', async () => {
        // The default limits (the suite's server has small ones), and a client with default options.
        const own = await startTestServer({}, options.store);
        try {
          const calls = api(own.client);
          const big = fresh('big');
          await calls.createStream({ stream: big });
          await calls.append({ stream: big, events: [jsonEvent('n', { i: 1 })] });
          // At max_snapshot_bytes; compressible, so that it fits a DynamoDB item: the response
          // carries it decoded.
          const data = Buffer.alloc(3 * 1024 * 1024, 's');
          await calls.putSnapshot({ stream: big, perspective: 'big:v1', version: 1n, data, contentType: 'application/octet-stream' });
          for (let i = 2; i <= 4; i++) await calls.append({ stream: big, events: [jsonEvent('n', { i, pad: 'x'.repeat(400_000) })] });

          const got = await calls.getSnapshot({ stream: big, perspective: 'big:v1', entriesAfter: true });
          assert.equal(got.snapshot?.version, 1n);
          assert.ok(Buffer.from(got.snapshot?.data ?? []).equals(data));
          assert.equal(got.more, true);
          // The rest is read from next_version.
          const rest = await calls.read({ stream: big, fromVersion: got.nextVersion });
          assert.deepEqual([...got.entries, ...rest.entries].map((e) => e.version), [2n, 3n, 4n]);
          assert.equal(rest.more, false);
        } finally {
          await own.stop();
        }
      });

      it('answers FAILED_PRECONDITION for a snapshot past the head', async () => {
        const details = await rejection(eh.putSnapshot({ stream, perspective: 'p', version: 5n, data: state(0) }), status.FAILED_PRECONDITION);
        assert.equal(details.reason, 'SNAPSHOT_AHEAD_OF_STREAM');
        assert.equal(details.metadata.head_version, '4');
      });

      it('without a snapshot returns the entries from the beginning', async () => {
        const got = await eh.getSnapshot({ stream, perspective: 'none:v1', entriesAfter: true, limit: 2 });
        assert.equal(got.snapshot, undefined);
        assert.deepEqual(got.entries.map((e) => e.version), [0n, 1n]);
        assert.equal(got.more, true);
        assert.equal(got.nextVersion, 2n);
      });

      it('deletes snapshots and lists perspectives in DescribeStream', async () => {
        await eh.putSnapshot({ stream, perspective: 'a:v1', version: 1n, data: state(1) });
        await eh.putSnapshot({ stream, perspective: 'b:v1', version: 1n, data: state(1) });
        assert.deepEqual((await eh.describeStream({ stream })).snapshotPerspectives, ['a:v1', 'b:v1']);
        assert.equal((await eh.deleteSnapshot({ stream, perspective: 'a:v1' })).deleted, true);
        assert.equal((await eh.deleteSnapshot({ stream, perspective: 'a:v1' })).deleted, false);
        assert.deepEqual((await eh.describeStream({ stream })).snapshotPerspectives, ['b:v1']);
      });

      it('refuses bad snapshot input', async () => {
        const noPerspective = await rejection(eh.putSnapshot({ stream, version: 1n, data: state(1) }), status.INVALID_ARGUMENT);
        assert.equal(noPerspective.violations[0]?.field, 'perspective');
        const tooBig = await rejection(eh.putSnapshot({ stream, perspective: 'p', version: 1n, data: Buffer.alloc(65 * 1024) }), status.INVALID_ARGUMENT);
        assert.equal(tooBig.violations[0]?.field, 'data');
        await rejection(eh.getSnapshot({ stream: fresh(), perspective: 'p' }), status.NOT_FOUND);
      });
    });

    describe('DescribeStream and ListChildren', () => {
      it('describes head, creation time, children and bytes', async () => {
        const stream = fresh();
        const before = Date.now();
        await eh.createStream({ stream });
        await eh.createStream({ stream: `${stream}/child` });
        await eh.append({ stream, events: [jsonEvent('a', { text: 'x'.repeat(100) })] });
        const info = await eh.describeStream({ stream });
        assert.equal(info.stream, stream);
        assert.equal(info.headVersion, 2n);
        assert.equal(info.childCount, 1n);
        assert.ok(info.bytesStored > 0n);
        assert.ok((info.createdAt?.getTime() ?? 0) >= before - 1000);
        await rejection(eh.describeStream({ stream: fresh() }), status.NOT_FOUND);
      });

      it('pages through many children with tokens', async () => {
        const stream = fresh();
        await eh.createStream({ stream });
        const names = Array.from({ length: 23 }, (_, i) => `${stream}/c${String(i).padStart(2, '0')}`);
        await Promise.all(names.map((child) => eh.createStream({ stream: child })));
        const listed: string[] = [];
        let pageToken = '';
        do {
          const page = await eh.listChildren({ stream, limit: 10, pageToken });
          listed.push(...page.children);
          pageToken = page.nextPageToken;
        } while (pageToken !== '');
        assert.deepEqual(listed, names);
        const bad = await rejection(eh.listChildren({ stream, pageToken: 'garbage!' }), status.INVALID_ARGUMENT);
        assert.equal(bad.violations[0]?.field, 'page_token');
      });
    });

    describe('Subscribe', () => {
      /**
       * Collects subscription messages until `until` says stop: the entries, whether they came one
       * per message or in batches (`batches` counts the `entries` messages, `largestBatch` their
       * largest), and how many entries came before `caught_up`.
       */
      function collect(
        stream: string,
        fromVersion: bigint | undefined,
        until: (entries: Entry[], caughtUpAt: number) => boolean,
        maxEntriesPerMessage?: number,
      ) {
        const call = test.client.subscribe({
          stream,
          ...(fromVersion !== undefined ? { fromVersion } : {}),
          ...(maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage } : {}),
        });
        const entries: Entry[] = [];
        let caughtUpAt = -1;
        let batches = 0;
        let largestBatch = 0;
        const done = new Promise<{ entries: Entry[]; caughtUpAt: number; batches: number; largestBatch: number }>((resolve, reject) => {
          call.on('data', (message: SubscribeResponse) => {
            if (message.message?.$case === 'entry') entries.push(message.message.value);
            if (message.message?.$case === 'entries') {
              batches++;
              largestBatch = Math.max(largestBatch, message.message.value.entries.length);
              entries.push(...message.message.value.entries);
            }
            if (message.message?.$case === 'caughtUp') caughtUpAt = entries.length;
            if (until(entries, caughtUpAt)) {
              call.cancel();
              resolve({ entries, caughtUpAt, batches, largestBatch });
            }
          });
          call.on('error', (error: ServiceError) => {
            if (error.code !== status.CANCELLED) reject(error);
          });
        });
        return { call, done };
      }

      it('catches up, says so, then streams live entries', async () => {
        const stream = fresh();
        await eh.createStream({ stream });
        for (let i = 1; i <= 5; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
        const sub = collect(stream, 2n, (entries) => entries.length === 6);
        await waitFor(() => test.server.hub.subscriberCount() > 0);
        for (let i = 6; i <= 7; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
        const { entries, caughtUpAt, batches } = await sub.done;
        assert.deepEqual(entries.map((e) => e.version), [2n, 3n, 4n, 5n, 6n, 7n]);
        assert.equal(caughtUpAt, 4, 'caught_up after the 4 stored entries');
        assert.deepEqual(dataOf(entries[5]?.events[0] as Event), { i: 7 });
        assert.equal(batches, 0, 'a client that does not ask for batches gets one entry per message');
      });

      it('sends stored entries in batches to a client that asks, then caught_up, then live entries', async () => {
        const stream = fresh();
        await eh.createStream({ stream });
        for (let i = 1; i <= 9; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
        const sub = collect(stream, 2n, (entries) => entries.length === 10, 3);
        await waitFor(() => test.server.hub.subscriberCount() > 0);
        for (let i = 10; i <= 11; i++) await eh.append({ stream, events: [jsonEvent('n', { i })] });
        const { entries, caughtUpAt, batches, largestBatch } = await sub.done;
        assert.deepEqual(entries.map((e) => e.version), [2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n, 11n]);
        assert.equal(caughtUpAt, 8, 'caught_up after the 8 stored entries');
        assert.equal(batches >= 3 && largestBatch, 3, `${batches} batches of at most 3 entries, the most asked for`);
        assert.deepEqual(dataOf(entries[7]?.events[0] as Event), { i: 9 }, 'entries in batches are whole');
      });

      for (const maxEntriesPerMessage of [undefined, 100]) {
        const framing = maxEntriesPerMessage === undefined ? 'one entry per message' : `batches of up to ${maxEntriesPerMessage}`;
        it(`has no gap and no duplicate when appends race the switch to live (${framing})`, async function () {
          this.timeout(180_000);
          const stream = fresh();
          await eh.createStream({ stream });
          const total = options.stressEntries ?? 3000;
          let appended = 0;
          const writer = (async () => {
            // Concurrent batches so that appends keep landing while subscribers switch over.
            while (appended < total) {
              const batch = Array.from({ length: Math.min(25, total - appended) }, () => eh.append({ stream, events: [jsonEvent('n', {})] }));
              appended += batch.length;
              await Promise.all(batch);
            }
          })();
          // Subscribers join at different moments of the write burst.
          const subscribers: Array<Promise<{ entries: Entry[]; caughtUpAt: number; batches: number; largestBatch: number; storedBefore: number }>> = [];
          for (let i = 0; i < 5; i++) {
            await waitFor(() => appended >= (i * total) / 5, 120_000);
            // Stored before it subscribed: caught_up must come after at least these.
            const storedBefore = Number((await eh.describeStream({ stream })).headVersion) + 1;
            subscribers.push(
              collect(stream, 0n, (entries, caughtUpAt) => entries.length === total + 1 && caughtUpAt >= 0, maxEntriesPerMessage).done.then((r) => ({
                ...r,
                storedBefore,
              })),
            );
          }
          await writer;
          for (const result of await Promise.all(subscribers)) {
            const versions = result.entries.map((e) => e.version);
            assert.equal(versions.length, total + 1);
            versions.forEach((v, i) => assert.equal(v, BigInt(i)));
            assert.ok(result.caughtUpAt >= result.storedBefore, `caught_up after ${result.caughtUpAt} entries, ${result.storedBefore} stored before subscribing`);
            if (maxEntriesPerMessage === undefined) assert.equal(result.batches, 0, 'one entry per message');
            else assert.ok(result.batches > 0 && result.largestBatch <= maxEntriesPerMessage, `${result.batches} batches, the largest of ${result.largestBatch}`);
          }
        });
      }

      for (const maxEntriesPerMessage of [undefined, 1000]) {
        // In batches, each of the messages grpc-js holds is at most BATCH_BYTES (unit-tested).
        const framing = maxEntriesPerMessage === undefined ? 'one entry per message' : 'in batches';
        it(`lets a slow subscriber get everything later while the server holds a bounded backlog (${framing})`, async function () {
          this.timeout(180_000);
          const small = await startTestServer({ subscriberBufferEntries: 50 }, options.store);
          try {
            const client = api(small.client);
            const stream = fresh('slow');
            await client.createStream({ stream });
            const call = small.client.subscribe({ stream, ...(maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage } : {}) });
            call.on('error', () => undefined); // the test cancels it at the end
            const entries: Entry[] = [];
            call.on('data', (message: SubscribeResponse) => {
              if (message.message?.$case === 'entry') entries.push(message.message.value);
              if (message.message?.$case === 'entries') entries.push(...message.message.value.entries);
            });
            await waitFor(() => entries.length === 1);
            call.pause(); // the client stops reading
            const payload = { text: 'y'.repeat(2000) };
            // What grpc-js holds for the paused client is what could grow (the hub's queue cannot).
            const buffers = watchWriteBuffers('/eventhorizon.v1.EventHorizon/Subscribe');
            const rounds = Math.ceil((options.stressEntries ?? 3000) / 50);
            try {
              for (let i = 0; i < rounds; i++) {
                await Promise.all(Array.from({ length: 50 }, () => client.append({ stream, events: [jsonEvent('big', payload)] })));
              }
            } finally {
              buffers.stop();
            }
            assert.ok(buffers.largestMessages <= 17, `the server buffered ${buffers.largestMessages} messages for the paused client`);
            call.resume();
            await waitFor(() => entries.length === rounds * 50 + 1, 120_000);
            entries.forEach((e, i) => assert.equal(e.version, BigInt(i)));
            call.cancel();
          } finally {
            await small.stop();
          }
        });
      }

      it('sends heartbeats while idle', async () => {
        const quick = await startTestServer({ heartbeatIntervalMs: 50 }, options.store);
        try {
          const stream = fresh('hb');
          await api(quick.client).createStream({ stream });
          const call = quick.client.subscribe({ stream });
          let heartbeats = 0;
          call.on('data', (message: { message?: { $case: string } }) => {
            if (message.message?.$case === 'heartbeat') heartbeats++;
          });
          call.on('error', () => undefined);
          await waitFor(() => heartbeats >= 2);
          call.cancel();
        } finally {
          await quick.stop();
        }
      });

      it('answers NOT_FOUND and INVALID_ARGUMENT as a stream error', async () => {
        const missing = await streamError(test.client.subscribe({ stream: fresh() }));
        assert.equal(missing.code, status.NOT_FOUND);
        const invalid = await streamError(test.client.subscribe({ stream: 'bad' }));
        assert.equal(invalid.code, status.INVALID_ARGUMENT);
      });

      it('releases everything on client cancel and on deadline', async () => {
        const stream = fresh();
        await eh.createStream({ stream });
        const before = test.server.hub.subscriberCount();
        const call = test.client.subscribe({ stream });
        call.on('error', () => undefined);
        await waitFor(() => test.server.hub.subscriberCount() === before + 1);
        call.cancel();
        await waitFor(() => test.server.hub.subscriberCount() === before);

        const timed = test.client.subscribe({ stream }, { deadline: Date.now() + 300 });
        const error = await streamError(timed);
        assert.equal(error.code, status.DEADLINE_EXCEEDED);
        await waitFor(() => test.server.hub.subscriberCount() === before);
      });

      it('ends subscriptions with UNAVAILABLE when the server shuts down', async () => {
        const own = await startTestServer({}, options.store);
        const stream = fresh('bye');
        await api(own.client).createStream({ stream });
        const call = own.client.subscribe({ stream });
        call.on('data', () => undefined);
        const ended = streamError(call);
        await waitFor(() => own.server.hub.subscriberCount() === 1);
        await own.stop();
        assert.equal((await ended).code, status.UNAVAILABLE);
      });
    });
  });
}

/** Resolves with the error a server stream ends with. */
function streamError(call: NodeJS.EventEmitter): Promise<{ code: number; details: string }> {
  return new Promise((resolve, reject) => {
    call.on('data', () => undefined);
    call.on('error', resolve);
    call.on('end', () => reject(new Error('the stream ended without an error')));
  });
}
