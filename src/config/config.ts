import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';

/** The stores the server can run on (EH_STORE). */
export type StoreKind = 'sqlite' | 'dynamodb';

/** Limits on what one request may carry. Defaults fit gRPC's 4 MiB message size. */
export interface Limits {
  maxEventsPerEntry: number;
  /** Bytes of one event: data plus metadata keys and values. */
  maxEventBytes: number;
  /** Bytes of one entry: the sum of its events' bytes. */
  maxEntryBytes: number;
  maxSnapshotBytes: number;
}

/** Where the DynamoDB store keeps its tables (EH_STORE=dynamodb). */
export interface DynamoDbConfig {
  /** Endpoint URL (DynamoDB Local, a VPC endpoint); the region's public endpoint when unset. */
  endpoint?: string;
  /** AWS region; the standard AWS chain (AWS_REGION, profile) when unset. */
  region?: string;
  /** Prefix of the table names: <prefix>events, <prefix>snapshots, <prefix>children, <prefix>keys. */
  tablePrefix: string;
  /** Create missing tables at start-up (development); otherwise start-up only checks them. */
  createTables: boolean;
  /** A retried request id is recognised while its original is among this many newest entries. */
  idempotencyWindow: number;
  /** This replica contends for the feed indexer's lease (serve only; one holder per deployment). */
  feedIndexer: boolean;
  /** The indexer lease's duration: a dead holder is replaced after about this long. */
  feedLeaseMs: number;
  /** The holder's wait between two reads of the events table's stream when nothing came. */
  feedPollIntervalMs: number;
  /** Most entries the indexer writes in one transaction. */
  feedBatchSize: number;
}

export interface ServerConfig {
  /** host:port to serve gRPC on. */
  listen: string;
  store: StoreKind;
  dataDir: string;
  dynamodb: DynamoDbConfig;
  /**
   * Longest wait between two reads of the feed while nothing comes, when the store is shared with
   * other replicas (DynamoDB): with the indexer's poll, the worst-case delivery delay of an entry
   * committed on another replica.
   */
  pollMaxIntervalMs: number;
  /** Idle time after which a subscription gets a heartbeat message. */
  heartbeatIntervalMs: number;
  /**
   * Consumer groups across servers (docs/consumer-groups.md): how long a partition lease and a
   * server's membership record last unless renewed; a stopped or crashed server's partitions go
   * to the others after it (plus the ack wait, when it had entries in flight).
   */
  groupLeaseMs: number;
  /** How often a server renews its leases and looks at the other servers' records. */
  groupLeaseRenewMs: number;
  /** Live entries a subscriber may fall behind before it goes back to reading from the store. */
  subscriberBufferEntries: number;
  logLevel: string;
  limits: Limits;
  /** File holding the keyring; encryption at rest is on when it or `keyring` is set. */
  keyringFile?: string;
  /** The keyring itself (JSON), for environments that pass secrets as variables. */
  keyring?: string;
  /**
   * How long a replica trusts its cached data keys: on a shared store, the longest time another
   * replica may still serve a shredded stream's older entries after ShredStream returned.
   */
  keyCacheTtlMs: number;
  /** host:port of the Prometheus `/metrics` HTTP endpoint, or "off". */
  metricsListen: string;
  /** How often the store is pinged to drive the gRPC health status. */
  healthCheckIntervalMs: number;
  /** "required": every API call needs an API key; "off": anyone who can connect may call. */
  auth: 'off' | 'required';
  /** How often the server re-reads the `/$/auth` system stream for key and policy changes. */
  authRefreshMs: number;
  /** Allows listening on a non-loopback address without authentication. */
  allowInsecure: boolean;
  tls: TlsConfig;
  /**
   * host:port of the web console (docs/operations.md, "Web console"), or "off". `loadConfig`
   * resolves an unset EH_CONSOLE_LISTEN: DEVELOPMENT_CONSOLE_LISTEN for a development setup, else off.
   */
  consoleListen: string;
  /**
   * The console address is the development default rather than asked for: a port already in use
   * only warns (another server in development has it), where an asked-for address fails the start.
   */
  consoleOptional: boolean;
}

