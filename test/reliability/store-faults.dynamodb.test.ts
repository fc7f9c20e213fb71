import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { paginateScan, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Metadata, credentials, status } from '@grpc/grpc-js';
import {
  AppendRequest,
  type AppendResponse,
  type DeepPartial,
  type Entry,
  type EventHorizonClient,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { checkHealth } from '../../src/observability/health-client';
import { SERVICE_NAME } from '../../src/server';
import { createDynamoDbClient, type DynamoDbStoreOptions } from '../../src/store/dynamodb/dynamodb-store';
import { EntryAttr, tableNames } from '../../src/store/dynamodb/tables';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { eventually } from '../helpers/eventually';
import { FaultProxy, PASS, type Fault, type FaultRule, type ProxyStats } from '../helpers/fault-proxy';
import { api, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';
import { recordSubscription, type RecordingSubscriber } from '../helpers/subscriber';
import { codeOf, statusName } from './support/grpc';
import { Random, seedFromEnv } from './support/random';

/**
 * Store faults: the server's DynamoDB store talks to DynamoDB Local through a fault-injecting
 * proxy (test/helpers/fault-proxy.ts), while writers append with request ids and retry on
 * UNAVAILABLE / DEADLINE_EXCEEDED with the same request id, as a client should. Afterwards an
 * independent reader (a second server and raw Queries, both on DynamoDB Local directly) checks
 * that no append was duplicated or silently lost.
 *
 * The store under test makes at most 2 attempts per request (production: 5) and waits 1 s per
 * request (production: 10 s), so that injected faults get past the SDK's own retries and reach
 * the server's error path instead of being absorbed.
 */

const FAULTY_STORE: Partial<DynamoDbStoreOptions> = { maxAttempts: 2, requestTimeoutMs: 1000 };
const STREAMS = 4;
const WRITERS = 6;
const APPENDS_PER_WRITER = 20;
/** Share of appends sent with the expected version their writer last saw. */
const EXPECTED_VERSION_SHARE = 0.3;
const CLIENT_ATTEMPTS = 8;
const CLIENT_DEADLINE_MS = 2500;

/** Operations that write events; the "after write" faults only make sense on these. */
const WRITES = new Set(['PutItem', 'TransactWriteItems']);

interface Planned {
  /** Request id, event id and the data's `rid` at once: each is checked separately. */
  rid: string;
  stream: string;
  useExpectedVersion: boolean;
  data: { rid: string; writer: number; n: number };
}

type Outcome =
  | { kind: 'acked'; version: bigint; deduplicated: boolean }
  | { kind: 'aborted' }
  | { kind: 'failed'; lastCode: number }
  | { kind: 'unexpected'; code: number | undefined; message: string };

interface AppendRecord {
  planned: Planned;
  expectedVersion?: bigint;
  outcome: Outcome;
  attempts: number;
  /** Status codes of the failed attempts (UNAVAILABLE or DEADLINE_EXCEEDED). */
  retriedOn: number[];
}

interface Scenario {
  name: string;
  /** The faults, chosen per request with the scenario's seeded PRNG. */
  rule: (random: Random) => FaultRule;
  /** Also asserts that some client retry found its original committed (deduplicated). */
  expectDeduplicated?: boolean;
  /**
   * What must have happened for the run to prove anything: appends failed to the client and were
   * retried (`retried`, the default), or requests reached DynamoDB after the store gave up on
   * them (`late`; too few delays outlast both SDK attempts to count on client-visible failures).
   */
  expect?: 'retried' | 'late';
  /**
   * Also subscribes to every stream on the faulty server and checks that each subscriber gets
   * every stored entry once, in order: an append committed by a lost write and answered later as
   * deduplicated was never published by the server, so the subscription must find it in the store.
   */
  subscribe?: boolean;
  /** Fewer appends where each fault costs seconds (default APPENDS_PER_WRITER). */
  appendsPerWriter?: number;
}

/** A fault with probability `p` for each request `applies` to, chosen from `faults`. */
function sometimes(p: number, faults: (random: Random) => Fault, applies: (operation: string) => boolean = () => true) {
  return (random: Random): FaultRule =>
    ({ operation }) =>
      applies(operation) && random.chance(p) ? faults(random) : PASS;
}

const SCENARIOS: Scenario[] = [
  { name: 'dropped connections (request never reaches DynamoDB)', rule: sometimes(0.4, () => ({ kind: 'drop' })) },
  {
    name: 'delays of 0.3-2 s (past the 1 s request timeout: late writes)',
    rule: sometimes(0.3, (random) => ({ kind: 'delay', ms: random.int(300, 2000) })),
    expect: 'late',
    appendsPerWriter: 10,
  },
  {
    name: '500 InternalServerError, and 502/503 pages that are not DynamoDB JSON',
    rule: sometimes(0.4, (random) =>
      random.pick<Fault>([
        { kind: 'error500' },
        { kind: 'raw', status: 502, body: '<html><body>502 Bad Gateway</body></html>' },
        { kind: 'raw', status: 503, body: '' },
      ]),
    ),
  },
  {
    name: 'throttling (ThrottlingException, ProvisionedThroughputExceededException)',
    rule: sometimes(0.4, (random) =>
      ({ kind: 'throttle', type: random.pick(['ThrottlingException', 'ProvisionedThroughputExceededException'] as const) }),
    ),
    // The SDK backs off longer after throttling (its retry of a throttled request waits ~0.5 s).
    appendsPerWriter: 10,
  },
  {
    name: 'connection reset after the write reached DynamoDB, or reply cut off mid-way',
    rule: sometimes(0.4, (random) => (random.chance(0.7) ? { kind: 'resetAfterWrite' } : { kind: 'truncate' }), (op) => WRITES.has(op)),
    expectDeduplicated: true,
    subscribe: true,
  },
  {
    name: 'all of them mixed, on every operation',
    appendsPerWriter: 14,
    rule: sometimes(0.4, (random) =>
      random.pick<Fault>([
        { kind: 'drop' },
        { kind: 'delay', ms: random.int(100, 1500) },
        { kind: 'error500' },
        { kind: 'throttle', type: 'ThrottlingException' },
        { kind: 'resetAfterWrite' },
        { kind: 'truncate' },
      ]),
    ),
  },
];

describe('Reliability: store faults (DynamoDB Local behind a fault-injecting proxy)', function () {
  let local: DynamoDbLocal;
  let proxy: FaultProxy;
  let raw: DynamoDBClient;
  const seed = seedFromEnv();

  before(async function () {
    local = await requireDynamoDbLocal(this);
    proxy = await FaultProxy.start(local.endpoint);
    raw = createDynamoDbClient(local.connection);
    process.stdout.write(`      store-faults seed: ${seed} (EH_SEED=${seed} replays the same choices)\n`);
  });

  after(async () => {
    raw?.destroy();
    await proxy?.close();
  });

  afterEach(() => {
    proxy.passAll();
    proxy.setDown(false);
  });

  SCENARIOS.forEach((scenario, index) => {
    it(`appends exactly once or fail with UNAVAILABLE/DEADLINE_EXCEEDED: ${scenario.name}`, async function () {
      this.timeout(90_000);
      const prefix = freshTablePrefix();
      // The independent reader first: it creates the tables, directly on DynamoDB Local.
      const reader = await startTestServer({}, () => localStore(local, prefix));
      const faulty = await startTestServer({}, () => localStore(local, prefix, { ...FAULTY_STORE, endpoint: proxy.endpoint }));
      try {
        const streams = Array.from({ length: STREAMS }, (_, i) => `/faults/s${i}`);
        for (const stream of streams) await api(faulty.client).createStream({ stream, createParents: true });
        const subscribers = scenario.subscribe ? streams.map((stream) => recordSubscription(faulty.client, stream, 0n)) : [];
        await Promise.all(subscribers.map((subscriber) => subscriber.caughtUp));

        const scenarioSeed = seed + index;
        const plan = planWorkload(new Random(scenarioSeed), streams, scenario.appendsPerWriter ?? APPENDS_PER_WRITER);
        proxy.takeStats(true);
        proxy.setRule(scenario.rule(new Random(scenarioSeed ^ 0x5eed)));
        const started = Date.now();
        const records = await runWorkload(faulty.client, plan, streams);
        proxy.passAll();
        const stats = proxy.takeStats();
        // Requests still delayed in the proxy land now (or fail); then DynamoDB no longer changes.
        await proxy.quiet(300);
        await checkSubscribers(api(reader.client), streams, subscribers);
        await faulty.stop();
        await proxy.quiet(300);

        report(scenario.name, records, stats, Date.now() - started);
        const unexpected = records.filter((r) => r.outcome.kind === 'unexpected');
        assert.deepEqual(
          unexpected.map((r) => `${r.planned.rid}: ${describeOutcome(r.outcome)}`),
          [],
          'every append ends acknowledged, ABORTED (expected version) or UNAVAILABLE/DEADLINE_EXCEEDED',
        );
        await checkStreams(api(reader.client), raw, prefix, streams, records);
        await retryFailedAppends(reader.client, records);

        // The faults must have reached the server's error path, not only the SDK's retries.
        assert.ok(Object.keys(stats.faults).length > 0, 'the proxy injected faults');
        if (scenario.expect === 'late') {
          assert.ok(stats.late > 0, 'some requests reached DynamoDB after the store had given up on them');
        } else {
          const retried = records.filter((r) => r.retriedOn.length > 0).length;
          assert.ok(retried > 0, 'some appends failed with UNAVAILABLE/DEADLINE_EXCEEDED and were retried');
        }
        if (scenario.expectDeduplicated) {
          const deduplicated = records.filter((r) => r.outcome.kind === 'acked' && r.outcome.deduplicated).length;
          assert.ok(deduplicated > 0, 'some retries found their original committed (deduplicated)');
        }
      } finally {
        await faulty.stop();
        await reader.stop();
      }
    });
  });

  it('health turns NOT_SERVING while DynamoDB refuses connections, appends fail with UNAVAILABLE, both recover', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    // Production SDK settings (5 attempts, 10 s per request): refused connections fail fast anyway.
    const server = await startTestServer({ healthCheckIntervalMs: 200 }, () =>
      localStore(local, prefix, { endpoint: proxy.endpoint }),
    );
    const eh = api(server.client);
    try {
      await eh.createStream({ stream: '/health' });
      assert.equal(await healthOf(server), 'SERVING');

      proxy.setDown(true);
      await waitFor('NOT_SERVING', 10_000, () => healthOf(server), (s) => s === 'NOT_SERVING');
      assert.equal(await checkHealth(server.address, credentials.createInsecure(), ''), 'NOT_SERVING');
      const refused = { stream: '/health', events: [jsonEvent('e', {})], requestId: 'while-down' };
      const details = await rejection(appendOnce(server.client, refused, 10_000), status.UNAVAILABLE);
      assert.equal(details.reason, 'STORE_UNAVAILABLE');
      await rejection(eh.read({ stream: '/health' }), status.UNAVAILABLE);

      proxy.setDown(false);
      await waitFor('SERVING', 10_000, () => healthOf(server), (s) => s === 'SERVING');
      // The refused append never reached DynamoDB: its retry writes it, once.
      const retried = await appendOnce(server.client, refused, 10_000);
      assert.deepEqual([retried.cursor?.version, retried.deduplicated], [1n, false]);
      assert.equal((await eh.read({ stream: '/health' })).entries.length, 2);
    } finally {
      await server.stop();
    }
  });

  it('health turns NOT_SERVING within the ping bound and appends fail with UNAVAILABLE while DynamoDB does not answer at all (black hole), and both recover', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    // 2 attempts × 4 s: a ping bounded only by the SDK would take over 8 s; the store's own bound is 3 s.
    const server = await startTestServer({ healthCheckIntervalMs: 200 }, () =>
      localStore(local, prefix, { endpoint: proxy.endpoint, maxAttempts: 2, requestTimeoutMs: 4000 }),
    );
    const eh = api(server.client);
    try {
      await eh.createStream({ stream: '/hole' });
      assert.equal(await healthOf(server), 'SERVING');
      proxy.setRule(() => ({ kind: 'hang' }));
      const lost = { stream: '/hole', events: [jsonEvent('e', {})], requestId: 'in-the-hole' };
      // The store gives up after its attempts' timeouts (~8 s), well before this caller's deadline.
      const failed = rejection(appendOnce(server.client, lost, 20_000), status.UNAVAILABLE);
      await waitFor('NOT_SERVING', 7_000, () => healthOf(server), (s) => s === 'NOT_SERVING');
      assert.equal((await failed).reason, 'STORE_UNAVAILABLE');

      proxy.passAll();
      await waitFor('SERVING', 7_000, () => healthOf(server), (s) => s === 'SERVING');
      // Nothing reached DynamoDB: the retry writes the append, once.
      const retried = await appendOnce(server.client, lost, 10_000);
      assert.deepEqual([retried.cursor?.version, retried.deduplicated], [1n, false]);
    } finally {
      await server.stop();
    }
  });

  it('appends whose callers gave up while the stream waited on a stalled write are never written', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    const server = await startTestServer({}, () =>
      localStore(local, prefix, { endpoint: proxy.endpoint, maxAttempts: 2, requestTimeoutMs: 3000 }),
    );
    const eh = api(server.client);
    try {
      await eh.createStream({ stream: '/stalled' });
      proxy.setRule(() => ({ kind: 'hang' }));
      // The first append's write hangs until the SDK's request timeout, then is retried.
      const first = appendOnce(server.client, { stream: '/stalled', events: [jsonEvent('first', {})], requestId: 'first' }, 20_000);
      // These queue behind it; their callers give up after 500 ms, before any write of theirs.
      const gaveUp = ['gave-up-1', 'gave-up-2'].map((requestId) =>
        rejection(appendOnce(server.client, { stream: '/stalled', events: [jsonEvent(requestId, {})], requestId }, 500), status.DEADLINE_EXCEEDED),
      );
      await Promise.all(gaveUp);
      proxy.passAll();
      assert.equal((await first).cursor?.version, 1n);
      await proxy.quiet(500);
      const page = await eh.read({ stream: '/stalled' });
      assert.deepEqual(page.entries.map((e) => e.events[0]?.type), ['$stream.started', 'first']);
      // The same request ids, sent again, are written now: nothing of theirs was left behind.
      const again = await eh.append({ stream: '/stalled', events: [jsonEvent('gave-up-1', {})], requestId: 'gave-up-1' });
      assert.deepEqual([again.cursor?.version, again.deduplicated], [2n, false]);
    } finally {
      await server.stop();
    }
  });

  it('an append whose replies are all lost after the write is stored once; its later retry answers the stored version, on either replica', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    const reader = await startTestServer({}, () => localStore(local, prefix));
    const faulty = await startTestServer({}, () => localStore(local, prefix, { ...FAULTY_STORE, endpoint: proxy.endpoint }));
    try {
      await api(faulty.client).createStream({ stream: '/lost' });
      // Every write reaches DynamoDB and every answer to a write is lost, SDK retries included.
      proxy.setRule(({ operation }) => (WRITES.has(operation) ? { kind: 'resetAfterWrite' } : PASS));
      const planned = ['x', 'y', 'z'].map((rid, n): Planned => ({ rid, stream: '/lost', useExpectedVersion: false, data: { rid, writer: 0, n } }));
      const attempts = 3;
      const outcomes = await Promise.all(planned.map((p) => retryUnavailable(faulty.client, requestOf(p, undefined), attempts)));
      // The client believes the head is still 0: an expected-version append against it.
      const stale: Planned = { rid: 'w', stream: '/lost', useExpectedVersion: true, data: { rid: 'w', writer: 0, n: 3 } };
      outcomes.push(await retryUnavailable(faulty.client, requestOf(stale, 0n), attempts));
      assert.deepEqual(outcomes, [attempts, attempts, attempts, attempts], 'every attempt of every append failed with UNAVAILABLE');
      assert.ok((proxy.takeStats().faults.resetAfterWrite ?? 0) > 0);
      proxy.passAll();
      await proxy.quiet(200);

      const entries = await readAll(api(reader.client), '/lost');
      const stored = new Map(entries.slice(1).map((e) => [e.events[0]?.id ?? '', e.version]));
      assert.deepEqual(entries.map((e) => e.version), entries.map((_, i) => BigInt(i)), 'versions 0..head');
      assert.equal(stored.size, entries.length - 1, 'no request id stored twice');
      // The first attempt of the first append written always lands; whatever else landed is there once.
      assert.ok(stored.size >= 1, 'some write reached DynamoDB');
      // Retry on the faulty replica (its cache never saw the writes) and on the other one.
      for (const [i, p] of planned.entries()) {
        const client = i % 2 === 0 ? faulty.client : reader.client;
        const response = await appendOnce(client, requestOf(p, undefined), 10_000);
        const was = stored.get(p.rid);
        if (was === undefined) assert.equal(response.deduplicated, false, `${p.rid}: absent, yet deduplicated`);
        else assert.deepEqual([response.cursor?.version, response.deduplicated], [was, true], `${p.rid}: stored at ${was}`);
      }
      // Version 1 was taken by the first write that landed before `w` was sent: `w` never was
      // written, and its retry is refused against the real head.
      assert.equal(stored.has('w'), false, 'w: written over an existing version');
      await rejection(appendOnce(faulty.client, requestOf(stale, 0n), 10_000), status.ABORTED);
      const after = await readAll(api(reader.client), '/lost');
      const ids = after.slice(1).map((e) => e.events[0]?.id);
      assert.deepEqual([...ids].sort(), [...new Set(ids)].sort(), 'still no request id twice');
      process.stdout.write(`      stored before the retries: ${[...stored].map(([rid, v]) => `${rid}@${v}`).join(', ')}\n`);
    } finally {
      await faulty.stop();
      await reader.stop();
    }
  });

  it('a split append (1 MiB: its item and 3 chunks) cut off between its items writes nothing; its retries write it once, also after a lost reply', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    const reader = await startTestServer({}, () => localStore(local, prefix));
    const faulty = await startTestServer({}, () => localStore(local, prefix, { ...FAULTY_STORE, endpoint: proxy.endpoint }));
    const blob = () => ({ type: 'blob', data: randomBytes(1 << 20), contentType: 'application/octet-stream' });
    try {
      await api(faulty.client).createStream({ stream: '/split' });
      // Every transaction breaks off once the entry's item and its first chunk are sent, before
      // the second chunk: the server died, or the network failed, between the items of one write.
      const cuts: number[] = [];
      proxy.setRule(({ operation, body }) => {
        if (operation !== 'TransactWriteItems') return PASS;
        const third = nthIndexOf(body, '{"Put":', 3);
        assert.ok(third > 0, 'a transaction of at least 3 items');
        cuts.push(third);
        return { kind: 'cutRequest', bytes: third };
      });
      const first = { stream: '/split', events: [blob()], requestId: 'split-1' };
      await rejection(appendOnce(faulty.client, first, 10_000), status.UNAVAILABLE);
      assert.equal(cuts.length, FAULTY_STORE.maxAttempts, 'each SDK attempt was cut between items');
      proxy.passAll();
      await proxy.quiet(200);

      // Nothing of it is visible, on the other replica or in the tables, nor left behind.
      assert.deepEqual((await readAll(api(reader.client), '/split')).map((e) => e.version), [0n]);
      assert.deepEqual([...(await rawRequestIds(raw, prefix, '/split')).keys()], [0n]);
      assert.equal(await rawChunkCount(raw, prefix), 0, 'no chunk written');

      // The retry writes it, once.
      const written = await appendOnce(faulty.client, first, 10_000);
      assert.deepEqual([written.cursor?.version, written.deduplicated], [1n, false]);
      assert.equal(await rawChunkCount(raw, prefix), 3);

      // A split append whose every reply is lost after it was written: a retry on either replica
      // finds it by its request id.
      proxy.setRule(({ operation }) => (operation === 'TransactWriteItems' ? { kind: 'resetAfterWrite' } : PASS));
      const second = { stream: '/split', events: [blob()], requestId: 'split-2' };
      await rejection(appendOnce(faulty.client, second, 10_000), status.UNAVAILABLE);
      proxy.passAll();
      await proxy.quiet(200);
      for (const client of [reader.client, faulty.client]) {
        const retried = await appendOnce(client, second, 10_000);
        assert.deepEqual([retried.cursor?.version, retried.deduplicated], [2n, true]);
      }
      const entries = await readAll(api(reader.client), '/split');
      assert.deepEqual(entries.map((e) => e.version), [0n, 1n, 2n]);
      assert.ok(Buffer.from(entries[1]?.events[0]?.data ?? []).equals(first.events[0]!.data), 'the first, whole');
      assert.ok(Buffer.from(entries[2]?.events[0]?.data ?? []).equals(second.events[0]!.data), 'the second, whole');
      assert.equal(await rawChunkCount(raw, prefix), 6);
    } finally {
      await faulty.stop();
      await reader.stop();
    }
  });

  it('a create whose replies are all lost is answered from its request id when retried, on either replica', async function () {
    this.timeout(60_000);
    const prefix = freshTablePrefix();
    const reader = await startTestServer({}, () => localStore(local, prefix));
    const faulty = await startTestServer({}, () => localStore(local, prefix, { ...FAULTY_STORE, endpoint: proxy.endpoint }));
    try {
      await api(faulty.client).createStream({ stream: '/made' });
      const request = { stream: '/made/once', events: [jsonEvent('opened', {})], requestId: 'create-once' };
      // Every write reaches DynamoDB and every answer to a write is lost, SDK retries included.
      proxy.setRule(({ operation }) => (WRITES.has(operation) ? { kind: 'resetAfterWrite' } : PASS));
      await rejection(api(faulty.client).createStream(request), status.UNAVAILABLE);
      assert.ok((proxy.takeStats().faults.resetAfterWrite ?? 0) > 0);
      proxy.passAll();
      await proxy.quiet(200);
      // The write landed; the retry learns it instead of ALREADY_EXISTS.
      for (const client of [faulty.client, reader.client]) {
        const retry = await api(client).createStream(request);
        assert.deepEqual([retry.head?.version, retry.created, retry.deduplicated], [1n, ['/made/once'], true]);
      }
      const made = await api(reader.client).listChildren({ stream: '/made' });
      assert.deepEqual(made.children, ['/made/once'], 'created once');
      assert.equal((await api(reader.client).describeStream({ stream: '/made' })).headVersion, 1n, 'one child-created entry');
    } finally {
      await faulty.stop();
      await reader.stop();
    }
  });
});

