import type { Event, FeedSelector } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { FeedSelection } from '../feed/feed-filter';
import type { Limits } from '../config/config';
import { EntryEventIds } from '../model/event-ids';
import { isSystemPath, streamPathProblem } from '../model/stream-path';
import { InvalidArgumentError, LimitExceededError, type FieldViolation } from '../core/errors';
import { isJson } from './json-check';

/**
 * Request validation. Each check names the field and the rule it broke; all violations of a
 * request are reported together, before anything is written.
 */

export const DEFAULT_CONTENT_TYPE = 'application/json';
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;\s*[^;\s]+=[^;]+)*$/;
const JSON_MEDIA_TYPE = /^application\/(?:[A-Za-z0-9!#$&^_.-]+\+)?json(?:\s*;.*)?$/i;

/** Collects violations while checking a request, then throws them together. */
export class Violations {
  private readonly found: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.found.push({ field, description });
  }

  throwIfAny(): void {
    if (this.found.length > 0) throw new InvalidArgumentError(this.found);
  }
}

/** Checks a stream path. System streams ("/$/...") are reserved for the server itself. */
export function checkStream(violations: Violations, field: string, stream: string): void {
  const problem = streamPathProblem(stream);
  if (problem) violations.add(field, problem);
  else if (isSystemPath(stream)) violations.add(field, 'the top-level segment "$" is reserved for system streams');
}

/** Checks a version field: a non-negative int64. */
export function checkVersion(violations: Violations, field: string, version: bigint | undefined): void {
  if (version !== undefined && version < 0n) violations.add(field, 'must be >= 0');
}

/** Checks a page size and returns the one to use. */
export function pageSize(violations: Violations, field: string, limit: number): number {
  if (limit > MAX_PAGE_SIZE) violations.add(field, `must be between 0 and ${MAX_PAGE_SIZE} (0 means ${DEFAULT_PAGE_SIZE})`);
  return limit === 0 ? DEFAULT_PAGE_SIZE : Math.min(limit, MAX_PAGE_SIZE);
}

/** Checks a perspective name. */
export function checkPerspective(violations: Violations, field: string, perspective: string): void {
  if (perspective === '') violations.add(field, 'is required');
  else if (perspective.length > 256 || !PRINTABLE_ASCII.test(perspective)) {
    violations.add(field, 'must be 1..256 printable ASCII characters');
  }
}

/** Checks a request id (empty means none). */
export function checkRequestId(violations: Violations, field: string, requestId: string): void {
  if (requestId !== '' && (requestId.length > 128 || !PRINTABLE_ASCII.test(requestId))) {
    violations.add(field, 'must be at most 128 printable ASCII characters');
  }
}

/** Checks a content type and returns it, defaulted. */
export function contentTypeOf(violations: Violations, field: string, contentType: string): string {
  if (contentType === '') return DEFAULT_CONTENT_TYPE;
  if (contentType.length > 256 || !MEDIA_TYPE.test(contentType)) {
    violations.add(field, 'must be a media type such as application/json');
  }
  return contentType;
}

/**
 * Checks the events of an append and returns them ready to store: ids generated where missing,
 * content types defaulted. Size limits are RESOURCE_EXHAUSTED, other rules INVALID_ARGUMENT.
 */
export function prepareEvents(violations: Violations, field: string, events: Event[], limits: Limits): Event[] {
  if (events.length === 0) {
    violations.add(field, 'must hold at least one event');
    return [];
  }
  if (events.length > limits.maxEventsPerEntry) {
    throw new LimitExceededError(field, 'max_events_per_entry', limits.maxEventsPerEntry, events.length);
  }
  const ids = new Set<string>();
  const generatedIds = new EntryEventIds();
  let entryBytes = 0;
  const prepared = events.map((event, index) => {
    const at = `${field}[${index}]`;
    if (event.type === '') violations.add(`${at}.type`, 'is required');
    else if (event.type.length > 256 || !PRINTABLE_ASCII.test(event.type)) {
      violations.add(`${at}.type`, 'must be 1..256 printable ASCII characters');
    } else if (event.type.startsWith('$')) violations.add(`${at}.type`, 'types starting with "$" are reserved for system events');

    let id = event.id;
    if (id === '') id = generatedIds.next();
    else if (id.length > 128 || !PRINTABLE_ASCII.test(id)) violations.add(`${at}.id`, 'must be at most 128 printable ASCII characters');
    if (ids.has(id)) violations.add(`${at}.id`, 'must be unique within the entry');
    ids.add(id);

    const contentType = contentTypeOf(violations, `${at}.content_type`, event.contentType);
    if (event.data.byteLength > 0 && JSON_MEDIA_TYPE.test(contentType) && !isJson(event.data)) {
      violations.add(`${at}.data`, `must be valid JSON for content_type ${contentType}`);
    }

    if (event.occurredAt !== undefined && !isStorableTime(event.occurredAt)) {
      violations.add(`${at}.occurred_at`, 'must be a Timestamp between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z');
    }

    let eventBytes = event.data.byteLength;
    for (const [key, value] of Object.entries(event.metadata)) {
      if (key === '' || key.length > 128) violations.add(`${at}.metadata`, 'keys must be 1..128 characters');
      eventBytes += Buffer.byteLength(key) + Buffer.byteLength(value);
    }
    if (eventBytes > limits.maxEventBytes) {
      throw new LimitExceededError(`${at}`, 'max_event_bytes', limits.maxEventBytes, eventBytes);
    }
    entryBytes += eventBytes;
    return { ...event, id, contentType };
  });
  if (entryBytes > limits.maxEntryBytes) {
    throw new LimitExceededError(field, 'max_entry_bytes', limits.maxEntryBytes, entryBytes);
  }
  return prepared;
}

/** The range of google.protobuf.Timestamp, in ms: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. */
const EARLIEST_TIMESTAMP_MS = -62_135_596_800_000;
const LATEST_TIMESTAMP_MS = 253_402_300_799_999;

/**
 * Whether an event's occurred_at can be stored and sent back. A Timestamp outside its documented
 * range decodes to a Date that is invalid (seconds past what a Date holds) or that cannot be
 * encoded again, and encoding it would fail after validation.
 */
function isStorableTime(date: Date): boolean {
  const ms = date.getTime();
  return Number.isFinite(ms) && ms >= EARLIEST_TIMESTAMP_MS && ms <= LATEST_TIMESTAMP_MS;
}

/** Event types one feed request may name. */
export const MAX_FEED_EVENT_TYPES = 100;

/**
 * Checks a FeedSelector and returns the selection it asks for. `selector` is required: a feed of
 * everything is asked for with stream "/", not by leaving the selector out.
 */
export function feedSelectionOf(violations: Violations, field: string, selector: FeedSelector | undefined): FeedSelection {
  if (!selector) {
    violations.add(field, 'is required (stream "/" selects every stream)');
    return { subtree: { path: '/', descendants: true }, eventTypes: [] };
  }
  checkStream(violations, `${field}.stream`, selector.stream);
  const types = selector.eventTypes;
  if (types.length > MAX_FEED_EVENT_TYPES) violations.add(`${field}.event_types`, `must hold at most ${MAX_FEED_EVENT_TYPES} types`);
  types.forEach((type, index) => {
    const at = `${field}.event_types[${index}]`;
    const name = type.endsWith('.*') ? type.slice(0, -2) : type;
    if (name === '' || name.length > 256 || !PRINTABLE_ASCII.test(name) || name.includes('*')) {
      violations.add(at, 'must be an event type, or a prefix followed by ".*" ("order.*")');
    }
  });
  return { subtree: { path: selector.stream, descendants: !selector.excludeDescendants }, eventTypes: types };
}

/** Checks a feed position field: a non-negative int64. */
export function checkPosition(violations: Violations, field: string, position: bigint): void {
  if (position < 0n) violations.add(field, 'must be >= 0');
}
