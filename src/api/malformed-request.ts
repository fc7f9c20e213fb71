import type { ServiceDefinition } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../core/errors';

/**
 * Stands in for a request whose bytes are not a valid protobuf message of its type. grpc-js
 * answers a throwing deserializer with INTERNAL, which tells the client the server is broken; a
 * malformed request is the client's mistake, so the handler answers INVALID_ARGUMENT instead.
 */
export class MalformedRequest {
  constructor(readonly path: string, readonly problem: string) {}
}

/**
 * The same service definition, with deserializers that hand a `MalformedRequest` to the handler
 * instead of throwing.
 */
export function tolerateMalformedRequests<Definition extends ServiceDefinition>(definition: Definition): Definition {
  const tolerant: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    tolerant[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return new MalformedRequest(method.path, error instanceof Error ? error.message : String(error));
        }
      },
    };
  }
  return tolerant as Definition;
}

/** Throws INVALID_ARGUMENT when the request could not be decoded. */
export function throwIfMalformed(request: unknown): void {
  if (request instanceof MalformedRequest) {
    throw new InvalidArgumentError([
      { field: 'request', description: `the request is not a valid protobuf message for ${request.path} (${request.problem})` },
    ]);
  }
}
