import { randomUUID } from 'node:crypto';
import {
  Metadata,
  ServerInterceptingCall,
  status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type StatusObject,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Encoded } from '../codec/encoded-messages';
import type { Metrics } from './metrics';
import { bindRequestContext, type RequestContext } from './request-context';

/** The metadata key that carries the request id, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

const API_PREFIX = '/eventhorizon.v1.EventHorizon/';
const SUBSCRIBE = `${API_PREFIX}Subscribe`;
/** Methods whose success means entries were appended. */
const APPENDING = new Set([`${API_PREFIX}Append`, `${API_PREFIX}CreateStream`]);

/** A caller's request id is echoed when it looks like one; anything else gets a fresh id. */
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Codes that say the server, not the caller, failed: logged as warnings. */
const SERVER_FAULTS = new Set<number>([status.INTERNAL, status.UNKNOWN, status.DATA_LOSS, status.UNAVAILABLE]);

/** The name Prometheus and the logs use for a status code, e.g. "PERMISSION_DENIED". */
export function codeName(code: number): string {
  return status[code] ?? String(code);
}

/**
 * The outermost server interceptor: gives every call a request id (the caller's `x-request-id`
 * or a new one, echoed back in the response metadata), binds that request context to the call's
 * metadata so that the lines logged for the call name it (request-context.ts), counts and times
 * the call by method and status code, and logs its end.
 */
export function observabilityInterceptor(options: { metrics: Metrics; logger: Logger }): ServerInterceptor {
  return (method, call) => new ObservedCall(call, method.path, options);
}

/** A status as a layer sends it (grpc-js's PartialStatusObject, not exported by grpc-js). */
type CallStatus = Parameters<ServerInterceptingCallInterface['sendStatus']>[0];

/** What grpc-js hands a call's `start`: the next layer's listener (not exported by grpc-js). */
type CallListener = Parameters<ServerInterceptingCallInterface['start']>[0];

/**
 * One call as the observability interceptor sees it: a layer between grpc-js's call and the next
 * interceptor (or the handler), and the listener of what arrives, in one object with its methods
 * on the class. grpc-js's generic layer (`new ServerInterceptingCall(call, responder)`) builds a
 * listener, a responder and a closure per hook for each call, and an idle subscription holds them
 * for as long as it is open: about 1 KB each of 10,000 (BENCHMARKS.md, "Memory"). Every hook
 * here goes on at once (none waits), so the queueing of the generic layer has nothing to hold;
 * it is subclassed only to be the type grpc-js's ServerInterceptor returns, its own hooks left
 * to the defaults and the methods that use them overridden.
 */
class ObservedCall extends ServerInterceptingCall implements CallListener {
  private readonly started = performance.now();
  private readonly context: RequestContext;
  private readonly subscribe: boolean;
  private readonly appending: boolean;
  /** The next layer's listener, once started. */
  private listener: CallListener | undefined;
  // Kept for counting appends only: a subscription would otherwise hold its request and the
  // last message it was sent (maybe a large stored entry) for as long as it is open.
  private request: unknown;
  private response: unknown;
  private headersSent = false;
  private finished = false;
  /** Once the call is cancelled, nothing more is passed on (as grpc-js's own layer does). */
  private cancelled = false;

  constructor(
    private readonly next: ServerInterceptingCallInterface,
    path: string,
    private readonly observers: { metrics: Metrics; logger: Logger },
  ) {
    super(next);
    this.context = { requestId: randomUUID(), method: path.slice(1) };
    this.subscribe = path === SUBSCRIBE;
    this.appending = APPENDING.has(path);
  }

