import { parseArgs } from 'node:util';
import type { StoreKind } from '../store/factory';

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
}

export interface ServerConfig {
  /** host:port to serve gRPC on. */
  listen: string;
  store: StoreKind;
  dataDir: string;
  dynamodb: DynamoDbConfig;
  /**
   * Longest wait between two polls of a subscribed stream's head, when the store is shared with
   * other replicas (DynamoDB): the worst-case delivery delay of an idle stream's next entry.
   */
  pollMaxIntervalMs: number;
  /** Idle time after which a subscription gets a heartbeat message. */
  heartbeatIntervalMs: number;
  /** Live entries a subscriber may fall behind before it goes back to reading from the store. */
  subscriberBufferEntries: number;
  logLevel: string;
  limits: Limits;
  /** File holding the keyring; encryption at rest is on when it or `keyring` is set. */
  keyringFile?: string;
  /** The keyring itself (JSON), for environments that pass secrets as variables. */
  keyring?: string;
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
};

export const DEFAULT_CONFIG: ServerConfig = {
  listen: '127.0.0.1:50051',
  store: 'sqlite',
  dataDir: './data',
  dynamodb: DEFAULT_DYNAMODB,
  pollMaxIntervalMs: 1000,
  heartbeatIntervalMs: 15_000,
  subscriberBufferEntries: 1000,
  logLevel: 'info',
  limits: DEFAULT_LIMITS,
};

/** One setting: its flag, its environment variable, and how to read it. */
interface Setting {
  flag: string;
  env: string;
  help: string;
  apply(config: ServerConfig, raw: string): string | undefined;
}

const SETTINGS: Setting[] = [
  {
    flag: 'listen',
    env: 'EH_LISTEN',
    help: 'host:port to serve gRPC on (default 127.0.0.1:50051)',
    apply: (config, raw) => {
      if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(raw)) return 'must be host:port';
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
    flag: 'poll-max-interval',
    env: 'EH_POLL_MAX_INTERVAL',
    help: 'longest wait between polls of a subscribed stream on a shared store, e.g. 1s (default 1s)',
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
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Help text listing every setting with its flag and environment variable. */
export function settingsHelp(): string {
  return SETTINGS.map((s) => `  --${s.flag.padEnd(22)} ${s.env.padEnd(26)} ${s.help}`).join('\n');
}

/**
 * The effective configuration: flags win over `EH_` environment variables, which win over the
 * defaults. Every problem is reported at once, one line each, naming the flag or variable.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_CONFIG, dynamodb: { ...DEFAULT_DYNAMODB }, limits: { ...DEFAULT_LIMITS } };
  const problems: string[] = [];
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  for (const setting of SETTINGS) {
    const fromFlag = flags[setting.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : env[setting.env];
    if (raw === undefined) continue;
    const source = typeof fromFlag === 'string' ? `--${setting.flag}` : setting.env;
    const problem = setting.apply(config, raw);
    // Secrets never appear in messages.
    const shown = setting.flag === 'keyring' ? '(secret)' : JSON.stringify(raw);
    if (problem) problems.push(`${source}=${shown}: ${problem}`);
  }
  if (config.keyring && config.keyringFile) problems.push('EH_KEYRING and EH_KEYRING_FILE: set one, not both');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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