// ---- the workload ------------------------------------------------------------------------------

/** Every writer's appends, drawn up front so that a seed always yields the same plan. */
function planWorkload(random: Random, streams: string[], appendsPerWriter: number): Planned[][] {
  return Array.from({ length: WRITERS }, (_, writer) =>
    Array.from({ length: appendsPerWriter }, (_, n) => {
      const rid = `w${writer}-n${n}-${random.int(0, 1e9).toString(36)}`;
      return {
        rid,
        stream: random.pick(streams),
        useExpectedVersion: random.chance(EXPECTED_VERSION_SHARE),
        data: { rid, writer, n },
      };
    }),
  );
}

/** Runs the writers concurrently, each append after the previous one of its writer settled. */
async function runWorkload(client: EventHorizonClient, plan: Planned[][], streams: string[]): Promise<AppendRecord[]> {
  /** The highest version each stream is known to have reached (what a writer expects next). */
  const heads = new Map(streams.map((stream) => [stream, 0n]));
  const records: AppendRecord[] = [];
  await Promise.all(
    plan.map(async (appends) => {
      for (const planned of appends) {
        const expectedVersion = planned.useExpectedVersion ? heads.get(planned.stream) : undefined;
        const record = await appendWithRetries(client, planned, expectedVersion);
        if (record.outcome.kind === 'acked') {
          const head = heads.get(planned.stream) ?? 0n;
          if (record.outcome.version > head) heads.set(planned.stream, record.outcome.version);
        }
        records.push(record);
      }
    }),
  );
  return records;
}

