import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { status, type Metadata, type StatusObject } from '@grpc/grpc-js';
import type { JsonValue } from '@bufbuild/protobuf';
import { decodeStatusDetails } from '../../clients/ts/src/errors';
import type { StreamingCall } from '../api/grpc-api';
import { codeName } from '../observability/interceptor';

/** The JSON body of a failed console call: what a gRPC client decodes from the status. */
export interface ConsoleError {
  /** The gRPC status code's name, e.g. "PERMISSION_DENIED". */
  code: string;
  message: string;
  /** The ErrorInfo reason, e.g. "STREAM_NOT_FOUND". */
  reason?: string;
  metadata?: Record<string, string>;
  /** BadRequest's field violations: which field of the request is wrong, and why. */
  violations?: Array<{ field: string; description: string }>;
}

/**
 * The HTTP status of a gRPC status code: the table of the Connect protocol
 * (connectrpc.com/docs/protocol#error-codes), which browsers' tools and proxies understand.
 */
const HTTP_STATUS: Record<number, number> = {
  [status.CANCELLED]: 499,
  [status.UNKNOWN]: 500,
  [status.INVALID_ARGUMENT]: 400,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.PERMISSION_DENIED]: 403,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.FAILED_PRECONDITION]: 400,
  [status.ABORTED]: 409,
  [status.OUT_OF_RANGE]: 400,
  [status.UNIMPLEMENTED]: 501,
  [status.INTERNAL]: 500,
  [status.UNAVAILABLE]: 503,
  [status.DATA_LOSS]: 500,
  [status.UNAUTHENTICATED]: 401,
};

/** The HTTP status and JSON body of a gRPC status, decoded as the TS client decodes it. */
export function consoleErrorOf(statusObject: Pick<StatusObject, 'code' | 'details' | 'metadata'>): { httpStatus: number; body: ConsoleError } {
  const decoded = decodeStatusDetails(statusObject);
  const body: ConsoleError = { code: codeName(statusObject.code), message: decoded?.message ?? statusObject.details };
  if (decoded?.reason !== undefined) body.reason = decoded.reason;
  if (decoded && Object.keys(decoded.metadata).length > 0) body.metadata = decoded.metadata;
  if (decoded && decoded.violations.length > 0) body.violations = decoded.violations;
  return { httpStatus: HTTP_STATUS[statusObject.code] ?? 500, body };
}

/** Headers of every API answer: never cached, never sniffed. */
export const API_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** Writes a JSON answer. */
export function sendJson(response: ServerResponse, httpStatus: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(httpStatus, {
    ...API_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/**
 * A server-streaming call (Subscribe, SubscribeFeed) served over HTTP as NDJSON: one JSON message
 * per line, in protobuf's JSON mapping, as the gRPC call would send them. GrpcApi serves it like a
 * gRPC call (the same validation, admission, lifetime, flow control and shutdown); this class
 * only speaks HTTP.
 *
 * The HTTP status waits for the first message: a request the handler refuses before it sends
 * anything (INVALID_ARGUMENT, NOT_FOUND) is answered with its own status and JSON body, like a
 * unary call. Once lines flow the status is 200, and a call that ends with an error (shutdown,
 * a key revoked mid-tail) says so in a last line `{"error": {...}}`.
 */
export class NdjsonCall<Req> extends EventEmitter implements StreamingCall<Req, unknown> {
  private finished = false;
  private clientGone = false;

  constructor(
    readonly request: Req,
    readonly metadata: Metadata,
    private readonly response: ServerResponse,
    private readonly toJson: (message: unknown) => JsonValue,
    /** Headers of the answer beyond the content's (the request id). */
    private readonly headers: Record<string, string>,
  ) {
    super();
    // The client closed the connection (a tab closed, the pause button): the call is cancelled.
    response.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      this.clientGone = true;
      this.emit('cancelled');
    });
    response.on('drain', () => this.emit('drain'));
    // grpc-api ends a failed call with emit('error', status): answered here, never thrown.
    this.on('error', (statusObject: StatusObject) => this.fail(statusObject));
  }

  get cancelled(): boolean {
    return this.clientGone;
  }

  get writableNeedDrain(): boolean {
    return this.response.writableNeedDrain;
  }

  write(message: unknown): boolean {
    if (this.finished) return true;
    this.startLines();
    return this.response.write(`${JSON.stringify(this.toJson(message))}\n`);
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.startLines();
    this.response.end();
  }

  /**
   * Ends the call with an error: its own HTTP status when nothing was sent yet, else a last line.
   * The handler hears of it as a cancellation (its lifetime ends), as a gRPC call refused by the
   * auth interceptor mid-stream does.
   */
  fail(statusObject: Pick<StatusObject, 'code' | 'details' | 'metadata'>): void {
    if (this.finished) return;
    this.finished = true;
    const { httpStatus, body } = consoleErrorOf(statusObject);
    if (this.response.headersSent) {
      this.response.end(`${JSON.stringify({ error: body })}\n`);
    } else {
      sendJson(this.response, httpStatus, body, this.headers);
    }
    this.clientGone = true;
    this.emit('cancelled');
  }

  private startLines(): void {
    if (this.response.headersSent) return;
    this.response.writeHead(200, {
      ...API_HEADERS,
      ...this.headers,
      'content-type': 'application/x-ndjson; charset=utf-8',
      // Proxies (nginx) would otherwise hold the lines back until their buffer fills.
      'x-accel-buffering': 'no',
    });
    // The headers go out now, so that the browser's fetch resolves before the first entry.
    this.response.flushHeaders();
  }
}
