/**
 * Domain errors. Stores and the core throw these; `src/api/errors.ts` is the one place that
 * turns them into gRPC statuses, so every store reports the same condition the same way.
 */

export abstract class DomainError extends Error {
  /** Stable UPPER_SNAKE_CASE reason, sent to clients in google.rpc.ErrorInfo. */
  abstract readonly reason: string;
  /** Facts about the error, sent to clients in ErrorInfo metadata. */
  metadata(): Record<string, string> {
    return {};
  }
}

export class StreamNotFoundError extends DomainError {
  readonly reason = 'STREAM_NOT_FOUND';
  constructor(readonly stream: string) {
    super(`stream ${stream} does not exist`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream };
  }
}

export class ParentNotFoundError extends DomainError {
  readonly reason = 'PARENT_NOT_FOUND';
  constructor(readonly stream: string, readonly parent: string) {
    super(`parent ${parent} of stream ${stream} does not exist (set create_parents to create it)`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream, parent: this.parent };
  }
}

export class StreamAlreadyExistsError extends DomainError {
  readonly reason = 'STREAM_ALREADY_EXISTS';
  constructor(readonly stream: string) {
    super(`stream ${stream} already exists`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream };
  }
}

export class WrongExpectedVersionError extends DomainError {
  readonly reason = 'WRONG_EXPECTED_VERSION';
  constructor(readonly stream: string, readonly expectedVersion: bigint, readonly actualVersion: bigint) {
    super(`stream ${stream} is at version ${actualVersion}, not the expected ${expectedVersion}`);
  }
  override metadata(): Record<string, string> {
    return {
      stream: this.stream,
      expected_version: this.expectedVersion.toString(),
      actual_version: this.actualVersion.toString(),
    };
  }
}

export class SnapshotAheadOfStreamError extends DomainError {
  readonly reason = 'SNAPSHOT_AHEAD_OF_STREAM';
  constructor(readonly stream: string, readonly version: bigint, readonly headVersion: bigint) {
    super(`snapshot version ${version} is past the head ${headVersion} of stream ${stream}`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream, version: this.version.toString(), head_version: this.headVersion.toString() };
  }
}

/** A configured limit was exceeded (events per entry, bytes per event, ...). */
export class LimitExceededError extends DomainError {
  readonly reason = 'LIMIT_EXCEEDED';
  constructor(readonly field: string, readonly limit: string, readonly max: number, readonly actual: number) {
    super(`${field}: ${actual} exceeds the limit ${limit} = ${max}`);
  }
  override metadata(): Record<string, string> {
    return { field: this.field, limit: this.limit, max: String(this.max), actual: String(this.actual) };
  }
}

/** One invalid field of a request and the rule it broke. */
export interface FieldViolation {
  field: string;
  description: string;
}

export class InvalidArgumentError extends DomainError {
  readonly reason = 'INVALID_ARGUMENT';
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join('; '));
  }
}

/** The stream's keys were destroyed (crypto-shredding): its contents are gone for good. */
export class StreamShreddedError extends DomainError {
  readonly reason = 'STREAM_SHREDDED';
  constructor(readonly stream: string) {
    super(`stream ${stream} shredded: its entries and snapshots can no longer be read or written`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream };
  }
}

/** Encrypted data whose key this server cannot use (no keyring, or a KEK missing from it). */
export class KeyUnavailableError extends DomainError {
  readonly reason = 'KEY_UNAVAILABLE';
}

/** A key operation on a server that runs without a keyring. */
export class EncryptionDisabledError extends DomainError {
  readonly reason = 'ENCRYPTION_DISABLED';
  constructor() {
    super('encryption at rest is not configured on this server (see EH_KEYRING_FILE)');
  }
}

/** Stored data cannot be decoded (unknown format, corrupt or oversized payload). */
export class CorruptDataError extends DomainError {
  readonly reason = 'CORRUPT_DATA';
}

/** The storage backend cannot be reached or is overloaded; the caller may retry. */
export class StoreUnavailableError extends DomainError {
  readonly reason = 'STORE_UNAVAILABLE';
}

/**
 * The caller gave up (its deadline passed, or it cancelled) before the store was done. An append
 * refused with it was not written. The client has its answer already; this one reaches the logs.
 */
export class CallAbandonedError extends DomainError {
  readonly reason = 'CALL_ABANDONED';
  constructor() {
    super('the caller gave up (deadline or cancel) before the store was done');
  }
}

/** The server is shutting down; clients should reconnect (possibly elsewhere). */
export class ShuttingDownError extends DomainError {
  readonly reason = 'SHUTTING_DOWN';
  constructor() {
    super('the server is shutting down');
  }
}

/**
 * A stream the server cannot do without may not be shredded: the root records the creation of
 * every top-level stream, so shredding it would refuse them all.
 */
export class StreamNotShreddableError extends DomainError {
  readonly reason = 'STREAM_NOT_SHREDDABLE';
  constructor(readonly stream: string, why: string) {
    super(`stream ${stream} cannot be shredded: ${why}`);
  }
  override metadata(): Record<string, string> {
    return { stream: this.stream };
  }
}

/**
 * The store cannot serve the feed: on DynamoDB, the events table has no stream (DynamoDB Streams)
 * to index, or no indexer has indexed it yet. The message names the command that fixes it.
 */
export class FeedUnavailableError extends DomainError {
  readonly reason = 'FEED_UNAVAILABLE';
}

/** No consumer group of that name. */
export class ConsumerGroupNotFoundError extends DomainError {
  readonly reason = 'CONSUMER_GROUP_NOT_FOUND';
  constructor(readonly group: string) {
    super(`consumer group ${group} does not exist`);
  }
  override metadata(): Record<string, string> {
    return { group: this.group };
  }
}

/** A consumer group of that name exists already. */
export class ConsumerGroupAlreadyExistsError extends DomainError {
  readonly reason = 'CONSUMER_GROUP_ALREADY_EXISTS';
  constructor(readonly group: string) {
    super(`consumer group ${group} already exists`);
  }
  override metadata(): Record<string, string> {
    return { group: this.group };
  }
}

/** The store keeps no consumer-group state (both built-in stores keep it; docs/consumer-groups.md). */
export class ConsumerGroupsUnavailableError extends DomainError {
  readonly reason = 'CONSUMER_GROUPS_UNAVAILABLE';
  constructor() {
    super('this store does not keep consumer groups (see docs/consumer-groups.md)');
  }
}

/**
 * An Ack for a member this server does not know (any more): its call ended and its entries went
 * back to the group. The client joins again with a new Consume.
 */
export class ConsumerMemberNotFoundError extends DomainError {
  readonly reason = 'CONSUMER_MEMBER_NOT_FOUND';
  constructor(readonly group: string, readonly member: string) {
    super(`member ${member} of consumer group ${group} is not connected to this server`);
  }
  override metadata(): Record<string, string> {
    return { group: this.group, member_id: this.member };
  }
}
