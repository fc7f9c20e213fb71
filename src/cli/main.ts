import { ConfigError, loadConfig, settingsHelp, type ServerConfig } from '../config/config';
import { createLogger } from '../log';
import { startServer } from '../server';
import { createDynamoDbClient } from '../store/dynamodb/dynamodb-store';
import { createTables, tableNames } from '../store/dynamodb/tables';

const USAGE = `Usage: eventhorizon <command> [options]

Commands:
  serve                    Serve the Event Horizon gRPC API
  dynamodb create-tables   Create the DynamoDB tables (on-demand billing) named by the
                           EH_DYNAMODB_* settings, unless they exist; then check their keys

Options of serve and dynamodb create-tables (flags win over environment variables):
${settingsHelp()}
`;

/** Entry point of the `eventhorizon` command. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'dynamodb' && rest[0] === 'create-tables') {
    await createDynamoDbTables(rest.slice(1));
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

/** The configuration, or undefined after reporting why it is invalid. */
function configFrom(argv: string[]): ServerConfig | undefined {
  try {
    return loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw error;
  }
}

async function createDynamoDbTables(argv: string[]): Promise<void> {
  const config = configFrom(argv);
  if (!config) return;
  const client = createDynamoDbClient(config.dynamodb);
  try {
    const names = tableNames(config.dynamodb.tablePrefix);
    const created = await createTables(client, names);
    for (const name of Object.values(names)) {
      process.stdout.write(`${name}: ${created.includes(name) ? 'created' : 'already exists'}\n`);
    }
  } catch (error) {
    process.stderr.write(`eventhorizon: could not create the DynamoDB tables: ${(error as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    client.destroy();
  }
}

async function serve(argv: string[]): Promise<void> {
  const config = configFrom(argv);
  if (!config) return;
  const logger = createLogger(config.logLevel);
  const server = await startServer({ config, logger }).catch((error: unknown) => {
    logger.fatal({ err: error }, 'could not start');
    process.exitCode = 1;
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
