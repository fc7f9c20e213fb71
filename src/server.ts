import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { GrpcApi } from './api/grpc-api';
import { ConsumerGroups } from './groups/consumer-groups';
import { SERVED_SERVICE } from './api/served-service';
import { addReflection, ReflectedSchema, REFLECTION_SERVICES } from './api/reflection';
import { AuthStreamFollower } from './auth/auth-stream';
import { AuthInterceptor } from './auth/interceptor';
import { insecureListenProblem, type ServerConfig } from './config/config';
import type { StreamKeyManager } from './crypto/stream-keys';
import { StoreHealthMonitor } from './observability/health';
import { observabilityInterceptor } from './observability/interceptor';
import { Metrics } from './observability/metrics';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server';
import { startConsoleServer, type ConsoleOptions, type ConsoleServer } from './console/console-server';
import { overviewSource } from './console/overview';
import type { Hub } from './realtime/hub';
import type { EventStore, StoreBackground } from './store/port';
import { serverCredentials } from './tls/credentials';
import { openEventStore, type OpenedEventStore } from './wiring';

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
  /** Open feed subscriptions on this server. */
  feedConsumers(): number;
  /** host:port of the Prometheus endpoint, when enabled. */
  metricsAddress?: string;
  /** URL of the web console, when it serves (docs/operations.md, "Web console"). */
  consoleUrl?: string;
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

/**
 * Starts the gRPC server: the API, health checks and reflection, on the configured address.
 * The steps: open the store (and the core over it), start the store's background work (DynamoDB:
 * the feed indexer's contender), follow the auth stream, build the gRPC server, watch the
 * store's health, then listen (gRPC, metrics, and the web console of src/console/). Other
 * replicas' commits reach this one's subscribers through the feed's reader
 * (src/feed/feed-dispatcher.ts), which reads only while someone subscribes.
 */