function requestOf(planned: Planned, expectedVersion: bigint | undefined): DeepPartial<AppendRequest> {
  return {
    stream: planned.stream,
    requestId: planned.rid,
    events: [jsonEvent('fault-test', planned.data, { id: planned.rid })],
    ...(expectedVersion !== undefined ? { expectedVersion } : {}),
  };
}

/** What a careful client does: retries UNAVAILABLE and DEADLINE_EXCEEDED with the same request id. */
async function appendWithRetries(client: EventHorizonClient, planned: Planned, expectedVersion: bigint | undefined): Promise<AppendRecord> {
  const request = requestOf(planned, expectedVersion);
  const retriedOn: number[] = [];
  const record = (outcome: Outcome, attempts: number): AppendRecord => ({
    planned,
    ...(expectedVersion !== undefined ? { expectedVersion } : {}),
    outcome,
    attempts,
    retriedOn,
  });
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await appendOnce(client, request, CLIENT_DEADLINE_MS);
      return record({ kind: 'acked', version: response.cursor?.version ?? -1n, deduplicated: response.deduplicated }, attempt);
    } catch (error) {
      const code = codeOf(error);
      if (code === status.ABORTED && expectedVersion !== undefined) return record({ kind: 'aborted' }, attempt);
      if (code !== status.UNAVAILABLE && code !== status.DEADLINE_EXCEEDED) {
        return record({ kind: 'unexpected', code, message: (error as Error).message }, attempt);
      }
      retriedOn.push(code);
      if (attempt === CLIENT_ATTEMPTS) return record({ kind: 'failed', lastCode: code }, attempt);
      await sleep(50 * attempt);
    }
  }
}

