/**
 * Typed errors of the Event Horizon client. The server puts a google.rpc.Status in the
 * `grpc-status-details-bin` trailer with an ErrorInfo (a stable `reason` and facts in `metadata`)
 * and, for INVALID_ARGUMENT, a BadRequest; this module decodes those into error classes that a
 * caller can `instanceof` instead of comparing status codes and strings.
 */
import type { Metadata } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { BadRequest, ErrorInfo } from './gen/google/rpc/error_details';
import { Status } from './gen/google/rpc/status';

/** The ErrorInfo domain of every error Event Horizon sends. */
export const ERROR_DOMAIN = 'eventhorizon.v1';

/** One invalid field of a request and the rule it broke (from google.rpc.BadRequest). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** What the server said about a failed call, decoded from the status and its details. */
export interface StatusDetails {
  /** The gRPC status code. */
  code: status;
  /** The status message. */
  message: string;
  /** ErrorInfo.reason, e.g. "WRONG_EXPECTED_VERSION"; undefined when the server sent none. */
  reason: string | undefined;
  /** ErrorInfo.domain; "eventhorizon.v1" for errors of this server. */
  domain: string | undefined;
  /** ErrorInfo.metadata: facts such as `stream` or `actual_version`. */
  metadata: Record<string, string>;
  /** BadRequest field violations (INVALID_ARGUMENT only). */
  violations: FieldViolation[];
}

/** The shape of a grpc-js error; checked structurally so that any copy of grpc-js works. */
interface GrpcErrorLike {
  code: number;
  details?: string;
  message?: string;
  metadata?: Metadata;
}

function isGrpcError(error: unknown): error is GrpcErrorLike {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number';
}

/**
 * Decodes the status code, message, ErrorInfo and BadRequest of a failed gRPC call. Returns
 * undefined for anything that is not a gRPC error.
 */
export function decodeStatusDetails(error: unknown): StatusDetails | undefined {
  if (!isGrpcError(error)) return undefined;
  const result: StatusDetails = {
    code: error.code,
    message: error.details ?? error.message ?? '',
    reason: undefined,
    domain: undefined,
    metadata: {},
    violations: [],
  };
  const raw = error.metadata?.get('grpc-status-details-bin')[0];
  if (!(raw instanceof Buffer)) return result;
  const decoded = Status.decode(raw);
  if (decoded.message !== '') result.message = decoded.message;
  for (const detail of decoded.details) {
    if (detail.typeUrl.endsWith('/google.rpc.ErrorInfo')) {
      const info = ErrorInfo.decode(detail.value);
      result.reason = info.reason;
      result.domain = info.domain;
      result.metadata = info.metadata;
    } else if (detail.typeUrl.endsWith('/google.rpc.BadRequest')) {
      result.violations = BadRequest.decode(detail.value).fieldViolations.map((violation) => ({
        field: violation.field,
        description: violation.description,
      }));
    }
  }
  return result;
}

/** Base class of every error the client throws for a failed call. */
export class EventHorizonError extends Error {
  override name = 'EventHorizonError';
  /** The gRPC status code. */
  readonly code: status;
  /** The stable ErrorInfo reason, when the server sent one. */
  readonly reason: string | undefined;
  /** ErrorInfo metadata: facts about the error. */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(details: StatusDetails, options?: { cause?: unknown }) {
    super(details.message || `gRPC status ${status[details.code] ?? details.code}`, options);
    this.code = details.code;
    this.reason = details.reason;
    this.metadata = details.metadata;
  }

  /** The stream the error is about, when the server named one. */
  get stream(): string | undefined {
    return this.metadata['stream'];
  }
}

/** ABORTED / WRONG_EXPECTED_VERSION: an append's `expectedVersion` was not the stream's head. */
export class ConflictError extends EventHorizonError {
  override name = 'ConflictError';
  /** The stream's head version when the append was refused. */
  readonly actualVersion: bigint;
  /** The version the append expected. */
  readonly expectedVersion: bigint | undefined;