/** Where the console listens when EH_CONSOLE_LISTEN is unset in a development setup. */
export const DEVELOPMENT_CONSOLE_LISTEN = '127.0.0.1:8080';

/** PEM files for TLS; all unset means plaintext. */
export interface TlsConfig {
  certFile?: string;
  keyFile?: string;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  clientCaFile?: string;
}

export const DEFAULT_LIMITS: Limits = {
  maxEventsPerEntry: 1000,
  maxEventBytes: 1024 * 1024,
  maxEntryBytes: 3 * 1024 * 1024,
  maxSnapshotBytes: 3 * 1024 * 1024,
};

export const DEFAULT_DYNAMODB: DynamoDbConfig = {
  tablePrefix: 'eventhorizon-',
  createTables: false,
  idempotencyWindow: 100,
  feedIndexer: true,
  feedLeaseMs: 10_000,
  feedPollIntervalMs: 250,
  feedBatchSize: 1000,
};

export const DEFAULT_CONFIG: ServerConfig = {
  listen: '127.0.0.1:50051',
  store: 'sqlite',
  dataDir: './data',
  dynamodb: DEFAULT_DYNAMODB,
  pollMaxIntervalMs: 1000,
  heartbeatIntervalMs: 15_000,
  groupLeaseMs: 15_000,
  groupLeaseRenewMs: 5_000,
  subscriberBufferEntries: 1000,
  logLevel: 'info',
  limits: DEFAULT_LIMITS,
  metricsListen: '127.0.0.1:9464',
  healthCheckIntervalMs: 5_000,
  auth: 'off',
  authRefreshMs: 1_000,
  keyCacheTtlMs: 60_000,
  allowInsecure: false,
  tls: {},
  // Programs that build a configuration themselves (tests, embedders) get no console unless they
  // ask; `loadConfig` (the `serve` command) picks the development default.
  consoleListen: 'off',
  consoleOptional: false,
};