/** Sends an append up to `attempts` times while it fails with UNAVAILABLE; returns the UNAVAILABLE count. */
async function retryUnavailable(client: EventHorizonClient, request: DeepPartial<AppendRequest>, attempts: number): Promise<number> {
  let unavailable = 0;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      await appendOnce(client, request, CLIENT_DEADLINE_MS);
      return unavailable;
    } catch (error) {
      if (codeOf(error) !== status.UNAVAILABLE) throw error;
      unavailable++;
    }
  }
  return unavailable;
}

/** One Append with a deadline (the promise API has none). */
function appendOnce(client: EventHorizonClient, request: DeepPartial<AppendRequest>, deadlineMs: number): Promise<AppendResponse> {
  return new Promise((resolve, reject) => {
    client.append(AppendRequest.fromPartial(request), new Metadata(), { deadline: Date.now() + deadlineMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

// ---- the checks ----------------------------------------------------------------------------------

/** What was stored for one request id: the entry's version, event and raw item. */
interface Found {
  version: bigint;
  eventId: string;
  data: unknown;
}

/**
 * Reads every stream through the independent reader (versions, events) and with raw Queries
 * (the request id attribute of each item), and checks every record against them.
 */
async function checkStreams(reader: Api, dynamo: DynamoDBClient, prefix: string, streams: string[], records: AppendRecord[]): Promise<void> {
  const found = new Map<string, Found[]>();
  for (const stream of streams) {
    const entries = await readAll(reader, stream);
    assert.deepEqual(
      entries.map((e) => e.version),
      entries.map((_, i) => BigInt(i)),
      `${stream}: versions are exactly 0..head, without gaps`,
    );
    const requestIds = await rawRequestIds(dynamo, prefix, stream);
    for (const entry of entries.slice(1)) {
      assert.equal(entry.events.length, 1, `${stream}@${entry.version}: one event`);
      const event = entry.events[0]!;
      const data = JSON.parse(Buffer.from(event.data).toString('utf8')) as { rid: string };
      assert.equal(requestIds.get(entry.version), data.rid, `${stream}@${entry.version}: the item's request id is its event's`);
      assert.equal(event.id, data.rid, `${stream}@${entry.version}: event id`);
      const list = found.get(data.rid) ?? [];
      list.push({ version: entry.version, eventId: event.id, data: JSON.parse(Buffer.from(event.data).toString('utf8')) });
      found.set(data.rid, list);
    }
  }
  const duplicated = [...found].filter(([, list]) => list.length > 1).map(([rid, list]) => `${rid} at ${list.map((f) => f.version).join(', ')}`);
  assert.deepEqual(duplicated, [], 'no request id is stored twice');
  const planned = new Set(records.map((r) => r.planned.rid));
  assert.deepEqual([...found.keys()].filter((rid) => !planned.has(rid)), [], 'nothing but the planned appends is stored');

  for (const record of records) {
    const { rid } = record.planned;
    const stored = found.get(rid)?.[0];
    switch (record.outcome.kind) {
      case 'acked':
        assert.ok(stored, `${rid}: acknowledged at ${record.outcome.version}, but not stored`);
        assert.equal(stored.version, record.outcome.version, `${rid}: stored at its acknowledged version`);
        assert.deepEqual(stored.data, record.planned.data, `${rid}: stored with its content`);
        // Only a retry can find an earlier attempt committed.
        if (record.attempts === 1) assert.equal(record.outcome.deduplicated, false, `${rid}: answered on the first attempt, yet deduplicated`);
        break;
      case 'aborted':
        assert.equal(stored, undefined, `${rid}: refused with ABORTED, yet stored at ${stored?.version}`);
        break;
      case 'failed':
      case 'unexpected':
        break; // either outcome is allowed; retryFailedAppends settles them
    }
  }
}

/** Each subscriber got its stream's stored entries exactly: every version once, in order, same events. */
async function checkSubscribers(reader: Api, streams: string[], subscribers: RecordingSubscriber[]): Promise<void> {
  for (const [i, subscriber] of subscribers.entries()) {
    const stream = streams[i]!;
    const stored = await readAll(reader, stream);
    // Entries committed without being published arrive when the subscription fills the gap or
    // the feed's reader brings them (once indexed, at most pollMaxIntervalMs later): a bounded wait.
    await subscriber.waitForEntries(stored.length, 10_000);
    const got = subscriber.entries.map(({ entry }) => `${entry.version}:${entry.events[0]?.id ?? ''}`);
    assert.deepEqual(got, stored.map((e) => `${e.version}:${e.events[0]?.id ?? ''}`), `${stream}: the subscriber got every entry once, in order`);
    subscriber.cancel();
  }
}

/**
 * Retries every append that finally failed, now without faults and through the other server
 * (another replica): one that was stored must be answered as deduplicated at its stored version.
 */
async function retryFailedAppends(client: EventHorizonClient, records: AppendRecord[]): Promise<void> {
  const reader = api(client);
  for (const record of records.filter((r) => r.outcome.kind === 'failed')) {
    const { planned } = record;
    const entries = await readAll(reader, planned.stream);
    const stored = entries.find((e) => e.events[0]?.id === planned.rid);
    try {
      const response = await appendOnce(client, requestOf(planned, record.expectedVersion), 10_000);
      if (stored) {
        assert.equal(response.deduplicated, true, `${planned.rid}: stored after failing, and its retry wrote it again`);
        assert.equal(response.cursor?.version, stored.version, `${planned.rid}: the retry answers the stored version`);
      } else {
        assert.equal(response.deduplicated, false, `${planned.rid}: not stored, yet its retry was deduplicated`);
      }
    } catch (error) {
      assert.ok(
        !stored && record.expectedVersion !== undefined && codeOf(error) === status.ABORTED,
        `${planned.rid}: retry failed with ${statusName(codeOf(error))} (stored: ${stored !== undefined})`,
      );
    }
  }
}

async function readAll(reader: Api, stream: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (;;) {
    const page = await reader.read({ stream, fromVersion: BigInt(entries.length), limit: 1000 });
    entries.push(...page.entries);
    if (!page.more) return entries;
  }
}

/** Version → request id attribute, straight from the events table (no server code involved). */
async function rawRequestIds(dynamo: DynamoDBClient, prefix: string, stream: string): Promise<Map<bigint, string | undefined>> {
  const ids = new Map<bigint, string | undefined>();
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: tableNames(prefix).events,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': EntryAttr.stream, '#v': EntryAttr.version, '#r': EntryAttr.requestId },
        ExpressionAttributeValues: { ':s': { S: stream } },
        ProjectionExpression: '#v, #r',
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) ids.set(BigInt(item[EntryAttr.version]?.N ?? '-1'), item[EntryAttr.requestId]?.S);
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return ids;
}

/** Items in the chunks table, straight from DynamoDB Local. */
async function rawChunkCount(dynamo: DynamoDBClient, prefix: string): Promise<number> {
  let count = 0;
  for await (const page of paginateScan({ client: dynamo }, { TableName: tableNames(prefix).chunks, Select: 'COUNT', ConsistentRead: true })) {
    count += page.Count ?? 0;
  }
  return count;
}

// ---- helpers -------------------------------------------------------------------------------------

/** Where the `n`th occurrence (1, 2, ...) of `text` starts in `body`, or -1. */
function nthIndexOf(body: Buffer, text: string, n: number): number {
  let at = -1;
  for (let i = 0; i < n; i++) {
    at = body.indexOf(text, at + 1);
    if (at < 0) return -1;
  }
  return at;
}

async function healthOf(test: TestServer): Promise<string> {
  return checkHealth(test.address, credentials.createInsecure(), SERVICE_NAME, 2000);
}

/** Polls `probe` until `done` holds, for at most `timeoutMs` (a bounded wait, not a timing assertion). */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let last: T | undefined;
  await eventually(async () => done((last = await probe())), timeoutMs, () => `${what} not reached (last: ${String(last)})`);
  return last as T;
}

function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'acked':
      return `acknowledged at ${outcome.version}${outcome.deduplicated ? ' (deduplicated)' : ''}`;
    case 'aborted':
      return 'ABORTED';
    case 'failed':
      return `failed with ${statusName(outcome.lastCode)}`;
    case 'unexpected':
      return `${statusName(outcome.code)}: ${outcome.message}`;
  }
}

function report(name: string, records: AppendRecord[], stats: ProxyStats, ms: number): void {
  const count = (kind: Outcome['kind']) => records.filter((r) => r.outcome.kind === kind).length;
  const deduplicated = records.filter((r) => r.outcome.kind === 'acked' && r.outcome.deduplicated).length;
  const unavailable = records.flatMap((r) => r.retriedOn).filter((c) => c === status.UNAVAILABLE).length;
  const deadline = records.flatMap((r) => r.retriedOn).filter((c) => c === status.DEADLINE_EXCEEDED).length;
  const faults = Object.entries(stats.byOperation).map(([kind, n]) => `${kind} ${n}`).join(', ');
  process.stdout.write(
    `      ${name}: ${stats.requests} requests (${stats.late} late), faults: ${faults}; ` +
      `appends: ${count('acked')} acknowledged (${deduplicated} deduplicated), ${count('aborted')} aborted, ` +
      `${count('failed')} failed; client saw UNAVAILABLE ${unavailable}, DEADLINE_EXCEEDED ${deadline}; ${ms} ms\n`,
  );
}
