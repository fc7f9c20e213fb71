import { ConfigError, loadConfig, settingsHelp } from '../../config/config';
import { createDynamoDbClient } from '../../store/dynamodb/dynamodb-store';
import { createTables, tableNames } from '../../store/dynamodb/tables';

/** Help of `eventhorizon dynamodb`. */
export const DYNAMODB_USAGE = `Usage: eventhorizon dynamodb create-tables [options]

Creates the DynamoDB tables of the DynamoDB store (on-demand billing) unless they exist, waits
until they are active, and checks their keys. An events table created before the feed existed
gets its DynamoDB stream (new images), which the feed indexer reads. Takes the same EH_DYNAMODB_* settings as serve
(the endpoint, region and table prefix); credentials come from the standard AWS chain.

Options (flags win over environment variables):
${settingsHelp()}
`;

/** `eventhorizon dynamodb ...`: returns the process exit code. */
export async function dynamodbCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'create-tables' || rest.includes('--help')) {
    const asked = sub === undefined || sub === '--help' || rest.includes('--help');
    (asked ? process.stdout : process.stderr).write(DYNAMODB_USAGE);
    return asked ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig(rest, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`eventhorizon: ${error.message}\n`);
    return 2;
  }
  const client = createDynamoDbClient(config.dynamodb);
  try {
    const names = tableNames(config.dynamodb.tablePrefix);
    const { created, streamEnabled } = await createTables(client, names);
    for (const name of Object.values(names)) {
      const outcome = created.includes(name) ? 'created' : streamEnabled.includes(name) ? 'stream enabled (for the feed)' : 'already exists';
      process.stdout.write(`${name}: ${outcome}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`eventhorizon: could not create the DynamoDB tables: ${(error as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
}
