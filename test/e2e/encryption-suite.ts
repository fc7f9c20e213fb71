import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { credentials, status } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { appendAuthEvent } from '../../src/auth/auth-stream';
import { generateKey, hashKey } from '../../src/auth/keys';
import { parseRule } from '../../src/auth/policy';
import { AUTH_EVENTS } from '../../src/auth/registry';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/config/config';
import type { EventStoreCore } from '../../src/core/event-store-core';
import { generateKeyring, type KeyringFile } from '../../src/crypto/keyring';
import { checkHealth } from '../../src/observability/health-client';
import { startServer } from '../../src/server';
import { ADMIN_KEY_CACHE, openEventStore } from '../../src/wiring';
import type { EventStore } from '../../src/store/port';
import { bearer } from '../helpers/auth-server';
import { eventually } from '../helpers/eventually';
import { loggedLines } from '../helpers/log-lines';
import { api, dataOf, detailsOf, jsonEvent, rejection, startTestServer, tempDir, type TestServer } from '../helpers/server';
import { recordSubscription } from '../helpers/subscriber';

const MARKER = 'PLAINTEXT-MARKER-7f3a9c';

/**
 * The stored data of one test, in one store: each test gets a fresh one, and every server the test
 * starts (restarts included) opens the same data.
 */
export interface EncryptedStoreData {
  /** A new store instance on this data (the server closes it when it stops). */
  open(): EventStore;
  /** Every byte the store keeps at rest, read behind the server's back, as an attacker would. */
  rawBytes(): Promise<Buffer>;
  /** Overwrites the stored payload of entry `to` with that of entry `from` of the same stream. */
  copyEntryPayload(stream: string, from: bigint, to: bigint): Promise<void>;
  /** Replaces the stored payload of one entry with `change` of it. */
  changeEntryPayload(stream: string, version: bigint, change: (payload: Buffer) => Uint8Array): Promise<void>;
  /** Removes the data. */
  remove(): Promise<void>;
}

/**
 * Encryption at rest, end to end over gRPC, against one store. Both stores run it (issue: "works
 * identically on the embedded and the DynamoDB store").
 */
