import pino, { type Logger } from 'pino';
import { loadZstd, type ZstdWarn } from './codec/compression';
import { PayloadCodec } from './codec/payload-codec';
import { Codecs, type StreamCodec } from './codec/stream-codec';
import { maxStoredEntryBytes, maxStoredSnapshotBytes } from './codec/stored-size';
import { ConfigError, type Limits, type ServerConfig } from './config/config';
import { EventStoreCore } from './core/event-store-core';
import { StreamShreddedError } from './core/errors';
import { rootStartedEvents } from './core/system-events';
import { LocalKeyring, type KekProvider } from './crypto/keyring';
import { StreamKeyManager } from './crypto/stream-keys';
import { ROOT } from './model/stream-path';
import { MeteredPayloadCodec } from './observability/metered-codec';
import { MeteredStore } from './observability/metered-store';
import type { Metrics } from './observability/metrics';
import { Feed } from './feed/feed';
import { Hub } from './realtime/hub';
import { createStore } from './store/factory';
import type { EventStore, StoreFeatures } from './store/port';

/**
 * The one place that builds the event store's pieces: the store, the keys, the codecs, the hub
 * and the core over them. The server, the CLI's administrative commands and the tests build them
 * here, so that they read and write the same data the same way.
 */
export interface OpenedEventStore {
  store: EventStore;
  codecs: Codecs;
  /** The data-key manager, when encryption at rest is on. */
  keys: StreamKeyManager | undefined;
  /** The keyring, when encryption at rest is on. */
  kek: KekProvider | undefined;
  /** The realtime hub the core publishes to: live subscriptions in this process. */
  hub: Hub;
  /** The feed over every stream, with its one reader in this process. */
  feed: Feed;
  core: EventStoreCore;
}

/** How many streams' data keys stay cached, and for how long. */
export interface KeyCacheOptions {
  streams: number;
  ttlMs: number;
}

/** Short-lived administrative processes (the CLI) read few streams. */
export const ADMIN_KEY_CACHE: KeyCacheOptions = { streams: 100, ttlMs: 60_000 };

export interface OpenOptions {
  /** Use this store instead of building the configured one (tests of other stores). */
  store?: EventStore;
  /** Meter the store and the payload codec (the server); administrative commands do not. */
  metrics?: Metrics;
  /** The server's cache by default: 10,000 streams for EH_KEY_CACHE_TTL_MS. */
  keyCache?: KeyCacheOptions;
  /** Where a slower zstd than the native one is reported (the server's log); a process warning by default. */
  zstdWarn?: ZstdWarn;
  /** Where background work (the feed's reader, the store's upgrade) reports; silent by default. */
  logger?: Logger;
}

/** Decoding refuses anything larger than an entry or snapshot may be, with room for framing. */
export function maxDecodedBytes(limits: Limits): number {
  return Math.max(limits.maxEntryBytes, limits.maxSnapshotBytes) * 2 + 64 * 1024;
}

/**
 * Builds the configured store with its keys, codecs, hub and core, and opens it (see
 * `openStore`): on return the root exists and the keyring matches the stored keys.
 */
