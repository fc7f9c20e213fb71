import fs from 'node:fs';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { ServerCredentials, credentials } from '@grpc/grpc-js';
import type { TlsConfig } from '../config/config';

/**
 * The server's transport: plaintext without a certificate, TLS with one, mutual TLS (client
 * certificates required and checked against the CA) when a client CA is configured too.
 */
export function serverCredentials(tls: TlsConfig): ServerCredentials {
  if (tls.certFile === undefined || tls.keyFile === undefined) return ServerCredentials.createInsecure();
  const clientCa = tls.clientCaFile === undefined ? null : fs.readFileSync(tls.clientCaFile);
  return ServerCredentials.createSsl(
    clientCa,
    [{ cert_chain: fs.readFileSync(tls.certFile), private_key: fs.readFileSync(tls.keyFile) }],
    clientCa !== null,
  );
}

/** How a client (the CLI) reaches the server: CA to trust, and its own certificate for mTLS. */
export interface ClientTlsOptions {
  /** PEM file of the CA that signed the server's certificate; enables TLS. */
  caFile?: string;
  /** PEM files of the client certificate and key, for servers that require mutual TLS. */
  certFile?: string;
  keyFile?: string;
}

/** Channel credentials for the options: plaintext when no TLS option is set. */
export function clientCredentials(options: ClientTlsOptions): ChannelCredentials {
  const { caFile, certFile, keyFile } = options;
  if (caFile === undefined && certFile === undefined) return credentials.createInsecure();
  const read = (file: string | undefined) => (file === undefined ? null : fs.readFileSync(file));
  return credentials.createSsl(read(caFile), read(keyFile), read(certFile));
}