export function runEncryptionSuite(name: string, freshData: () => EncryptedStoreData): void {
  describe(`encryption at rest (${name})`, function () {
    this.timeout(60_000);
    let data: EncryptedStoreData;
    let keyring: KeyringFile;
    let test: TestServer | undefined;
    // A data folder for the server's own files; the store itself comes from `data`.
    let dataDir: string;

    /** Starts a server on the test's data; `null` runs it without a keyring (encryption off). */
    const start = async (ring: KeyringFile | null = keyring, overrides: Partial<ServerConfig> = {}) => {
      test = await startTestServer({ dataDir, ...(ring ? { keyring: JSON.stringify(ring) } : {}), ...overrides }, () => data.open());
      return api(test.client);
    };
    /** The test's data opened as `eventhorizon auth` opens it, behind the server's back. */
    const openAdminStore = async (): Promise<EventStoreCore> => {
      const config: ServerConfig = { ...DEFAULT_CONFIG, dataDir, keyring: JSON.stringify(keyring) };
      const { core } = await openEventStore(config, { store: data.open(), keyCache: ADMIN_KEY_CACHE });
      return core;
    };
    const stop = async () => {
      await test?.stop();
      test = undefined;
    };
    /** Starting a server on the test's data must fail with `message`. */
    const refusesToStart = async (ring: string, message: RegExp) => {
      const store = data.open();
      await assert.rejects(
        startServer({
          config: { ...DEFAULT_CONFIG, listen: '127.0.0.1:0', dataDir, keyring: ring },
          logger: pino({ level: 'silent' }),
          store,
        }),
        message,
      );
      // A keyring refused before the store was used leaves it open (closing twice is harmless).
      await store.close();
    };

    // A rejection handled only after Node reported it unhandled (PromiseRejectionHandledWarning)
    // means a test or the server left a failing promise unobserved for a while: fail the test.
    let lateHandled = 0;
    const onLateHandled = () => lateHandled++;
    before(() => process.on('rejectionHandled', onLateHandled));
    after(() => process.off('rejectionHandled', onLateHandled));

    beforeEach(() => {
      lateHandled = 0;
      data = freshData();
      dataDir = tempDir('eh-crypto-');
      keyring = generateKeyring('kek-1');
    });
    afterEach(async () => {
      await stop();
      await data.remove();
      fs.rmSync(dataDir, { recursive: true, force: true });
      assert.equal(lateHandled, 0, 'a promise rejection was handled late (PromiseRejectionHandledWarning)');
    });

    it('round-trips entries, subscriptions and snapshots, and stores no plaintext', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/secret', events: [jsonEvent('opened', { note: MARKER })] });
      await eh.append({ stream: '/secret', events: [jsonEvent('noted', { note: MARKER }, { metadata: { tag: MARKER } })] });
      await eh.putSnapshot({ stream: '/secret', perspective: 'notes:v1', version: 2n, data: Buffer.from(JSON.stringify({ MARKER })) });

      const page = await eh.read({ stream: '/secret' });
      assert.deepEqual(dataOf(page.entries[2]?.events[0] ?? assert.fail()), { note: MARKER });
      assert.deepEqual(page.entries[2]?.events[0]?.metadata, { tag: MARKER });
      const snapshot = await eh.getSnapshot({ stream: '/secret', perspective: 'notes:v1', entriesAfter: true });
      assert.deepEqual(JSON.parse(Buffer.from(snapshot.snapshot?.data ?? []).toString()), { MARKER });

      const received: bigint[] = [];
      const call = test!.client.subscribe({ stream: '/secret' });
      await new Promise<void>((resolve) => {
        call.on('data', (message: { message?: { $case: string; value: { version: bigint } } }) => {
          if (message.message?.$case === 'entry') received.push(message.message.value.version);
          if (message.message?.$case === 'caughtUp') resolve();
        });
      });
      call.on('error', () => undefined);
      call.cancel();
      assert.deepEqual(received, [0n, 1n, 2n]);

      await stop();
      const raw = await data.rawBytes();
      assert.ok(raw.includes('/secret'), 'the dump is real: stream paths are stored in the clear');
      assert.ok(!raw.includes(MARKER), 'no event data, metadata or snapshot in the clear');
      assert.ok(!raw.includes('noted'), 'event types are encrypted too');
    });

    it('round-trips entries and snapshots of 1 MiB (split on DynamoDB), and stores none of them in the clear', async () => {
      /** 1 MiB that zstd cannot shrink, with `marker` in every 100 KiB: in every chunk, were it stored as is. */
      const blob = (marker: string) => {
        const data = randomBytes(1 << 20);
        for (let at = 0; at + marker.length <= data.byteLength; at += 100 * 1024) data.write(marker, at);
        return data;
      };
      const inTheClear = 'UNSEALED-MARKER-3b8e1d';
      const plain = await start(null);
      await plain.createStream({ stream: '/plain-big' });
      await plain.append({ stream: '/plain-big', events: [{ type: 'blob', data: blob(inTheClear), contentType: 'application/octet-stream' }] });
      await stop();

      const eh = await start();
      const entry = blob(MARKER);
      const snapshotData = blob(MARKER);
      await eh.createStream({ stream: '/secret-big' });
      await eh.append({ stream: '/secret-big', events: [{ type: 'blob', data: entry, contentType: 'application/octet-stream' }] });
      await eh.putSnapshot({ stream: '/secret-big', perspective: 'p', version: 1n, data: snapshotData, contentType: 'application/octet-stream' });
      const page = await eh.read({ stream: '/secret-big', fromVersion: 1n });
      assert.ok(Buffer.from(page.entries[0]?.events[0]?.data ?? []).equals(entry), 'the entry, whole');
      const snapshot = await eh.getSnapshot({ stream: '/secret-big', perspective: 'p' });
      assert.ok(Buffer.from(snapshot.snapshot?.data ?? []).equals(snapshotData), 'the snapshot, whole');
      await stop();

      const raw = await data.rawBytes();
      assert.ok(raw.includes(inTheClear), 'the dump is real: it holds the large entry written without encryption');
      assert.ok(!raw.includes(MARKER), 'no part of the sealed entry or snapshot in the clear');
      assert.ok(!raw.includes(entry.subarray(500 * 1024, 500 * 1024 + 64)), 'no part of the sealed entry in the clear');
      assert.ok(!raw.includes(snapshotData.subarray(500 * 1024, 500 * 1024 + 64)), 'no part of the sealed snapshot in the clear');
    });

    it('refuses a ciphertext moved to another version', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/moved' });
      await eh.append({ stream: '/moved', events: [jsonEvent('first', {})] });
      await eh.append({ stream: '/moved', events: [jsonEvent('second', {})] });
      await stop();

      await data.copyEntryPayload('/moved', 1n, 2n);

      const again = await start();
      const details = await rejection(again.read({ stream: '/moved', fromVersion: 2n }), status.DATA_LOSS);
      assert.equal(details.reason, 'CORRUPT_DATA');
      const intact = await again.read({ stream: '/moved', fromVersion: 1n, limit: 1 });
      assert.equal(intact.entries[0]?.events[0]?.type, 'first');
    });

    it('refuses a payload whose compression bits were flipped (DATA_LOSS): the header is authenticated too', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/flipped' });
      await eh.append({ stream: '/flipped', events: [jsonEvent('compressible', { pad: 'z'.repeat(2000) })] });
      await eh.append({ stream: '/flipped', events: [jsonEvent('tiny', {})] });
      await stop();

      // zstd -> none (the compressed bytes would be taken as the entry), and none -> zstd.
      for (const [version, compression] of [[1n, 1], [2n, 0]] as const) {
        await data.changeEntryPayload('/flipped', version, (payload) => {
          assert.equal((payload[0] ?? 0) & 0x0f, compression, `the stored compression of entry ${version}`);
          const tampered = Buffer.from(payload);
          tampered[0] = (tampered[0] ?? 0) ^ 0x01;
          return tampered;
        });
      }

      const again = await start();
      for (const version of [1n, 2n]) {
        const details = await rejection(again.read({ stream: '/flipped', fromVersion: version, limit: 1 }), status.DATA_LOSS);
        assert.equal(details.reason, 'CORRUPT_DATA', `entry ${version}`);
      }
      const intact = await again.read({ stream: '/flipped', limit: 1 });
      assert.equal(intact.entries[0]?.events[0]?.type, '$stream.started');
    });

    it('keeps old entries readable across a stream key rotation and a KEK rotation', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/rot' });
      await eh.append({ stream: '/rot', events: [jsonEvent('before', { n: 1 })] });
      assert.equal((await eh.rotateStreamKey({ stream: '/rot' })).dekVersion, 2);
      await eh.append({ stream: '/rot', events: [jsonEvent('after', { n: 2 })] });
      await eh.putSnapshot({ stream: '/rot', perspective: 'p', version: 2n, data: Buffer.from('{"n":2}') });
      await stop();

      // KEK rotation: a new active key; the old one stays until the data keys are re-wrapped.
      const rotated = generateKeyring('kek-2', keyring);
      const eh2 = await start(rotated);
      const store = test!.server.store;
      await eventually(async () => {
        const all = await store.listStreamKeys(undefined, 1000);
        return all.every((s) => s.keys.every((k) => k.kekId === 'kek-2'));
      });
      await eh2.append({ stream: '/rot', events: [jsonEvent('later', { n: 3 })] });
      await stop();

      // The old KEK is gone now: everything must still read, as it was re-wrapped.
      const onlyNew: KeyringFile = { active: 'kek-2', keys: { 'kek-2': rotated.keys['kek-2'] as string } };
      const eh3 = await start(onlyNew);
      const page = await eh3.read({ stream: '/rot' });
      assert.deepEqual(page.entries.map((e) => e.events[0]?.type), ['$stream.started', 'before', 'after', 'later']);
      const snapshot = await eh3.getSnapshot({ stream: '/rot', perspective: 'p' });
      assert.equal(Buffer.from(snapshot.snapshot?.data ?? []).toString(), '{"n":2}');
    });

    it('logs the end of the data-key re-wrap at every start, with counts, also when nothing needed it', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/logged' });
      await stop();

      const { logger, lines } = loggedLines('info');
      const server = await startServer({
        config: { ...DEFAULT_CONFIG, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', dataDir, keyring: JSON.stringify(keyring) },
        logger,
        store: data.open(),
      });
      try {
        const done = () => lines.find((line) => line.msg === 'data keys re-wrapped under the active key-encryption key');
        await eventually(() => done() !== undefined);
        assert.equal(done()?.rewrapped, 0);
        assert.equal(done()?.activeKekId, 'kek-1');
        assert.ok(Number(done()?.streams) >= 1, JSON.stringify(done()));
      } finally {
        await server.stop(1000);
      }
    });

    it('shreds a stream: contents unreadable, shape intact', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/gdpr/user-1', createParents: true, events: [jsonEvent('registered', { email: MARKER })] });
      await eh.createStream({ stream: '/gdpr/user-1/orders' });
      await eh.putSnapshot({ stream: '/gdpr/user-1', perspective: 'p', version: 1n, data: Buffer.from('{}') });
      await eh.shredStream({ stream: '/gdpr/user-1' });

      // One call at a time: calls started together and awaited in turn leave the later ones'
      // rejections unobserved while the first is awaited (PromiseRejectionHandledWarning).
      for (const attempt of [
        () => eh.read({ stream: '/gdpr/user-1' }),
        () => eh.getSnapshot({ stream: '/gdpr/user-1', perspective: 'p' }),
        () => eh.append({ stream: '/gdpr/user-1', events: [jsonEvent('more', {})] }),
        () => eh.putSnapshot({ stream: '/gdpr/user-1', perspective: 'p', version: 2n, data: Buffer.from('{}') }),
        () => eh.rotateStreamKey({ stream: '/gdpr/user-1' }),
      ]) {
        const details = await rejection(attempt(), status.FAILED_PRECONDITION);
        assert.equal(details.reason, 'STREAM_SHREDDED');
      }
      const call = test!.client.subscribe({ stream: '/gdpr/user-1' });
      const ended = await new Promise<{ code: number }>((resolve) => {
        call.on('data', () => undefined);
        call.on('error', resolve);
      });
      assert.equal(ended.code, status.FAILED_PRECONDITION);

      const info = await eh.describeStream({ stream: '/gdpr/user-1' });
      assert.equal(info.headVersion, 2n);
      assert.equal(info.childCount, 1n);
      assert.deepEqual((await eh.listChildren({ stream: '/gdpr' })).children, ['/gdpr/user-1']);
      const child = await eh.read({ stream: '/gdpr/user-1/orders' });
      assert.equal(child.entries.length, 1, 'children keep their own keys');
    });

    it('ends the subscriptions open at the shred with FAILED_PRECONDITION (STREAM_SHREDDED), at once', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/watched', events: [jsonEvent('secret', { n: 1 })] });
      const live = recordSubscription(test!.client, '/watched');
      const catchingUp = recordSubscription(test!.client, '/watched', 5n);
      const other = recordSubscription(test!.client, '/');
      try {
        await Promise.all([live.caughtUp, catchingUp.caughtUp, other.caughtUp]);
        await eh.shredStream({ stream: '/watched' });
        const shredAt = performance.now();
        for (const subscriber of [live, catchingUp]) {
          const details = detailsOf(await subscriber.failed);
          assert.equal(details.code, status.FAILED_PRECONDITION);
          assert.equal(details.reason, 'STREAM_SHREDDED');
        }
        // At once: well before any poll or heartbeat would have noticed.
        assert.ok(performance.now() - shredAt < 500, 'the subscriptions ended late');
        // Other streams' subscriptions carry on.
        await eh.createStream({ stream: '/next' });
        await other.waitForEntries(3);
      } finally {
        for (const subscriber of [live, catchingUp, other]) subscriber.cancel();
      }
    });

    it('refuses to shred the root (FAILED_PRECONDITION, STREAM_NOT_SHREDDABLE) or a system stream', async () => {
      const eh = await start();
      const root = await rejection(eh.shredStream({ stream: '/' }), status.FAILED_PRECONDITION);
      assert.equal(root.reason, 'STREAM_NOT_SHREDDABLE');
      assert.deepEqual(root.metadata, { stream: '/' });
      // System paths are not API streams: refused by validation, as in every call.
      for (const stream of ['/$', '/$/auth']) await rejection(eh.shredStream({ stream }), status.INVALID_ARGUMENT);
      await eh.createStream({ stream: '/after' });
      await stop();

      const again = await start();
      const page = await again.read({ stream: '/' });
      assert.deepEqual(page.entries.map((e) => e.events[0]?.type), ['$stream.started', '$stream.child-created']);
      await again.createStream({ stream: '/later' });
    });

    it('starts again on data whose root and system streams were shredded (as older servers allowed)', async () => {
      const eh = await start();
      await eh.createStream({ stream: '/kept', events: [jsonEvent('kept', {})] });
      await eh.createStream({ stream: '/gone' });
      await eh.shredStream({ stream: '/gone' });
      await stop();
      // The auth stream with a key, as `eventhorizon auth` writes it; then the shreds.
      const admin = await openAdminStore();
      const key = generateKey();
      const createdAt = new Date().toISOString();
      await appendAuthEvent(admin, { type: AUTH_EVENTS.keyCreated, data: { keyId: key.keyId, principal: 'admin', sha256: hashKey(key.key), createdAt } });
      await appendAuthEvent(admin, { type: AUTH_EVENTS.policySet, data: { principal: 'admin', rules: [parseRule('allow', '*=/**')] } });
      for (const stream of ['/', '/$', '/$/auth']) await admin.store.shredStreamKeys(stream, new Date());
      await admin.store.close();

      const again = await start();
      assert.equal((await again.read({ stream: '/kept' })).entries[1]?.events[0]?.type, 'kept');
      assert.equal((await rejection(again.read({ stream: '/' }), status.FAILED_PRECONDITION)).reason, 'STREAM_SHREDDED');
      assert.equal((await rejection(again.read({ stream: '/gone' }), status.FAILED_PRECONDITION)).reason, 'STREAM_SHREDDED');
      assert.equal((await again.describeStream({ stream: '/' })).childCount, 2n);
      // New top-level streams would record their creation in the shredded root: refused, precisely.
      const created = await rejection(again.createStream({ stream: '/new' }), status.FAILED_PRECONDITION);
      assert.equal(created.reason, 'STREAM_SHREDDED');
      await stop();

      // With auth required the keys cannot be read: the server starts, answers health, refuses calls.
      await start(keyring, { auth: 'required' });
      assert.equal(await checkHealth(test!.address, credentials.createInsecure()), 'SERVING');
      const client = new EventHorizonClient(test!.address, credentials.createInsecure(), { interceptors: [bearer(key.key)] });
      try {
        await rejection(api(client).describeStream({ stream: '/kept' }), status.UNAUTHENTICATED);
      } finally {
        client.close();
      }
      await stop();

      // The keyring is still checked at start, though the root has no keys left.
      await refusesToStart(JSON.stringify(generateKeyring('kek-other')), /lacks key "kek-1"/);
    });

    it('reads entries written before encryption was turned on', async () => {
      const plain = await start(null);
      await plain.createStream({ stream: '/old', events: [jsonEvent('plain', { n: 1 })] });
      await stop();
      const eh = await start();
      await eh.append({ stream: '/old', events: [jsonEvent('sealed', { n: 2 })] });
      const page = await eh.read({ stream: '/old' });
      assert.deepEqual(page.entries.map((e) => e.events[0]?.type), ['$stream.started', 'plain', 'sealed']);
      await stop();
      const off = await start(null);
      const details = await rejection(off.read({ stream: '/old' }), status.FAILED_PRECONDITION);
      assert.equal(details.reason, 'KEY_UNAVAILABLE');
    });

    it('refuses to start with a keyring that lacks the key in use, naming it', async () => {
      await start();
      await stop();
      const other = generateKeyring('kek-other');
      await refusesToStart(JSON.stringify(other), /lacks key "kek-1"/);
      const impostor: KeyringFile = { active: 'kek-1', keys: { 'kek-1': other.keys['kek-other'] as string } };
      await refusesToStart(JSON.stringify(impostor), /key "kek-1" of the keyring is not the key/);
      await refusesToStart('{"active":"x","keys":{}}', /active key "x" is not among the keys/);
      // The store is left as it was: the right keyring still works.
      const store = data.open();
      assert.equal((await store.getStreamKeys('/')).keys[0]?.kekId, 'kek-1');
      await store.close();
      const eh = await start();
      assert.equal((await eh.read({ stream: '/' })).entries.length > 0, true);
    });

    it('answers FAILED_PRECONDITION for key operations without a keyring', async () => {
      const eh = await start(null);
      await eh.createStream({ stream: '/nokeys' });
      const details = await rejection(eh.shredStream({ stream: '/nokeys' }), status.FAILED_PRECONDITION);
      assert.equal(details.reason, 'ENCRYPTION_DISABLED');
      await rejection(eh.rotateStreamKey({ stream: '/missing' }), status.FAILED_PRECONDITION);
    });
  });
}
