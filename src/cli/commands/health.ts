import { parseArgs } from 'node:util';
import { checkHealth } from '../../observability/health-client';
import { clientCredentials } from '../../tls/credentials';
import { EXIT } from './exit-codes';

/** Help of `eventhorizon health`. */
export const HEALTH_USAGE = `Usage: eventhorizon health [options]

Asks the server's grpc.health.v1 service whether it serves; exits 0 when SERVING, 3 otherwise
(the Docker HEALTHCHECK).

  --address HOST:PORT   server to ask (EH_ADDRESS, default 127.0.0.1:50051)
  --service NAME        service to ask about (default "": the whole server)
  --timeout SECONDS     give up after this long (default 5)
  --tls-ca FILE         CA of the server certificate (EH_TLS_CA); enables TLS
  --tls-cert FILE       client certificate for mutual TLS (EH_TLS_CLIENT_CERT)
  --tls-key FILE        client key for mutual TLS (EH_TLS_CLIENT_KEY)
`;

/** `eventhorizon health` */
export async function healthCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      address: { type: 'string' },
      service: { type: 'string' },
      timeout: { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HEALTH_USAGE);
    return;
  }
  const env = process.env;
  const address = values.address ?? env.EH_ADDRESS ?? '127.0.0.1:50051';
  const caFile = values['tls-ca'] ?? env.EH_TLS_CA;
  const certFile = values['tls-cert'] ?? env.EH_TLS_CLIENT_CERT;
  const keyFile = values['tls-key'] ?? env.EH_TLS_CLIENT_KEY;
  const tls = { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) };
  try {
    const answer = await checkHealth(address, clientCredentials(tls), values.service ?? '', Number(values.timeout ?? 5) * 1000);
    process.stdout.write(`${answer}\n`);
    process.exitCode = answer === 'SERVING' ? EXIT.ok : EXIT.unavailable;
  } catch (error) {
    process.stderr.write(`eventhorizon health: ${address}: ${(error as Error).message}\n`);
    process.exitCode = EXIT.unavailable;
  }
}