export async function openEventStore(config: ServerConfig, options: OpenOptions = {}): Promise<OpenedEventStore> {
  const { metrics } = options;
  const zstd = await loadZstd(options.zstdWarn);
  const maxDecoded = maxDecodedBytes(config.limits);
  const payloads: PayloadCodec = metrics ? new MeteredPayloadCodec(zstd, maxDecoded, metrics) : new PayloadCodec(zstd, maxDecoded);
  // Keyring problems stop the start before anything is opened or written.
  const kek = loadKeyring(config);
  const logger = options.logger ?? pino({ level: 'silent' });
  const built =
    options.store ??
    createStore({
      kind: config.store,
      dataDir: config.dataDir,
      dynamodb: config.dynamodb,
      log: (message, fields) => logger.info(fields, message),
    });
  try {
    checkStoreLimits(built.features, config.limits);
  } catch (error) {
    await built.close();
    throw error;
  }
  const store: EventStore = metrics ? new MeteredStore(built, metrics) : built;
  const keyCache = options.keyCache ?? { streams: 10_000, ttlMs: config.keyCacheTtlMs };
  const keys = kek && new StreamKeyManager(store, kek, { cacheStreams: keyCache.streams, cacheTtlMs: keyCache.ttlMs });
  const codecs = new Codecs(payloads, keys);
  await openStore(store, codecs, keys);
  const hub = new Hub();
  const feed = new Feed({
    store,
    codecs,
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    bufferEntries: config.subscriberBufferEntries,
    // Other replicas' commits are found by reading the feed (also for Subscribe, through the
    // hub); this process's are announced.
    ...(store.features.sharedWithOtherProcesses
      ? { shared: { hub, pollIntervalMs: { min: Math.min(50, config.pollMaxIntervalMs), max: config.pollMaxIntervalMs } } }
      : {}),
  });
  const core = new EventStoreCore({
    store,
    codecs,
    hub,
    feed,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    subscriberBufferEntries: config.subscriberBufferEntries,
  });
  return { store, codecs, keys, kek, hub, feed, core };
}

/**
 * Refuses limits that let a client cause a stored payload larger than the store holds (DynamoDB:
 * what one transaction takes, StoreFeatures.maxPayloadBytes): an append the limits allow must not
 * fail on one store and succeed on the other, so such a configuration fails at start-up instead.
 */
export function checkStoreLimits(features: StoreFeatures, limits: Limits): void {
  const max = features.maxPayloadBytes;
  if (max === undefined) return;
  const problems: string[] = [];
  const entry = maxStoredEntryBytes(limits);
  if (entry > max) {
    problems.push(
      `EH_MAX_ENTRY_BYTES=${limits.maxEntryBytes} with EH_MAX_EVENTS_PER_ENTRY=${limits.maxEventsPerEntry} allows entries ` +
        `of up to ${entry} stored bytes, more than the ${max} this store holds (docs/dynamodb.md, "Large entries")`,
    );
  }
  const snapshot = maxStoredSnapshotBytes(limits);
  if (snapshot > max) {
    problems.push(`EH_MAX_SNAPSHOT_BYTES=${limits.maxSnapshotBytes} allows snapshots of ${snapshot} stored bytes, more than the ${max} this store holds`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * Opens the store, checks the keyring against the stored keys, and writes the root stream when
 * missing. The order matters: the keys are read from a prepared store (DynamoDB tables may have
 * to be created first), and the root is written only once the keyring is known to be right. On
 * failure the store is closed and nothing was written.
 */
export async function openStore(store: EventStore, codecs: Codecs, keys: StreamKeyManager | undefined): Promise<void> {
  try {
    await store.open();
    await keys?.checkKeyring();
    const root = await rootCodec(codecs);
    if (root) await store.init(root.entryPayload(rootStartedEvents())(0n), new Date());
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * The codec that writes the root's entry 0, or undefined when the root was shredded (older
 * servers allowed it). A shredded root exists already (only existing streams are shredded), so
 * there is nothing to write, and it must not stop the start: the rest of the data is fine.
 */
async function rootCodec(codecs: Codecs): Promise<StreamCodec | undefined> {
  try {
    return await codecs.forStream(ROOT, 'create');
  } catch (error) {
    if (error instanceof StreamShreddedError) return undefined;
    throw error;
  }
}

/** The keyring from EH_KEYRING_FILE or EH_KEYRING, or undefined when encryption is off. */
export function loadKeyring(config: ServerConfig): KekProvider | undefined {
  if (config.keyringFile) return LocalKeyring.fromFile(config.keyringFile);
  if (config.keyring) return LocalKeyring.parse(config.keyring, 'EH_KEYRING');
  return undefined;
}
