import { makeGenericClientConstructor, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { service as healthService, type ServingStatus } from 'grpc-health-check';

const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

/** Status values of grpc.health.v1 as the wire numbers them. */
const STATUS_NAMES: Record<string, ServingStatus | 'SERVICE_UNKNOWN'> = {
  '0': 'UNKNOWN',
  '1': 'SERVING',
  '2': 'NOT_SERVING',
  '3': 'SERVICE_UNKNOWN',
};

/**
 * Asks a server's `grpc.health.v1.Health/Check` for the status of `service` ("" is the whole
 * server). Used by `eventhorizon health` (the Docker HEALTHCHECK) and by tests.
 */
export function checkHealth(
  address: string,
  credentials: ChannelCredentials,
  service = '',
  timeoutMs = 5_000,
): Promise<ServingStatus | 'SERVICE_UNKNOWN'> {
  const client = new HealthClient(address, credentials);
  return new Promise<ServingStatus | 'SERVICE_UNKNOWN'>((resolve, reject) => {
    client.makeUnaryRequest<{ service: string }, { status: string | number }>(
      '/grpc.health.v1.Health/Check',
      (request) => HealthClient.service.Check?.requestSerialize(request) ?? Buffer.alloc(0),
      (bytes) => HealthClient.service.Check?.responseDeserialize(bytes) as { status: string | number },
      { service },
      { deadline: Date.now() + timeoutMs },
      (error: ServiceError | null, response?: { status: string | number }) => {
        if (error) reject(error);
        else resolve(STATUS_NAMES[String(response?.status)] ?? (response?.status as ServingStatus));
      },
    );
  }).finally(() => client.close());
}
