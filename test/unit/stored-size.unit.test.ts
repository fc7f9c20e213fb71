import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Entry, type Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { loadZstd } from '../../src/codec/compression';
import { PayloadCodec } from '../../src/codec/payload-codec';
import { maxStoredEntryBytes, maxStoredSnapshotBytes } from '../../src/codec/stored-size';
import { ConfigError, DEFAULT_LIMITS, type Limits } from '../../src/config/config';
import type { StoreFeatures } from '../../src/store/port';
import { checkStoreLimits } from '../../src/wiring';

describe('stored payload sizes within the limits', () => {
  it('bounds the stored payload of the worst entry the limits allow (metadata aside)', async () => {
    const limits: Limits = { ...DEFAULT_LIMITS, maxEventsPerEntry: 200, maxEntryBytes: 256 * 1024 };
    const payloads = new PayloadCodec(await loadZstd(), 1 << 24);
    // Every field the limits do not count at its longest, all of it (data too) such that zstd
    // cannot shrink it.
    const random = (length: number) => randomBytes(length).toString('base64url').slice(0, length);
    const per = limits.maxEntryBytes / limits.maxEventsPerEntry;
    const events: Event[] = Array.from({ length: limits.maxEventsPerEntry }, () => ({
      id: random(128),
      type: random(256),
      data: randomBytes(Math.floor(per)),
      contentType: `application/${random(244)}`,
      metadata: {},
      occurredAt: new Date(-62_135_596_800_000),
    }));
    const sealed = payloads.frame(payloads.compress(Entry.encode({ version: 0n, events }).finish()), {
      dekVersion: 0xffffffff,
      key: randomBytes(32),
      associatedData: Buffer.from('eventhorizon/entry'),
    });
    assert.ok(sealed.byteLength <= maxStoredEntryBytes(limits), `${sealed.byteLength} > ${maxStoredEntryBytes(limits)}`);
    assert.ok(sealed.byteLength > maxStoredEntryBytes(limits) - limits.maxEventsPerEntry * 50, `the bound is not loose either: ${sealed.byteLength} of ${maxStoredEntryBytes(limits)}`);
  });

  it('lets a store start only with limits whose largest payloads it holds', () => {
    const features = (maxPayloadBytes?: number): StoreFeatures => ({
      sharedWithOtherProcesses: true,
      idempotencyWindow: { kind: 'unbounded' },
      ...(maxPayloadBytes === undefined ? {} : { maxPayloadBytes }),
      readsRefusedAfterShred: false,
      abandonedReadsStop: false,
    });
    const largest = Math.max(maxStoredEntryBytes(DEFAULT_LIMITS), maxStoredSnapshotBytes(DEFAULT_LIMITS));
    assert.doesNotThrow(() => checkStoreLimits(features(undefined), { ...DEFAULT_LIMITS, maxEntryBytes: 1 << 30 }));
    assert.doesNotThrow(() => checkStoreLimits(features(largest), DEFAULT_LIMITS));
    assert.throws(() => checkStoreLimits(features(largest - 1), DEFAULT_LIMITS), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /EH_MAX_ENTRY_BYTES=3145728 with EH_MAX_EVENTS_PER_ENTRY=1000 allows entries of up to 3845761 stored bytes/);
      return true;
    });
    assert.throws(() => checkStoreLimits(features(largest), { ...DEFAULT_LIMITS, maxSnapshotBytes: largest }), /EH_MAX_SNAPSHOT_BYTES/);
  });
});
