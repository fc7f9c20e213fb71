import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { clientCredentials } from '../../tls/credentials';
import { promiseApi } from '../promise-api';

/** The options every command that talks to a server accepts (parseArgs form). */
export const CONNECTION_OPTIONS = {
  address: { type: 'string' },
  key: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Help lines of the connection options. */
export const CONNECTION_HELP = `Connection (flags win over the environment):
  --address HOST:PORT   server (EH_ADDRESS, default 127.0.0.1:50051)
  --key KEY             API key, sent as "authorization: Bearer KEY" (EH_API_KEY)
  --tls-ca FILE         CA of the server certificate; enables TLS (EH_TLS_CA)
  --tls-cert FILE       client certificate for mutual TLS (EH_TLS_CLIENT_CERT)
  --tls-key FILE        client key for mutual TLS (EH_TLS_CLIENT_KEY)
  --json                machine-readable output`;

/** Parsed values of the connection options. */
export interface ConnectionFlags {
  address?: string;
  key?: string;
  'tls-ca'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
}

/** A connected client and promise-returning API calls. */
export type Connection = ReturnType<typeof connect>;

/** Connects to the server the flags and `EH_` variables name (lazily: the first call dials). */
export function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env) {
  const address = flags.address ?? env.EH_ADDRESS ?? '127.0.0.1:50051';
  const key = flags.key ?? env.EH_API_KEY;
  const caFile = flags['tls-ca'] ?? env.EH_TLS_CA;
  const certFile = flags['tls-cert'] ?? env.EH_TLS_CLIENT_CERT;
  const keyFile = flags['tls-key'] ?? env.EH_TLS_CLIENT_KEY;
  const tls = { ...(caFile ? { caFile } : {}), ...(certFile ? { certFile } : {}), ...(keyFile ? { keyFile } : {}) };
  const client = new EventHorizonClient(address, clientCredentials(tls), {
    interceptors: key ? [bearer(key)] : [],
  });
  return {
    address,
    client,
    ...promiseApi(client),
    close: () => client.close(),
  };
}

function bearer(key: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${key}`);
        next(metadata, listener);
      },
    });
}
