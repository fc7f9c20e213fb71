import { status } from '@grpc/grpc-js';
import { ConfigError, describeConfig, loadConfigWithSources, settingsHelp } from '../config/config';
import { createLogger } from '../log';
import { startServer } from '../server';
import { AUTH_USAGE, authCommand } from './commands/auth';
import { isServiceError, exitCodeOf } from './commands/connection';
import { HEALTH_USAGE, healthCommand } from './commands/health';
import { SNAPSHOT_USAGE, snapshotCommand } from './commands/snapshot';
import { STREAM_USAGE, streamCommand } from './commands/stream';
import { EXIT, UsageError } from './commands/usage-error';

const USAGE = `Usage: eventhorizon <command> [options]

Commands:
  serve      Serve the Event Horizon gRPC API
  stream     Create, list, describe, read, follow and append to streams (eventhorizon stream --help)
  snapshot   Get, put and delete snapshots (eventhorizon snapshot --help)
  auth       Manage API keys and policies (eventhorizon auth --help)
  health     Ask a server whether it serves (eventhorizon health --help)

Exit codes: 0 done, 1 failed, 2 bad command line or configuration, 3 server unavailable,
4 unauthenticated or permission denied, 5 not found, 6 conflict (version, already exists).

Options of serve (flags win over environment variables, which win over the config file):
${settingsHelp()}
`;

/** Each command and its help. */
const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; usage: string }> = {
  serve: { run: serve, usage: USAGE },
  stream: { run: streamCommand, usage: STREAM_USAGE },
  snapshot: { run: snapshotCommand, usage: SNAPSHOT_USAGE },
  auth: { run: authCommand, usage: AUTH_USAGE },
  health: { run: healthCommand, usage: HEALTH_USAGE },
};

/** Entry point of the `eventhorizon` command. */
export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`eventhorizon: unknown command "${name}"\n\n${USAGE}`);
    process.exitCode = EXIT.usage;
    return;
  }
  if (name === 'serve' && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(USAGE);
    return;
  }
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
    } else if (error instanceof ConfigError) {
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = EXIT.usage;
    } else {
      process.stderr.write(`eventhorizon ${name}: ${(error as Error).message ?? String(error)}\n`);
      process.exitCode = EXIT.failure;
    }
  }
}

async function serve(argv: string[]): Promise<void> {
  const loaded = loadConfigWithSources(argv, process.env);
  if (loaded.printConfig) {
    process.stdout.write(`${JSON.stringify(describeConfig(loaded), null, 2)}\n`);
    return;
  }
  const { config } = loaded;
  const logger = createLogger(config.logLevel);
  const server = await startServer({ config, logger }).catch((error: unknown) => {
    logger.fatal({ err: error }, 'could not start');
    process.exitCode = EXIT.failure;
    return undefined;
  });
  if (!server) return;
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(EXIT.ok),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT.failure);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