/** One setting: its flag, its environment variable, and how to read it. */
interface Setting {
  flag: string;
  env: string;
  help: string;
  /** Masked by --print-config. */
  secret?: boolean;
  /** The value shown by --print-config. */
  show?(config: ServerConfig): unknown;
  apply(config: ServerConfig, raw: string): string | undefined;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/;

const SETTINGS: Setting[] = [
  {
    flag: 'listen',
    env: 'EH_LISTEN',
    help: 'host:port to serve gRPC on (default 127.0.0.1:50051)',
    apply: (config, raw) => {
      if (!HOST_PORT.test(raw)) return 'must be host:port';
      config.listen = raw;
      return undefined;
    },
  },
  {
    flag: 'store',
    env: 'EH_STORE',
    help: 'storage engine: sqlite (default) or dynamodb',
    apply: (config, raw) => {
      if (raw !== 'sqlite' && raw !== 'dynamodb') return 'must be "sqlite" or "dynamodb"';
      config.store = raw;
      return undefined;
    },
  },
  {
    flag: 'data-dir',
    env: 'EH_DATA_DIR',
    help: 'folder of the embedded database (default ./data)',
    apply: (config, raw) => {
      if (raw.trim() === '') return 'must not be empty';
      config.dataDir = raw;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-endpoint',
    env: 'EH_DYNAMODB_ENDPOINT',
    help: "DynamoDB endpoint URL, e.g. http://127.0.0.1:8000 (default: the region's)",
    apply: (config, raw) => {
      if (!/^https?:\/\/[^\s/]+(\/.*)?$/.test(raw)) return 'must be an http:// or https:// URL';
      config.dynamodb.endpoint = raw;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-region',
    env: 'EH_DYNAMODB_REGION',
    help: 'AWS region of the tables (default: the AWS chain, e.g. AWS_REGION)',
    apply: (config, raw) => {
      if (!/^[a-z0-9-]{2,40}$/.test(raw)) return 'must be a region name such as eu-west-1';
      config.dynamodb.region = raw;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-table-prefix',
    env: 'EH_DYNAMODB_TABLE_PREFIX',
    help: 'prefix of the DynamoDB table names (default eventhorizon-)',
    apply: (config, raw) => {
      // Table names are 3..255 of [A-Za-z0-9_.-]; the longest suffix is "snapshots".
      if (!/^[A-Za-z0-9_.-]{0,200}$/.test(raw)) return 'must be at most 200 characters of [A-Za-z0-9_.-]';
      config.dynamodb.tablePrefix = raw;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-create-tables',
    env: 'EH_DYNAMODB_CREATE_TABLES',
    help: 'create missing DynamoDB tables at start-up, for development: true or false (default false)',
    apply: (config, raw) => {
      if (raw !== 'true' && raw !== 'false') return 'must be "true" or "false"';
      config.dynamodb.createTables = raw === 'true';
      return undefined;
    },
  },
  {
    flag: 'dynamodb-idempotency-window',
    env: 'EH_DYNAMODB_IDEMPOTENCY_WINDOW',
    help: 'newest entries of a stream whose request ids are recognised on retry (default 100)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.dynamodb.idempotencyWindow = n)),
  },
  {
    flag: 'dynamodb-feed-indexer',
    env: 'EH_DYNAMODB_FEED_INDEXER',
    help: 'contend for the feed indexer lease (one holder per deployment): true or false (default true)',
    show: (config) => config.dynamodb.feedIndexer,
    apply: (config, raw) => {
      if (raw !== 'true' && raw !== 'false') return 'must be "true" or "false"';
      config.dynamodb.feedIndexer = raw === 'true';
      return undefined;
    },
  },
  {
    flag: 'dynamodb-feed-lease',
    env: 'EH_DYNAMODB_FEED_LEASE',
    help: 'the feed indexer lease: a dead holder is replaced after about this long, e.g. 10s (default 10s)',
    show: (config) => `${config.dynamodb.feedLeaseMs}ms`,
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 1000) return 'must be a duration of at least 1s, such as 10s';
      config.dynamodb.feedLeaseMs = ms;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-feed-poll-interval',
    env: 'EH_DYNAMODB_FEED_POLL_INTERVAL',
    help: "the feed indexer's wait between reads of an idle stream, e.g. 250ms (default 250ms)",
    show: (config) => `${config.dynamodb.feedPollIntervalMs}ms`,
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 10) return 'must be a duration of at least 10ms, such as 250ms';
      config.dynamodb.feedPollIntervalMs = ms;
      return undefined;
    },
  },
  {
    flag: 'dynamodb-feed-batch-size',
    env: 'EH_DYNAMODB_FEED_BATCH_SIZE',
    help: 'most entries the feed indexer writes in one transaction (default 1000)',
    show: (config) => config.dynamodb.feedBatchSize,
    apply: (config, raw) => positiveInteger(raw, (n) => (config.dynamodb.feedBatchSize = n)),
  },
  {
    flag: 'poll-max-interval',
    env: 'EH_POLL_MAX_INTERVAL',
    help: 'longest wait between reads of the feed on a shared store while nothing comes, e.g. 1s (default 1s)',
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 50) return 'must be a duration of at least 50ms, such as 1s or 500ms';
      config.pollMaxIntervalMs = ms;
      return undefined;
    },
  },
  {
    flag: 'heartbeat-interval',
    env: 'EH_HEARTBEAT_INTERVAL',
    help: 'idle time before a subscription heartbeat, e.g. 15s, 500ms (default 15s)',
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 10) return 'must be a duration of at least 10ms, such as 15s or 500ms';
      config.heartbeatIntervalMs = ms;
      return undefined;
    },
  },
  {
    flag: 'group-lease',
    env: 'EH_GROUP_LEASE',
    help: 'consumer groups across servers: how long a partition lease lasts unless renewed (default 15s)',
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 100) return 'must be a duration of at least 100ms, such as 15s';
      config.groupLeaseMs = ms;
      return undefined;
    },
  },
  {
    flag: 'group-lease-renew',
    env: 'EH_GROUP_LEASE_RENEW',
    help: 'consumer groups across servers: how often leases are renewed, under a third of the lease (default 5s)',
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 20) return 'must be a duration of at least 20ms, such as 5s';
      config.groupLeaseRenewMs = ms;
      return undefined;
    },
  },
  {
    flag: 'subscriber-buffer',
    env: 'EH_SUBSCRIBER_BUFFER',
    help: 'live entries a subscriber may lag before reading from the store again (default 1000)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.subscriberBufferEntries = n)),
  },
  {
    flag: 'log-level',
    env: 'EH_LOG_LEVEL',
    help: 'fatal, error, warn, info, debug or trace (default info)',
    apply: (config, raw) => {
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(raw)) {
        return 'must be one of fatal, error, warn, info, debug, trace, silent';
      }
      config.logLevel = raw;
      return undefined;
    },
  },
  {
    flag: 'keyring-file',
    env: 'EH_KEYRING_FILE',
    help: 'keyring file: turns on encryption at rest (see: eventhorizon keys generate)',
    apply: (config, raw) => {
      if (raw.trim() === '') return 'must not be empty';
      config.keyringFile = raw;
      return undefined;
    },
  },
  {
    flag: 'keyring',
    env: 'EH_KEYRING',
    help: 'the keyring JSON itself, instead of a file',
    secret: true,
    apply: (config, raw) => {
      if (raw.trim() === '') return 'must not be empty';
      config.keyring = raw;
      return undefined;
    },
  },
  {
    flag: 'max-events-per-entry',
    env: 'EH_MAX_EVENTS_PER_ENTRY',
    help: 'events one append may carry (default 1000)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.limits.maxEventsPerEntry = n)),
  },
  {
    flag: 'max-event-bytes',
    env: 'EH_MAX_EVENT_BYTES',
    help: 'bytes of one event, data plus metadata (default 1048576)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.limits.maxEventBytes = n)),
  },
  {
    flag: 'max-entry-bytes',
    env: 'EH_MAX_ENTRY_BYTES',
    help: 'bytes of one entry, all its events (default 3145728)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.limits.maxEntryBytes = n)),
  },
  {
    flag: 'max-snapshot-bytes',
    env: 'EH_MAX_SNAPSHOT_BYTES',
    help: 'bytes of one snapshot (default 3145728)',
    apply: (config, raw) => positiveInteger(raw, (n) => (config.limits.maxSnapshotBytes = n)),
  },
  {
    flag: 'metrics-listen',
    env: 'EH_METRICS_LISTEN',
    help: 'host:port of the Prometheus /metrics endpoint, or "off" (default 127.0.0.1:9464)',
    apply: (config, raw) => {
      if (raw !== 'off' && !HOST_PORT.test(raw)) return 'must be host:port or "off"';
      config.metricsListen = raw;
      return undefined;
    },
  },
  {
    flag: 'health-check-interval',
    env: 'EH_HEALTH_CHECK_INTERVAL',
    help: 'how often the store is pinged for the health status (default 5s)',
    show: (config) => `${config.healthCheckIntervalMs}ms`,
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 10) return 'must be a duration of at least 10ms, such as 5s';
      config.healthCheckIntervalMs = ms;
      return undefined;
    },
  },
  {
    flag: 'key-cache-ttl',
    env: 'EH_KEY_CACHE_TTL',
    help: 'how long unwrapped data keys are cached; bounds how long other replicas serve a shredded stream (default 60s)',
    show: (config) => `${config.keyCacheTtlMs}ms`,
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 100) return 'must be a duration of at least 100ms, such as 60s';
      config.keyCacheTtlMs = ms;
      return undefined;
    },
  },
  {
    flag: 'auth',
    env: 'EH_AUTH',
    help: 'required: API keys needed for every call; off: no authentication (default off)',
    apply: (config, raw) => {
      if (raw !== 'off' && raw !== 'required') return 'must be "required" or "off"';
      config.auth = raw;
      return undefined;
    },
  },
  {
    flag: 'auth-refresh-interval',
    env: 'EH_AUTH_REFRESH_INTERVAL',
    help: 'how often key and policy changes are picked up from the store (default 1s)',
    show: (config) => `${config.authRefreshMs}ms`,
    apply: (config, raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined || ms < 10) return 'must be a duration of at least 10ms, such as 1s';
      config.authRefreshMs = ms;
      return undefined;
    },
  },
  {
    flag: 'allow-insecure',
    env: 'EH_ALLOW_INSECURE',
    help: 'true: allow a non-loopback listen address without authentication (default false)',
    apply: (config, raw) => {
      if (raw !== 'true' && raw !== 'false') return 'must be "true" or "false"';
      config.allowInsecure = raw === 'true';
      return undefined;
    },
  },
  {
    flag: 'tls-cert',
    env: 'EH_TLS_CERT',
    help: 'PEM file of the server certificate chain (enables TLS, with --tls-key)',
    show: (config) => config.tls.certFile,
    apply: (config, raw) => readableFile(raw, (file) => (config.tls.certFile = file)),
  },
  {
    flag: 'tls-key',
    env: 'EH_TLS_KEY',
    help: 'PEM file of the server private key',
    show: (config) => config.tls.keyFile,
    apply: (config, raw) => readableFile(raw, (file) => (config.tls.keyFile = file)),
  },
  {
    flag: 'tls-client-ca',
    env: 'EH_TLS_CLIENT_CA',
    help: 'PEM file of the CA that signs client certificates (enables mutual TLS)',
    show: (config) => config.tls.clientCaFile,
    apply: (config, raw) => readableFile(raw, (file) => (config.tls.clientCaFile = file)),
  },
  {
    flag: 'console-listen',
    env: 'EH_CONSOLE_LISTEN',
    help: `host:port of the web console, or "off" (default ${DEVELOPMENT_CONSOLE_LISTEN} when EH_LISTEN is loopback and NODE_ENV is not production, else off)`,
    apply: (config, raw) => {
      if (raw !== 'off' && !HOST_PORT.test(raw)) return 'must be host:port or "off"';
      config.consoleListen = raw;
      return undefined;
    },
  },
];

