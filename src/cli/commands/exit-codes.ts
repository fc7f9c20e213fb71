import { status, type ServiceError } from '@grpc/grpc-js';

/** A command line the command cannot run: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** The target of a command holds something else than the command would write: exit code 6. */
export class TargetConflictError extends Error {}

/** Exit codes that say what failed, for scripts. */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (server error, store error, not found). */
  failure: 1,
  /** The command line or configuration is wrong. */
  usage: 2,
  /** The server could not be reached, or is not serving. */
  unavailable: 3,
  /** No or bad API key (UNAUTHENTICATED), or not allowed (PERMISSION_DENIED). */
  denied: 4,
  /** The stream or snapshot does not exist. */
  notFound: 5,
  /** A conflict: wrong expected version, or the stream already exists. */
  conflict: 6,
} as const;

/** Whether an error is a gRPC status from the server (or the channel). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'number' && 'details' in error;
}

/** The exit code that says what kind of failure a gRPC status is. */
export function exitCodeOf(error: ServiceError): number {
  switch (error.code) {
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return EXIT.unavailable;
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return EXIT.denied;
    case status.NOT_FOUND:
      return EXIT.notFound;
    case status.ABORTED:
    case status.ALREADY_EXISTS:
      return EXIT.conflict;
    case status.INVALID_ARGUMENT:
      return EXIT.usage;
    default:
      return EXIT.failure;
  }
}