  override start(listener: CallListener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    if (this.cancelled) return;
    const given = metadata.get(REQUEST_ID_HEADER)[0];
    if (typeof given === 'string' && ACCEPTABLE_REQUEST_ID.test(given)) this.context.requestId = given;
    if (this.subscribe) this.observers.metrics.subscriptions.inc();
    bindRequestContext(metadata, this.context);
    this.listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    if (this.cancelled) return;
    if (this.appending) this.request = message;
    this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    if (this.cancelled) return;
    this.listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    this.cancelled = true;
    this.finish(status.CANCELLED, 'cancelled by the client');
    this.listener?.onCancel();
  }

  override sendMetadata(metadata: Metadata): void {
    this.headersSent = true;
    metadata.set(REQUEST_ID_HEADER, this.context.requestId);
    this.next.sendMetadata(metadata);
  }

  override sendMessage(message: unknown, callback: () => void): void {
    // The first message carries the response headers, and with them the request id.
    if (!this.headersSent) this.sendMetadata(new Metadata());
    if (this.appending) this.response = message;
    if (this.subscribe) observeDelivery(this.observers.metrics, message);
    this.next.sendMessage(message, callback);
  }

  override sendStatus(statusObject: CallStatus): void {
    this.finish(statusObject.code, statusObject.details);
    // Without response headers the status travels alone: the request id goes with it.
    this.next.sendStatus(this.headersSent ? statusObject : withRequestId(statusObject, this.context.requestId));
  }

  /** Records the end of the call, once: by its status, or by the client's cancellation. */
  private finish(code: number, details: string): void {
    if (this.finished) return;
    this.finished = true;
    const { metrics, logger } = this.observers;
    const name = codeName(code);
    const seconds = (performance.now() - this.started) / 1000;
    // Counted and timed at once, without prom-client's label lookups (tallied-histogram.ts).
    metrics.rpcDuration.record(this.context.method, name, seconds);
    if (this.subscribe) metrics.subscriptions.dec();
    if (code === status.OK && this.appending) countAppend(metrics, this.request, this.response);
    const fault = SERVER_FAULTS.has(code);
    // The line is built only when it is logged: most calls end at a level nobody logs.
    if (!fault && !logger.isLevelEnabled('debug')) return;
    const line = { ...this.context, code: name, ms: Math.round(seconds * 1000), ...(code === status.OK ? {} : { details }) };
    if (fault) logger.warn(line, 'call failed');
    else logger.debug(line, 'call finished');
  }
}

function withRequestId<S extends Pick<StatusObject, 'code' | 'details'> & { metadata?: Metadata | null | undefined }>(
  statusObject: S,
  requestId: string,
): S {
  const metadata = statusObject.metadata?.clone() ?? new Metadata();
  metadata.set(REQUEST_ID_HEADER, requestId);
  return { ...statusObject, metadata };
}

/** Counts the entry and events of a successful Append, or of a CreateStream with initial events. */
function countAppend(metrics: Metrics, request: unknown, response: unknown): void {
  const events = (request as { events?: unknown[] } | undefined)?.events ?? [];
  if (events.length === 0) return;
  if ((response as { deduplicated?: boolean } | undefined)?.deduplicated) return;
  metrics.countAppend(events.length);
}

/**
 * Observes how long after its commit a live or caught-up entry reaches its subscriber. A batch of
 * entries is observed once, by its oldest entry's commit time (its largest lag): one observation
 * per entry would cost a histogram update per entry of a catch-up.
 */
function observeDelivery(metrics: Metrics, message: unknown): void {
  // Most entries travel pre-serialized; they carry their commit time beside the bytes.
  if (message instanceof Encoded) {
    if (message.recordedAt) metrics.subscriptionLag.observe(Math.max(0, (Date.now() - message.recordedAt.getTime()) / 1000));
    return;
  }
  const body = (message as { message?: { $case: string; value: { recordedAt?: Date } } }).message;
  if (body?.$case !== 'entry' || !(body.value.recordedAt instanceof Date)) return;
  metrics.subscriptionLag.observe(Math.max(0, (Date.now() - body.value.recordedAt.getTime()) / 1000));
}