/** The flag of the configuration file, read before everything else. */
const CONFIG_FILE_FLAG = 'config';
const CONFIG_FILE_ENV = 'EH_CONFIG';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Help text listing every setting with its flag and environment variable. */
export function settingsHelp(): string {
  const lines = SETTINGS.map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(26)} ${s.help}`);
  lines.push(
    `  --${CONFIG_FILE_FLAG.padEnd(22)} ${CONFIG_FILE_ENV.padEnd(26)} JSON or YAML file of settings keyed by flag name (flags and env win)`,
    `  --${'print-config'.padEnd(22)} ${''.padEnd(26)} print the effective configuration (secrets masked) and exit`,
  );
  return lines.join('\n');
}

/** Where a setting's value came from. */
export type SettingSource = 'default' | 'file' | 'env' | 'flag';

/** A loaded configuration and what `--print-config` needs to show it. */
export interface LoadedConfig {
  config: ServerConfig;
  /** Whether `--print-config` was given. */
  printConfig: boolean;
  sources: Record<string, SettingSource>;
}

/**
 * The effective configuration: flags win over `EH_` environment variables, which win over the
 * configuration file (`--config` / `EH_CONFIG`), which wins over the defaults. Every problem is
 * reported at once, one line each, naming the flag, variable or file key.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig {
  return loadConfigWithSources(argv, env).config;
}

/** Like `loadConfig`, and tells where each value came from. */
export function loadConfigWithSources(argv: string[], env: NodeJS.ProcessEnv): LoadedConfig {
  const config: ServerConfig = { ...DEFAULT_CONFIG, dynamodb: { ...DEFAULT_DYNAMODB }, limits: { ...DEFAULT_LIMITS }, tls: {} };
  const problems: string[] = [];
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
        [CONFIG_FILE_FLAG]: { type: 'string' },
        'print-config': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  const configFile = typeof flags[CONFIG_FILE_FLAG] === 'string' ? flags[CONFIG_FILE_FLAG] : env[CONFIG_FILE_ENV];
  const fromFile = configFile === undefined ? {} : readConfigFile(configFile, problems);

  const sources: Record<string, SettingSource> = {};
  for (const setting of SETTINGS) {
    const fromFlag = flags[setting.flag];
    let raw: string | undefined;
    let source: string;
    if (typeof fromFlag === 'string') {
      [raw, source, sources[setting.flag]] = [fromFlag, `--${setting.flag}`, 'flag'];
    } else if (env[setting.env] !== undefined) {
      [raw, source, sources[setting.flag]] = [env[setting.env], setting.env, 'env'];
    } else if (fromFile[setting.flag] !== undefined) {
      [raw, source, sources[setting.flag]] = [fromFile[setting.flag], `${configFile}: ${setting.flag}`, 'file'];
    } else {
      sources[setting.flag] = 'default';
      continue;
    }
    if (raw === undefined) continue;
    const problem = setting.apply(config, raw);
    // Secrets never appear in messages.
    if (problem) problems.push(`${source}=${setting.secret ? '(secret)' : JSON.stringify(raw)}: ${problem}`);
  }
  if (config.keyring && config.keyringFile) problems.push('EH_KEYRING and EH_KEYRING_FILE: set one, not both');
  if (sources['console-listen'] === 'default') defaultConsole(config, env);
  problems.push(...crossChecks(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return { config, printConfig: flags['print-config'] === true, sources };
}

/**
 * The console when EH_CONSOLE_LISTEN is unset: on 127.0.0.1:8080 for a development setup (the
 * gRPC API on a loopback address, as `npm start` serves it, and NODE_ENV not "production"), off
 * otherwise: a production deployment (the Dockerfile sets NODE_ENV=production and a public
 * EH_LISTEN) opens no extra port it did not ask for.
 */
function defaultConsole(config: ServerConfig, env: NodeJS.ProcessEnv): void {
  const development = env.NODE_ENV !== 'production' && isLoopback(hostOf(config.listen));
  config.consoleListen = development ? DEVELOPMENT_CONSOLE_LISTEN : 'off';
  config.consoleOptional = development;
}

/** The host of a host:port, without the brackets of an IPv6 address. */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** Problems that involve more than one setting. */
function crossChecks(config: ServerConfig): string[] {
  const problems: string[] = [];
  const { certFile, keyFile, clientCaFile } = config.tls;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push('EH_TLS_CERT and EH_TLS_KEY (--tls-cert, --tls-key) must be set together');
  }
  if (clientCaFile !== undefined && certFile === undefined) {
    problems.push('EH_TLS_CLIENT_CA (--tls-client-ca) needs a server certificate (EH_TLS_CERT and EH_TLS_KEY)');
  }
  if (config.groupLeaseRenewMs * 3 > config.groupLeaseMs) {
    // A renewal may fail once and still come in time; and a lease must outlive a slow write.
    problems.push('EH_GROUP_LEASE_RENEW (--group-lease-renew) must be at most a third of EH_GROUP_LEASE (--group-lease)');
  }
  const insecure = insecureListenProblem(config);
  if (insecure) problems.push(insecure);
  return problems;
}

/**
 * Why the server must not listen where it is configured to: a non-loopback address without
 * authentication exposes every stream to the network, so it takes an explicit opt-in.
 */
export function insecureListenProblem(config: ServerConfig): string | undefined {
  if (config.auth === 'required' || config.allowInsecure) return undefined;
  // The console serves the same data as the API: the same rule holds for its address.
  const exposed = [
    { name: 'EH_LISTEN', address: config.listen },
    ...(config.consoleListen === 'off' ? [] : [{ name: 'EH_CONSOLE_LISTEN', address: config.consoleListen }]),
  ].find(({ address }) => !isLoopback(hostOf(address)));
  if (!exposed) return undefined;
  return (
    `${exposed.name}=${exposed.address}: refusing to serve a non-loopback address without authentication; ` +
    'set EH_AUTH=required (--auth required), or EH_ALLOW_INSECURE=true (--allow-insecure true) to accept the risk'
  );
}

/** Whether a host (name or address, IPv6 without brackets) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/** The effective configuration as `--print-config` shows it: flag names, secrets masked. */
export function describeConfig(loaded: LoadedConfig): Record<string, { value: unknown; source: SettingSource }> {
  const shown: Record<string, { value: unknown; source: SettingSource }> = {};
  for (const setting of SETTINGS) {
    const value = setting.show ? setting.show(loaded.config) : defaultShow(setting.flag, loaded.config);
    const source = loaded.sources[setting.flag] ?? 'default';
    shown[setting.flag] = { value: setting.secret && value !== undefined ? '***' : value ?? null, source };
  }
  return shown;
}

/** Reads a setting back from the config by its flag name, for the settings without `show`. */
function defaultShow(flag: string, config: ServerConfig): unknown {
  const camel = flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
  const limits = config.limits as unknown as Record<string, unknown>;
  const flat = config as unknown as Record<string, unknown>;
  if (camel in flat) return flat[camel];
  if (`${camel}Ms` in flat) return `${String(flat[`${camel}Ms`])}ms`;
  if (camel in limits) return limits[camel];
  if (flag.startsWith('dynamodb-')) {
    const key = camel.slice('dynamodb'.length, 'dynamodb'.length + 1).toLowerCase() + camel.slice('dynamodb'.length + 1);
    return (config.dynamodb as unknown as Record<string, unknown>)[key];
  }
  if (flag === 'heartbeat-interval') return `${config.heartbeatIntervalMs}ms`;
  if (flag === 'subscriber-buffer') return config.subscriberBufferEntries;
  return undefined;
}

/** The settings of a JSON or YAML file, keyed by flag name, as strings. */
function readConfigFile(file: string, problems: string[]): Record<string, string> {
  let parsed: unknown;
  try {
    const text = fs.readFileSync(file, 'utf8');
    // yaml (72 modules) loads only for a YAML file: most servers are configured by flags and env.
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text);
  } catch (error) {
    problems.push(`config file ${file}: ${(error as Error).message.split('\n')[0]}`);
    return {};
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push(`config file ${file}: must be a mapping of setting names to values`);
    return {};
  }
  const known = new Set(SETTINGS.map((s) => s.flag));
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!known.has(key)) {
      problems.push(`config file ${file}: unknown setting "${key}" (settings are named like the flags, e.g. data-dir)`);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      values[key] = String(value);
    } else {
      problems.push(`config file ${file}: ${key} must be a string, number or boolean`);
    }
  }
  return values;
}

/** Parses "15s", "500ms", "2m" or a bare number of seconds into milliseconds. */
export function parseDuration(raw: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(value * factor);
}

function positiveInteger(raw: string, set: (n: number) => void): string | undefined {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    return 'must be a positive integer';
  }
  set(Number(raw));
  return undefined;
}

function readableFile(raw: string, set: (file: string) => void): string | undefined {
  try {
    fs.accessSync(raw, fs.constants.R_OK);
  } catch {
    return 'must be a readable file';
  }
  set(raw);
  return undefined;
}
