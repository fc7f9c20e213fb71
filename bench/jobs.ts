/** The messages between the bench's orchestrator and its load-generating worker processes. */

/** Closed-loop unary calls: `concurrency` calls in flight for `durationMs`, after a warm-up. */
export interface AppendLoadJob {
  kind: 'append-load';
  address: string;
  /** Streams to append to, round-robin (the baseline ignores them). */
  streams: string[];
  concurrency: number;
  eventsPerEntry: number;
  warmupMs: number;
  durationMs: number;
  /** Seed of the event generator, distinct per worker so events differ. */
  seed: number;
}

/**
 * Reads or subscribes to a whole stream from version 0 and counts the events delivered: from the
 * wire bytes (`subscribe`, `read`), or as an application would, through the TypeScript client's
 * `subscribe`, which decodes every entry into objects (`client`).
 */
export interface CatchUpJob {
  kind: 'catch-up';
  address: string;
  /** The stream, or the subtree of the feed (`feed`, `follow`). */
  stream: string;
  /**
   * `feed`: SubscribeFeed of the subtree `stream`, counted from the wire bytes until caught_up;
   * `follow`: the same through the TypeScript client's `follow`, which decodes every entry.
   */
  via: 'subscribe' | 'read' | 'client' | 'feed' | 'follow';
  /** Entries per Read call. */
  readLimit: number;
  /**
   * Subscribe and SubscribeFeed: max_entries_per_message; unset asks for one entry per message
   * (through the client: its default).
   */
  maxEntriesPerMessage?: number;
  /** SubscribeFeed: after_position (default 0, the beginning of the feed). */
  afterPosition?: number;
}

/** Opens subscriptions and keeps them until told to stop, timing each live delivery. */
export interface SubscribeJob {
  kind: 'subscribe';
  address: string;
  /** One subscription per item (a stream may appear several times). */
  streams: string[];
  /** Spread the subscriptions over this many HTTP/2 connections. */
  connections: number;
  /**
   * SubscribeFeed instead of Subscribe: each item of `streams` is a subtree, followed from now;
   * `maxEntriesPerMessage` as SubscribeFeedRequest.max_entries_per_message (unset: one entry per
   * message).
   */
  feed?: { maxEntriesPerMessage?: number };
  /** Sent as `authorization: Bearer <key>` on each call, for a server that requires auth. */
  apiKey?: string;
}

/** Appends single events at a fixed rate, stamping each with the time it was sent. */
export interface PacedWriteJob {
  kind: 'paced-write';
  address: string;
  streams: string[];
  ratePerSecond: number;
  durationMs: number;
  seed: number;
}

/** A subscription that reads slowly: `eventsPerSecond` at most, for `durationMs`. */
export interface SlowConsumerJob {
  kind: 'slow-consumer';
  address: string;
  stream: string;
  eventsPerSecond: number;
  durationMs: number;
}

export type Job = AppendLoadJob | CatchUpJob | SubscribeJob | PacedWriteJob | SlowConsumerJob;

/** CPU the worker used during the measured window, as a fraction of one core. */
export interface CpuFigure {
  cpuCores: number;
}

export interface AppendLoadResult extends CpuFigure {
  calls: number;
  errors: number;
  seconds: number;
  /** Latency of every measured call, in milliseconds. */
  latenciesMs: number[];
  /** Mean size of the JSON data of the events sent. */
  rawJsonBytesPerEvent: number;
  firstError?: string;
}

export interface CatchUpResult extends CpuFigure {
  events: number;
  messages: number;
  seconds: number;
}

export interface SubscribeResult extends CpuFigure {
  /** Append-to-delivery latency of every live event received, in milliseconds. */
  latenciesMs: number[];
  /** When each of those events was sent (wall clock, ms), in the same order. */
  sentAtMs: number[];
  errors: number;
  firstError?: string;
}

export interface PacedWriteResult extends CpuFigure {
  calls: number;
  /** Latency of every acknowledged append, in milliseconds: the part of append-to-delivery before the fan-out. */
  latenciesMs: number[];
  errors: number;
  firstError?: string;
}

export interface SlowConsumerResult extends CpuFigure {
  events: number;
}

/** What any job answers. */
export type WorkerResult = AppendLoadResult | CatchUpResult | SubscribeResult | PacedWriteResult | SlowConsumerResult;

/** Orchestrator → worker. */
export type ToWorker = { type: 'run'; job: Job } | { type: 'stop' };

/** Worker → orchestrator. `ready` is sent by subscribe jobs once every subscription is live. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; result: WorkerResult }
  | { type: 'failed'; message: string };
