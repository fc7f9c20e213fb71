import { randomUUID } from 'node:crypto';
import {
  Metadata,
  ServerInterceptingCall,
  status,
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
  const { metrics, logger } = options;
  return (method, call) => {
    const started = performance.now();
    const context: RequestContext = { requestId: randomUUID(), method: method.path.slice(1) };
    const subscribe = method.path === SUBSCRIBE;
    const appending = APPENDING.has(method.path);
    // Kept for counting appends only: a subscription would otherwise hold its request and the
    // last message it was sent (maybe a large stored entry) for as long as it is open.
    let request: unknown;
    let response: unknown;
    let headersSent = false;
    let finished = false;

    /** Records the end of the call, once: by its status, or by the client's cancellation. */
    const finish = (code: number, details: string): void => {
      if (finished) return;
      finished = true;
      const name = codeName(code);
      const seconds = (performance.now() - started) / 1000;
      // Counted and timed at once, without prom-client's label lookups (tallied-histogram.ts).
      metrics.rpcDuration.record(context.method, name, seconds);
      if (subscribe) metrics.subscriptions.dec();
      if (code === status.OK && appending) countAppend(metrics, request, response);
      const fault = SERVER_FAULTS.has(code);
      // The line is built only when it is logged: most calls end at a level nobody logs.
      if (!fault && !logger.isLevelEnabled('debug')) return;
      const line = { ...context, code: name, ms: Math.round(seconds * 1000), ...(code === status.OK ? {} : { details }) };
      if (fault) logger.warn(line, 'call failed');
      else logger.debug(line, 'call finished');
    };

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, next) => {
            const given = metadata.get(REQUEST_ID_HEADER)[0];
            if (typeof given === 'string' && ACCEPTABLE_REQUEST_ID.test(given)) context.requestId = given;
            if (subscribe) metrics.subscriptions.inc();
            bindRequestContext(metadata, context);
            next(metadata);
          },
          onReceiveMessage: (message, next) => {
            if (appending) request = message;
            next(message);
          },
          onCancel: () => finish(status.CANCELLED, 'cancelled by the client'),
        }),
      sendMetadata: (metadata, next) => {
        headersSent = true;
        metadata.set(REQUEST_ID_HEADER, context.requestId);
        next(metadata);
      },
      sendMessage: (message, next) => {
        if (appending) response = message;
        if (subscribe) observeDelivery(metrics, message);
        next(message);
      },
      sendStatus: (statusObject, next) => {
        finish(statusObject.code, statusObject.details);
        // Without response headers the status travels alone: the request id goes with it.
        next(headersSent ? statusObject : withRequestId(statusObject, context.requestId));
      },
    });
  };
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
