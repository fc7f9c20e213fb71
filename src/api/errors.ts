import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import type { Any } from '../../clients/ts/src/gen/google/protobuf/any';
import { BadRequest, ErrorInfo } from '../../clients/ts/src/gen/google/rpc/error_details';
import { Status } from '../../clients/ts/src/gen/google/rpc/status';
import { PermissionDeniedError, UnauthenticatedError } from '../auth/errors';
import {
  CallAbandonedError,
  ConsumerGroupAlreadyExistsError,
  ConsumerGroupNotFoundError,
  ConsumerGroupsUnavailableError,
  ConsumerMemberNotFoundError,
  CorruptDataError,
  DomainError,
  EncryptionDisabledError,
  InvalidArgumentError,
  KeyUnavailableError,
  LimitExceededError,
  ParentNotFoundError,
  ShuttingDownError,
  SnapshotAheadOfStreamError,
  StoreUnavailableError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  StreamNotShreddableError,
  StreamShreddedError,
  WrongExpectedVersionError,
  FeedUnavailableError,
} from '../core/errors';

/** The domain of every ErrorInfo this server sends. */
export const ERROR_DOMAIN = 'eventhorizon.v1';

const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The one table from domain errors to gRPC status codes. */
function codeOf(error: DomainError): status {
  if (error instanceof InvalidArgumentError) return status.INVALID_ARGUMENT;
  if (error instanceof StreamNotFoundError || error instanceof ParentNotFoundError) return status.NOT_FOUND;
  if (error instanceof ConsumerGroupNotFoundError || error instanceof ConsumerMemberNotFoundError) return status.NOT_FOUND;
  if (error instanceof StreamAlreadyExistsError || error instanceof ConsumerGroupAlreadyExistsError) return status.ALREADY_EXISTS;
  if (error instanceof ConsumerGroupsUnavailableError) return status.FAILED_PRECONDITION;
  if (error instanceof WrongExpectedVersionError) return status.ABORTED;
  if (error instanceof SnapshotAheadOfStreamError || error instanceof StreamNotShreddableError || error instanceof FeedUnavailableError) {
    return status.FAILED_PRECONDITION;
  }
  if (error instanceof StreamShreddedError || error instanceof KeyUnavailableError || error instanceof EncryptionDisabledError) {
    return status.FAILED_PRECONDITION;
  }
  if (error instanceof LimitExceededError) return status.RESOURCE_EXHAUSTED;
  if (error instanceof StoreUnavailableError || error instanceof ShuttingDownError) return status.UNAVAILABLE;
  if (error instanceof CorruptDataError) return status.DATA_LOSS;
  if (error instanceof CallAbandonedError) return status.CANCELLED;
  if (error instanceof UnauthenticatedError) return status.UNAUTHENTICATED;
  if (error instanceof PermissionDeniedError) return status.PERMISSION_DENIED;
  return status.INTERNAL;
}

/**
 * Turns any error into a gRPC status with a google.rpc.Status in `grpc-status-details-bin`.
 * Domain errors keep their message and facts; anything else leaves as INTERNAL with no internals
 * (the original is for the log only).
 */
export function toStatus(error: unknown): StatusObject & { unexpected: boolean } {
  if (!(error instanceof DomainError)) {
    return { ...build(status.INTERNAL, 'internal error', 'INTERNAL', {}), unexpected: true };
  }
  const built = build(codeOf(error), error.message, error.reason, error.metadata(), error);
  return { ...built, unexpected: codeOf(error) === status.INTERNAL };
}

function build(
  code: status,
  message: string,
  reason: string,
  facts: Record<string, string>,
  error?: DomainError,
): StatusObject {
  const details: Any[] = [
    pack('google.rpc.ErrorInfo', ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: facts }).finish()),
  ];
  if (error instanceof InvalidArgumentError) {
    const fieldViolations = error.violations.map((v) => ({ field: v.field, description: v.description, reason: '' }));
    details.push(pack('google.rpc.BadRequest', BadRequest.encode({ fieldViolations }).finish()));
  }
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode({ code, message, details }).finish()));
  return { code, details: message, metadata };
}

function pack(typeName: string, value: Uint8Array): Any {
  return { typeUrl: TYPE_URL_PREFIX + typeName, value: Buffer.from(value) };
}