  constructor(details: StatusDetails, options?: { cause?: unknown }) {
    super(details, options);
    this.actualVersion = versionFact(details.metadata['actual_version']) ?? -1n;
    this.expectedVersion = versionFact(details.metadata['expected_version']);
  }
}

/** NOT_FOUND: the stream (STREAM_NOT_FOUND) or its parent (PARENT_NOT_FOUND) does not exist. */
export class NotFoundError extends EventHorizonError {
  override name = 'NotFoundError';
}

/** ALREADY_EXISTS / STREAM_ALREADY_EXISTS: CreateStream named an existing stream. */
export class AlreadyExistsError extends EventHorizonError {
  override name = 'AlreadyExistsError';
}

/** INVALID_ARGUMENT: the request broke a rule; `violations` names each field and the rule. */
export class InvalidArgumentError extends EventHorizonError {
  override name = 'InvalidArgumentError';
  /** Every invalid field of the request (google.rpc.BadRequest). */
  readonly violations: readonly FieldViolation[];

  constructor(details: StatusDetails, options?: { cause?: unknown }) {
    super(details, options);
    this.violations = details.violations;
  }
}

/**
 * FAILED_PRECONDITION: the request is valid but the stream's state forbids it; `reason` says
 * which: SNAPSHOT_AHEAD_OF_STREAM, STREAM_SHREDDED, ENCRYPTION_DISABLED.
 */
export class FailedPreconditionError extends EventHorizonError {
  override name = 'FailedPreconditionError';
}

/** RESOURCE_EXHAUSTED / LIMIT_EXCEEDED: a configured limit was exceeded (metadata names it). */
export class LimitExceededError extends EventHorizonError {
  override name = 'LimitExceededError';
}

/** UNAUTHENTICATED: the call carried no API key (`token`), or one the server does not accept. */
export class UnauthenticatedError extends EventHorizonError {
  override name = 'UnauthenticatedError';
}

/** PERMISSION_DENIED: the key's policy does not allow the action; metadata names action and resource. */
export class PermissionDeniedError extends EventHorizonError {
  override name = 'PermissionDeniedError';
}

/** UNAVAILABLE: the server is unreachable or shutting down. Safe to retry idempotent calls. */
export class UnavailableError extends EventHorizonError {
  override name = 'UnavailableError';
}

/** DEADLINE_EXCEEDED: the call did not finish within its deadline. */
export class DeadlineExceededError extends EventHorizonError {
  override name = 'DeadlineExceededError';
}

/** CANCELLED: the call was cancelled, usually by the caller's AbortSignal. */
export class CancelledError extends EventHorizonError {
  override name = 'CancelledError';
}

type ErrorClass = new (details: StatusDetails, options?: { cause?: unknown }) => EventHorizonError;

/** The one table from status codes to error classes. */
const CLASS_OF_CODE: Partial<Record<status, ErrorClass>> = {
  [status.ABORTED]: ConflictError,
  [status.NOT_FOUND]: NotFoundError,
  [status.ALREADY_EXISTS]: AlreadyExistsError,
  [status.INVALID_ARGUMENT]: InvalidArgumentError,
  [status.FAILED_PRECONDITION]: FailedPreconditionError,
  [status.RESOURCE_EXHAUSTED]: LimitExceededError,
  [status.UNAUTHENTICATED]: UnauthenticatedError,
  [status.PERMISSION_DENIED]: PermissionDeniedError,
  [status.UNAVAILABLE]: UnavailableError,
  [status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [status.CANCELLED]: CancelledError,
};

/**
 * Turns a grpc-js error into the matching typed error (the original is kept as `cause`).
 * Anything that is not a gRPC error, or is already typed, is returned as it is.
 */
export function toClientError(error: unknown): unknown {
  if (error instanceof EventHorizonError) return error;
  const details = decodeStatusDetails(error);
  if (!details) return error;
  const ErrorType = CLASS_OF_CODE[details.code] ?? EventHorizonError;
  return new ErrorType(details, { cause: error });
}

function versionFact(raw: string | undefined): bigint | undefined {
  return raw !== undefined && /^-?\d+$/.test(raw) ? BigInt(raw) : undefined;
}
