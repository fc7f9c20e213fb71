import { status } from '@grpc/grpc-js';
import { ConfigError, settingsHelp } from '../config/config';
import { EXIT, TargetConflictError, UsageError, exitCodeOf, isServiceError } from './commands/exit-codes';

const USAGE = `Usage: eventhorizon <command> [options]

Commands:
  serve      Serve the Event Horizon gRPC API
  stream     Create, list, describe, read, follow and append to streams (eventhorizon stream --help)
  feed       Read or follow a whole subtree in feed order (eventhorizon feed --help)
  consumer   Create, list, describe, reset, delete and tail consumer groups (eventhorizon consumer --help)
  snapshot   Get, put and delete snapshots (eventhorizon snapshot --help)
  export     Write a stream and its subtree to an NDJSON file (eventhorizon export --help)
  import     Recreate streams from such a file, resumably, never duplicating an entry
  auth       Manage API keys and policies (eventhorizon auth --help)
  health     Ask a server whether it serves (eventhorizon health --help)
  keys generate   Print a new keyring for encryption at rest (see: eventhorizon keys --help)
  dynamodb create-tables
             Create the DynamoDB store's tables (see: eventhorizon dynamodb --help)
  dynamodb backfill-feed
             Give entries written before the feed existed their positions, resumably

Exit codes: 0 done, 1 failed, 2 bad command line or configuration, 3 server unavailable,
4 unauthenticated or permission denied, 5 not found, 6 conflict (version, already exists).

Options of serve (flags win over environment variables, which win over the config file):
${settingsHelp()}
`;

/** A command: how to run it and its help text. */
interface Command {
  run(argv: string[]): Promise<void>;
  usage: string;
}

/**
 * Each command, loaded only when used (a plain CommonJS require): a CLI call should not pay for
 * loading the server, and `serve` not for the client commands.
 */
const COMMANDS: Record<string, () => Command> = {
  serve: () => {
    const m = require('./commands/serve') as typeof import('./commands/serve');
    return { run: m.serveCommand, usage: m.SERVE_USAGE };
  },
  stream: () => {
    const m = require('./commands/stream') as typeof import('./commands/stream');
    return { run: m.streamCommand, usage: m.STREAM_USAGE };
  },
  feed: () => {
    const m = require('./commands/feed') as typeof import('./commands/feed');
    return { run: m.feedCommand, usage: m.FEED_USAGE };
  },
  consumer: () => {
    const m = require('./commands/consumer') as typeof import('./commands/consumer');
    return { run: m.consumerCommand, usage: m.CONSUMER_USAGE };
  },
  snapshot: () => {
    const m = require('./commands/snapshot') as typeof import('./commands/snapshot');
    return { run: m.snapshotCommand, usage: m.SNAPSHOT_USAGE };
  },
  auth: () => {
    const m = require('./commands/auth') as typeof import('./commands/auth');
    return { run: m.authCommand, usage: m.AUTH_USAGE };
  },
  export: () => {
    const m = require('./commands/transfer') as typeof import('./commands/transfer');
    return { run: m.exportCommand, usage: m.TRANSFER_USAGE };
  },
  import: () => {
    const m = require('./commands/transfer') as typeof import('./commands/transfer');
    return { run: m.importCommand, usage: m.TRANSFER_USAGE };
  },
  // These two print their own help and errors, and return their exit code.
  keys: () => {
    const m = require('./commands/keys') as typeof import('./commands/keys');
    return { run: async (argv) => void (process.exitCode = m.keysCommand(argv)), usage: m.KEYS_USAGE };
  },
  dynamodb: () => {
    const m = require('./commands/dynamodb') as typeof import('./commands/dynamodb');
    return { run: async (argv) => void (process.exitCode = await m.dynamodbCommand(argv)), usage: m.DYNAMODB_USAGE };
  },
  health: () => {
    const m = require('./commands/health') as typeof import('./commands/health');
    return { run: m.healthCommand, usage: m.HEALTH_USAGE };
  },
};

/** Entry point of the `eventhorizon` command. */
export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`eventhorizon: unknown command "${name}"\n\n${USAGE}`);
    process.exitCode = EXIT.usage;
    return;
  }
  const command = load();
  try {
    await command.run(rest);
  } catch (error) {
    // parseArgs reports unknown or malformed options with a code starting ERR_PARSE_ARGS.
    const code = (error as { code?: unknown }).code;
    if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`eventhorizon ${name}: ${(error as Error).message}\n\n${command.usage}`);
      process.exitCode = EXIT.usage;
    } else if (isServiceError(error)) {
      process.stderr.write(`eventhorizon ${name}: ${status[error.code] ?? error.code}: ${error.details}\n`);
      process.exitCode = exitCodeOf(error);
    } else if (error instanceof TargetConflictError) {
      process.stderr.write(`eventhorizon ${name}: ${error.message}\n`);
      process.exitCode = EXIT.conflict;
    } else if (error instanceof ConfigError) {
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = EXIT.usage;
    } else {
      process.stderr.write(`eventhorizon ${name}: ${(error as Error).message ?? String(error)}\n`);
      process.exitCode = EXIT.failure;
    }
  }
}
