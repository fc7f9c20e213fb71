import { ConfigError, describeConfig, loadConfigWithSources, settingsHelp } from '../../config/config';
import { KeyringError } from '../../crypto/keyring';
import { createLogger } from '../../log';
import { startServer } from '../../server';
import { EXIT } from './exit-codes';

/** Help of `eventhorizon serve`. */
export const SERVE_USAGE = `Usage: eventhorizon serve [options]

Serves the Event Horizon gRPC API. Flags win over environment variables, which win over the
config file, which wins over the defaults:
${settingsHelp()}
`;

/** `eventhorizon serve`: runs until SIGTERM or SIGINT, then stops gracefully and exits 0. */
export async function serveCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  const loaded = loadConfigWithSources(argv, process.env);
  if (loaded.printConfig) {
    process.stdout.write(`${JSON.stringify(describeConfig(loaded), null, 2)}\n`);
    return;
  }
  const { config } = loaded;
  const logger = createLogger(config.logLevel);
  const server = await startServer({ config, logger }).catch((error: unknown) => {
    if (error instanceof KeyringError || error instanceof ConfigError) {
      // A configuration problem (a keyring, limits the store cannot hold): say it plainly, without a stack trace.
      process.stderr.write(`eventhorizon: ${error.message}\n`);
      process.exitCode = EXIT.usage;
    } else {
      logger.fatal({ err: error }, 'could not start');
      process.exitCode = EXIT.failure;
    }
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
