import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { EventHorizonService as EventHorizonServiceDefinition } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { tolerateMalformedRequests } from './api/malformed-request';
import { addReflection, ReflectedSchema, REFLECTION_SERVICES } from './api/reflection';
import { serializeSubscribeResponse } from './codec/encoded-messages';
import { EventHorizonService, rootStartedEvents } from './api/service';
import { AuthStreamFollower } from './auth/auth-stream';
import { AuthInterceptor } from './auth/interceptor';
import { loadZstd } from './codec/compression';
import { PayloadCodec } from './codec/payload-codec';
import { Codecs, type StreamCodec } from './codec/stream-codec';
import { insecureListenProblem, type ServerConfig } from './config/config';
import { LocalKeyring, type KekProvider } from './crypto/keyring';
import { StreamKeyManager } from './crypto/stream-keys';
import { ROOT } from './model/stream-path';
import { StoreHealthMonitor } from './observability/health';
import { observabilityInterceptor } from './observability/interceptor';
import { MeteredPayloadCodec } from './observability/metered-codec';
import { MeteredStore } from './observability/metered-store';
import { Metrics } from './observability/metrics';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server';
import { Hub } from './realtime/hub';
import { Tailer } from './realtime/tailer';
import { StreamShreddedError } from './core/errors';
import { createStore } from './store/factory';
import { serverCredentials } from './tls/credentials';
import type { EventStore } from './store/port';

export const SERVICE_NAME = 'eventhorizon.v1.EventHorizon';
const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

export interface RunningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** host:port clients can dial. */
  address: string;
  store: EventStore;
  /** The realtime hub: live subscriptions on this server. */
  hub: Hub;
  /** host:port of the Prometheus endpoint, when enabled. */
  metricsAddress?: string;
  /** Re-reads keys and policies now (otherwise done periodically); set when auth is required. */
  refreshAuth?(): Promise<void>;
  /** Pings the store now and updates the health status (otherwise done periodically). */
  checkHealth(): Promise<boolean>;
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
  const insecure = insecureListenProblem(config);
  if (insecure) throw new Error(insecure);
  const zstd = await loadZstd();
  // Decoding refuses anything larger than an entry or snapshot may be, with room for framing.
  const maxDecoded = Math.max(config.limits.maxEntryBytes, config.limits.maxSnapshotBytes) * 2 + 64 * 1024;
  const metrics = new Metrics();
  const payloads: PayloadCodec = new MeteredPayloadCodec(zstd, maxDecoded, metrics);
  // Keyring problems stop the start before anything is opened or written.
  const kek = loadKeyring(config);
  const store: EventStore = new MeteredStore(
    given ?? createStore({ kind: config.store, dataDir: config.dataDir, dynamodb: config.dynamodb }),
    metrics,
  );
  const keys = kek && new StreamKeyManager(store, kek, { cacheStreams: 10_000, cacheTtlMs: config.keyCacheTtlMs });
  const codecs = new Codecs(payloads, keys);
  await openStore(store, codecs, keys);
  if (keys && kek) rewrapInBackground(keys, kek.activeKekId, logger);
  // Keys and policies live in the store; with auth off they are not even read.
  const auth = config.auth === 'required' ? new AuthStreamFollower({ store, codecs }, config.authRefreshMs, logger) : undefined;
  const authInterceptor = auth && new AuthInterceptor({ registry: () => auth.registry, logger });
  // Open subscriptions were authorized when they started: when keys or policies change, they are
  // checked again, and those no longer allowed end.
  auth?.onChange(() => authInterceptor?.recheckOpenCalls());
  await auth?.start();

  const hub = new Hub();
  // Other replicas append to the same store: bring their entries to this replica's subscribers.
  const tailer = store.features.sharedWithOtherProcesses
    ? new Tailer({
        store,
        hub,
        decode: async (stream, stored) => (await codecs.forReading(stream, [stored.payload])).decodeEntry(stored),
        logger,
        maxIntervalMs: config.pollMaxIntervalMs,
      })
    : undefined;
  tailer?.start();

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
    // The first interceptor sees a call first: observability also counts calls refused by auth.
    interceptors: [
      observabilityInterceptor({ metrics, logger }),
      ...(authInterceptor ? [authInterceptor.interceptor] : []),
    ],
  });
  server.addService(
    // Malformed request bytes reach the handlers as MalformedRequest (INVALID_ARGUMENT), not INTERNAL.
    tolerateMalformedRequests({
      ...EventHorizonServiceDefinition,
      // Subscriptions write messages serialized once for all subscribers (encoded-messages.ts).
      subscribe: { ...EventHorizonServiceDefinition.subscribe, responseSerialize: serializeSubscribeResponse },
    }),
    service.handlers(),
  );

  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  const monitor = new StoreHealthMonitor({
    store,
    health,
    services: ['', SERVICE_NAME],
    intervalMs: config.healthCheckIntervalMs,
    metrics,
    logger,
  });
  await monitor.start();

  // Reflection names every service this server registers, and serves the descriptors buf built.
  addReflection(server, ReflectedSchema.load([SERVICE_NAME, HEALTH_SERVICE_NAME, ...REFLECTION_SERVICES]));

  let metricsServer: MetricsServer | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      monitor.stop();
      auth?.stop();
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      service.closeSubscriptions();
      await tailer?.stop();
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
      await metricsServer?.close();
      logger.info('stopped');
    })();
    return stopping;
  };
  // A port already in use (gRPC or metrics) must not leave a half-started server behind: the
  // store, the health monitor and the pollers would keep the process alive, serving nothing.
  let port: number;
  let address: string;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(config.listen, serverCredentials(config.tls), (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    address = `${host}:${port}`;
    metricsServer = config.metricsListen === 'off' ? undefined : await startMetricsServer(config.metricsListen, metrics, logger);
    logger.info(
      {
        address,
        store: config.store,
        dataDir: config.dataDir,
        encryption: codecs.encrypting,
        auth: config.auth,
        tls: config.tls.certFile !== undefined,
      },
      'serving',
    );
  } catch (error) {
    await stop(0);
    throw error;
  }
  return {
    port,
    address,
    store,
    hub,
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    ...(auth ? { refreshAuth: () => auth.refresh() } : {}),
    checkHealth: () => monitor.check(),
    stop,
  };
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

/**
 * KEK rotation, online: data keys still wrapped by an older KEK are re-wrapped under the active
 * one while the server serves. Progress goes to the log.
 */
function rewrapInBackground(keys: StreamKeyManager, activeKekId: string, logger: Logger): void {
  let streams = 0;
  keys
    .rewrapAll((seen, rewrapped) => {
      streams = seen;
      logger.debug({ streams: seen, rewrapped }, 're-wrapping data keys');
    })
    .then(
      (rewrapped) => {
        // Logged at every start, even when nothing needed it: with several replicas, the old KEK
        // may go once a replica started after all others run the new keyring logs this
        // (docs/operations.md, key rotation); silence would not tell "done" from "still going".
        logger.info({ streams, rewrapped, activeKekId }, 'data keys re-wrapped under the active key-encryption key');
      },
      (error: unknown) => logger.error({ err: error }, 're-wrapping data keys failed; it is retried at the next start'),
    );
}
