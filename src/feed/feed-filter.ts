import type { Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { isSystemPath } from '../model/stream-path';
import type { Subtree } from '../store/port';

/** What a feed consumer asked for: a subtree and, optionally, event types. */
export interface FeedSelection {
  subtree: Subtree;
  /** Exact type names, or prefixes written "prefix.*". Empty: every event. */
  eventTypes: readonly string[];
}

/** Whether a caller may read a stream (its key's policy, now); every stream without auth. */
export type StreamReadCheck = (stream: string) => boolean;

/**
 * Decides what of the feed one consumer gets: streams of its subtree that it may read, never
 * the system streams, and, with event types, the matching events of each entry.
 */
export class FeedFilter {
  private readonly exact: Set<string>;
  private readonly prefixes: string[];
  /** The path prefix of the subtree's descendants ("/" for the root), or undefined without them. */
  private readonly below: string | undefined;

  constructor(
    readonly selection: FeedSelection,
    private readonly mayRead: StreamReadCheck | undefined,
  ) {
    this.exact = new Set(selection.eventTypes.filter((type) => !type.endsWith('.*')));
    // "order.*" matches "order.placed": the prefix keeps its dot.
    this.prefixes = selection.eventTypes.filter((type) => type.endsWith('.*')).map((type) => type.slice(0, -1));
    const { path, descendants } = selection.subtree;
    this.below = descendants ? (path === '/' ? '/' : `${path}/`) : undefined;
  }

  /** Whether every event passes (no event types): entries go out as stored, without decoding. */
  get allEvents(): boolean {
    return this.selection.eventTypes.length === 0;
  }

  /** Whether the stream's entries belong in this feed (subtree, system streams, the key's policy). */
  wantsStream(stream: string): boolean {
    const { path } = this.selection.subtree;
    if (stream !== path && (this.below === undefined || !stream.startsWith(this.below))) return false;
    if (isSystemPath(stream)) return false;
    return this.mayRead === undefined || this.mayRead(stream);
  }

  /** Whether one event type is wanted. */
  wantsType(type: string): boolean {
    if (this.allEvents || this.exact.has(type)) return true;
    for (const prefix of this.prefixes) if (type.startsWith(prefix)) return true;
    return false;
  }

  /** The wanted events of an entry (all of them without event types). */
  selectEvents(events: Event[]): Event[] {
    return this.allEvents ? events : events.filter((event) => this.wantsType(event.type));
  }
}
