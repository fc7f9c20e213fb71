import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Logger } from 'pino';
import { EventHorizonService as EventHorizonServiceDefinition } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { tolerateMalformedRequests } from './api/malformed-request';
import { API_PROTO_FILES, PROTO_ROOT } from './api/proto-files';
import { EventHorizonService, rootStartedEvents } from './api/service';
import { loadZstd } from './codec/compression';
import { PayloadCodec } from './codec/payload-codec';
import { Codecs } from './codec/stream-codec';
import type { ServerConfig } from './config/config';
import { LocalKeyring, type KekProvider } from './crypto/keyring';
import { StreamKeyManager } from './crypto/stream-keys';
import { Hub } from './realtime/hub';
import { createStore } from './store/factory';
import type { EventStore } from './store/port';

export const SERVICE_NAME = 'eventhorizon.v1.EventHorizon';

export interface RunningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** host:port clients can dial. */
  address: string;
  store: EventStore;
  /** The realtime hub: live subscriptions on this server. */
  hub: Hub;
  /** Graceful stop: refuse new calls, end subscriptions with UNAVAILABLE, finish in-flight calls. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  config: ServerConfig;
  logger: Logger;
  /** Use this store instead of building the configured one (tests of other stores). */
  store?: EventStore;
  /** How often to ping idle connections and how long to wait for the answer (tests shorten it). */
  keepalive?: KeepaliveOptions;
}

/** HTTP/2 keepalive: how the server finds clients that vanished without closing. */
export interface KeepaliveOptions {
  timeMs: number;
  timeoutMs: number;
}

/** A client silent for 60 s is pinged, and dropped when it does not answer within 20 s. */
export const DEFAULT_KEEPALIVE: KeepaliveOptions = { timeMs: 60_000, timeoutMs: 20_000 };

/** Starts the gRPC server: the API, health checks and reflection, on the configured address. */
export async function startServer({ config, logger, store: given, keepalive = DEFAULT_KEEPALIVE }: StartOptions): Promise<RunningServer> {
  const zstd = await loadZstd();
  // Decoding refuses anything larger than an entry or snapshot may be, with room for framing.
  const maxDecoded = Math.max(config.limits.maxEntryBytes, config.limits.maxSnapshotBytes) * 2 + 64 * 1024;
  const payloads = new PayloadCodec(zstd, maxDecoded);
  // Keyring problems stop the start before anything is opened or written.
  const kek = loadKeyring(config);
  const store = given ?? createStore({ kind: config.store, dataDir: config.dataDir });
  const keys = kek && new StreamKeyManager(store, kek, { cacheStreams: 10_000, cacheTtlMs: 60_000 });
  const codecs = new Codecs(payloads, keys);
  try {
    await keys?.checkKeyring();
    const root = await codecs.forStream('/', 'create');
    await store.init(root.entryPayload(rootStartedEvents())(0n), new Date());
  } catch (error) {
    await store.close();
    throw error;
  }
  if (keys) rewrapInBackground(keys, logger);

  const hub = new Hub();
  const service = new EventHorizonService({
    store,
    codecs,
    hub,
    limits: config.limits,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    subscriberBufferEntries: config.subscriberBufferEntries,
    logger,
  });

  const server = new grpc.Server({
    // Requests may be a little larger than one entry's events (field framing, metadata).
    'grpc.max_receive_message_length': config.limits.maxEntryBytes + 1024 * 1024,
    'grpc.max_send_message_length': 8 * 1024 * 1024,
    // Find clients that vanished without closing their subscriptions.
    'grpc.keepalive_time_ms': keepalive.timeMs,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
  });
  server.addService(tolerateMalformedRequests(EventHorizonServiceDefinition), service.handlers());

  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  const reflected = protoLoader.loadSync([...API_PROTO_FILES, healthProtoPath], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
  });
  new ReflectionService(reflected).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  logger.info({ address, store: config.store, dataDir: config.dataDir, encryption: codecs.encrypting }, 'serving');

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      service.closeSubscriptions();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await store.close();
      logger.info('stopped');
    })();
    return stopping;
  };
  return { port, address, store, hub, stop };
}

/** The keyring from EH_KEYRING_FILE or EH_KEYRING, or undefined when encryption is off. */
function loadKeyring(config: ServerConfig): KekProvider | undefined {
  if (config.keyringFile) return LocalKeyring.fromFile(config.keyringFile);
  if (config.keyring) return LocalKeyring.parse(config.keyring, 'EH_KEYRING');
  return undefined;
}

/**
 * KEK rotation, online: data keys still wrapped by an older KEK are re-wrapped under the active
 * one while the server serves. Progress goes to the log.
 */
function rewrapInBackground(keys: StreamKeyManager, logger: Logger): void {
  keys
    .rewrapAll((streams, rewrapped) => logger.debug({ streams, rewrapped }, 're-wrapping data keys'))
    .then(
      (rewrapped) => {
        if (rewrapped > 0) logger.info({ rewrapped }, 'data keys re-wrapped under the active key-encryption key');
      },
      (error: unknown) => logger.error({ err: error }, 're-wrapping data keys failed; it is retried at the next start'),
    );
}
