import path from 'node:path';

/** The folder of the .proto contract, found from the compiled or the source tree alike. */
export const PROTO_ROOT = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []), 'proto');

/** The files that define the public API, relative to PROTO_ROOT. */
export const API_PROTO_FILES = [
  'eventhorizon/v1/eventhorizon.proto',
  'google/rpc/status.proto',
  'google/rpc/error_details.proto',
];
