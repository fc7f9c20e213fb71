import { ConfigError, loadConfig, settingsHelp } from '../config/config';
import { createLogger } from '../log';
import { KeyringError } from '../crypto/keyring';
import { startServer } from '../server';
import { dynamodbCommand } from './commands/dynamodb';
import { keysCommand } from './commands/keys';

const USAGE = `Usage: eventhorizon <command> [options]

Commands:
  serve           Serve the Event Horizon gRPC API
  keys generate   Print a new keyring for encryption at rest (see: eventhorizon keys --help)
  dynamodb create-tables
                  Create the DynamoDB store's tables (see: eventhorizon dynamodb --help)

Options of serve (flags win over environment variables):
${settingsHelp()}
`;

/** Entry point of the `eventhorizon` command. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'keys') {
    process.exitCode = keysCommand(rest);
    return;
  }
  if (command === 'dynamodb') {
    process.exitCode = await dynamodbCommand(rest);
    return;
  }
  if (command !== 'serve') {
    process.stderr.write(`eventhorizon: unknown command "${command}"\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  await serve(rest);
}

async function serve(argv: string[]): Promise<void> {
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const server = await startServer({ config, logger }).catch((error: unknown) => {
    if (error instanceof KeyringError) {
      // A configuration problem: say it plainly, without a stack trace.
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      logger.fatal({ err: error }, 'could not start');
      process.exitCode = 1;
    }
    return undefined;
  });
  if (!server) return;
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