export async function startServer({ config, logger, store: given, keepalive = DEFAULT_KEEPALIVE }: StartOptions): Promise<RunningServer> {
  const insecure = insecureListenProblem(config);
  if (insecure) throw new Error(insecure);
  const metrics = new Metrics();
  const opened = await openEventStore(config, {
    ...(given ? { store: given } : {}),
    metrics,
    // A machine where the native zstd binding does not load still serves, with a warning (once).
    zstdWarn: (message) => logger.warn(message),
    logger,
  });
  const { store, codecs, keys, kek, hub, core } = opened;
  if (keys && kek) rewrapInBackground(keys, kek.activeKekId, logger);
  const background = startStoreBackground(store, logger);
  const auth = await startAuth(config, opened, logger);
  const groups = new ConsumerGroups({
    store,
    feed: opened.feed,
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    leaseMs: config.groupLeaseMs,
    leaseRenewMs: config.groupLeaseRenewMs,
  });
  metrics.observeConsumerGroups(groups);
  const api = new GrpcApi({
    core,
    groups,
    limits: config.limits,
    logger,
    ...(auth ? { readCheck: (metadata: grpc.Metadata) => auth.interceptor.readCheckOf(metadata) } : {}),
  });
  const server = buildGrpcServer(config, keepalive, api, [
    observabilityInterceptor({ metrics, logger }),
    ...(auth ? [auth.interceptor.interceptor] : []),
  ]);
  const health = await watchHealth(server, store, config, metrics, logger);
  const startedAt = new Date();

  let metricsServer: MetricsServer | undefined;
  let consoleServer: ConsoleServer | undefined;
  const stop = shutdown({
    logger,
    stopBackground: () => {
      health.monitor.stop();
      auth?.follower.stop();
      opened.feed.stop();
    },
    health: health.service,
    api,
    server,
    store,
    groups,
    background,
    metricsServer: () => metricsServer,
    consoleServer: () => consoleServer,
  });
  // A port already in use (gRPC, metrics or an asked-for console) must not leave a half-started server behind: the
  // store, the health monitor and the pollers would keep the process alive, serving nothing.
  let port: number;
  let address: string;
  try {
    port = await listen(server, config);
    const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
    address = `${host}:${port}`;
    metricsServer = config.metricsListen === 'off' ? undefined : await startMetricsServer(config.metricsListen, metrics, logger);
    consoleServer = await serveConsole(config, {
      api,
      auth: auth?.interceptor,
      logger,
      overview: overviewSource({
        config,
        metrics,
        health: health.monitor,
        feedConsumers: () => opened.feed.dispatcher.consumerCount,
        encrypting: codecs.encrypting,
        startedAt,
      }),
    });
    logger.info(
      {
        address,
        store: config.store,
        dataDir: config.dataDir,
        encryption: codecs.encrypting,
        auth: config.auth,
        tls: config.tls.certFile !== undefined,
        ...(consoleServer ? { console: consoleServer.url } : {}),
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
    feedConsumers: () => opened.feed.dispatcher.consumerCount,
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    ...(consoleServer ? { consoleUrl: consoleServer.url } : {}),
    ...(auth ? { refreshAuth: () => auth.follower.refresh() } : {}),
    checkHealth: () => health.monitor.check(),
    stop,
  };
}

/** The web console on its own listener, unless it is off (or its development port is taken). */
function serveConsole(
  config: ServerConfig,
  parts: Pick<ConsoleOptions, 'api' | 'auth' | 'logger' | 'overview'>,
): Promise<ConsoleServer | undefined> {
  if (config.consoleListen === 'off') return Promise.resolve(undefined);
  return startConsoleServer({ ...parts, listen: config.consoleListen, optional: config.consoleOptional, tls: config.tls });
}

/** Auth, when required: the follower of the auth stream and the interceptor that checks calls. */
async function startAuth(
  config: ServerConfig,
  { store, codecs }: OpenedEventStore,
  logger: Logger,
): Promise<{ follower: AuthStreamFollower; interceptor: AuthInterceptor } | undefined> {
  // Keys and policies live in the store; with auth off they are not even read.
  if (config.auth !== 'required') return undefined;
  const follower = new AuthStreamFollower({ store, codecs }, config.authRefreshMs, logger);
  const interceptor = new AuthInterceptor({ registry: () => follower.registry, logger });
  // Open subscriptions were authorized when they started: when keys or policies change, they are
  // checked again, and those no longer allowed end.
  follower.onChange(() => interceptor.recheckOpenCalls());
  await follower.start();
  return { follower, interceptor };
}

/**
 * The store's background work (DynamoDB: contend for the feed indexer's lease, and index while
 * holding it).
 */
function startStoreBackground(store: EventStore, logger: Logger): StoreBackground | undefined {
  const background = store.background?.((level, message, fields) => logger[level](fields, message));
  background?.start();
  return background;
}

/** The grpc-js server with the API registered (not listening yet). */
function buildGrpcServer(
  config: ServerConfig,
  keepalive: KeepaliveOptions,
  api: GrpcApi,
  interceptors: grpc.ServerInterceptor[],
): grpc.Server {
  const server = new grpc.Server({
    // Requests may be a little larger than one entry's events (field framing, metadata).
    'grpc.max_receive_message_length': config.limits.maxEntryBytes + 1024 * 1024,
    'grpc.max_send_message_length': 8 * 1024 * 1024,
    // Find clients that vanished without closing their subscriptions.
    'grpc.keepalive_time_ms': keepalive.timeMs,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
    // Nothing serves channelz here (no admin service), yet grpc-js tracks every call for it when
    // it is on: an object and five closures per call, kept for as long as a subscription is open.
    'grpc.enable_channelz': 0,
    // The first interceptor sees a call first: observability also counts calls refused by auth.
    interceptors,
  });
  // Malformed request bytes reach the handlers as MalformedRequest (INVALID_ARGUMENT), not INTERNAL;
  // Read and the subscriptions write messages serialized ahead (served-service.ts).
  server.addService(SERVED_SERVICE, api.handlers());
  return server;
}

/**
 * Health checks (served, and kept current by pinging the store) and reflection, which names
 * every service this server registers.
 */
async function watchHealth(
  server: grpc.Server,
  store: EventStore,
  config: ServerConfig,
  metrics: Metrics,
  logger: Logger,
): Promise<{ service: HealthImplementation; monitor: StoreHealthMonitor }> {
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
  return { service: health, monitor };
}

/** Binds the configured address; resolves with the bound port. */
function listen(server: grpc.Server, config: ServerConfig): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, serverCredentials(config.tls), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
}

interface ShutdownParts {
  logger: Logger;
  /** Stops the background work (health pings, auth refreshes). */
  stopBackground(): void;
  health: HealthImplementation;
  api: GrpcApi;
  server: grpc.Server;
  store: EventStore;
  /** The consumer groups, whose positions are saved before the store closes. */
  groups: ConsumerGroups;
  /** The store's background work, stopped before the store closes (the indexer hands its lease over). */
  background: StoreBackground | undefined;
  /** The metrics server, once started. */
  metricsServer(): MetricsServer | undefined;
  /** The web console, once started. */
  consoleServer(): ConsoleServer | undefined;
}

/**
 * The graceful stop, run once however often it is called: refuse new calls, end subscriptions
 * with UNAVAILABLE, finish in-flight calls (forced after `graceMs`), then close the store.
 */
function shutdown(parts: ShutdownParts): (graceMs?: number) => Promise<void> {
  const { logger, health, api, server, store } = parts;
  let stopping: Promise<void> | undefined;
  return (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      parts.stopBackground();
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      // Ends the console's tails too: they are GrpcApi subscriptions.
      api.closeSubscriptions();
      const consoleClosed = parts.consoleServer()?.close();
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
      await parts.background?.stop();
      await parts.groups.stop();
      await store.close();
      await parts.metricsServer()?.close();
      await consoleClosed;
      logger.info('stopped');
    })();
    return stopping;
  };
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
