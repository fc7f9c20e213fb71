import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Metadata, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SubscribeFeedRequest, SubscribeRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { GrpcApi } from '../api/grpc-api';
import type { AuthInterceptor, Refusal } from '../auth/interceptor';
import { hostOf, isLoopback, type TlsConfig } from '../config/config';
import { CallCancellation } from '../core/call-signal';
import { toStatus } from '../api/errors';
import { REQUEST_ID_HEADER } from '../observability/interceptor';
import { bindRequestContext, type RequestContext } from '../observability/request-context';
import { ConsoleAssets, type Asset } from './assets';
import { NdjsonCall, consoleErrorOf, sendJson } from './console-calls';
import { Transcoder } from './transcoding';

/** Where the console's JSON API lives: POST /api/v1/eventhorizon.v1.EventHorizon/<Method>. */
const API_PREFIX = '/api/v1/eventhorizon.v1.EventHorizon/';
/** The console's own call: the overview (health, store, version, live figures). */
const OVERVIEW_PATH = '/api/v1/console/Overview';
/** Requests are small: a stream path, a version, a selector. */
const MAX_BODY_BYTES = 64 * 1024;
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * What the page may do: its own scripts, styles and API, nothing else; no inline script (event
 * data is rendered as text, and even a mistake there could not run code), no framing.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The overview's facts, gathered by the server (overview.ts) at each request, with the console's open tails. */
export type OverviewSource = (consoleTails: Record<TailKind, number>) => Promise<Record<string, unknown>>;

export interface ConsoleOptions {
  /** host:port to listen on. */
  listen: string;
  /** A port in use only warns (the development default), instead of failing the start. */
  optional: boolean;
  tls: TlsConfig;
  api: GrpcApi;
  /** The auth interceptor of the gRPC API, when auth is required. */
  auth: AuthInterceptor | undefined;
  overview: OverviewSource;
  logger: Logger;
  assets?: ConsoleAssets;
}

/** A console tail: of a stream (Subscribe) or of the feed (SubscribeFeed). */
export type TailKind = 'subscribe' | 'feed';

export interface ConsoleServer {
  /** host:port it listens on, and its URL. */
  address: string;
  url: string;
  /** Ends the open tails (UNAVAILABLE reaches them through GrpcApi.closeSubscriptions) and closes. */
  close(): Promise<void>;
}

/**
 * The web console (docs/operations.md, "Web console"): its page and assets, and a small JSON API
 * that maps one-to-one onto the read-only gRPC methods. A request is authenticated and authorized
 * by the gRPC API's auth interceptor (the same key format, the same policies, the same actions),
 * turned into the very request message a gRPC call would carry (transcoding.ts), and served by
 * the same GrpcApi handler over the same core. Tails (Subscribe, SubscribeFeed) stream NDJSON and
 * are checked again when keys or policies change, like gRPC subscriptions.
 *
 * Resolves with undefined when the console is optional and its port is taken.
 */
export async function startConsoleServer(options: ConsoleOptions): Promise<ConsoleServer | undefined> {
  const { logger, tls } = options;
  const assets = options.assets ?? new ConsoleAssets();
  const context: Context = { ...options, assets, transcoder: new Transcoder(), tails: { subscribe: 0, feed: 0 } };
  let closing = false;
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
    // While the server stops, each answer (a tail's last line) lets its connection go at once.
    response.once('finish', () => {
      if (closing) server.closeIdleConnections();
    });
    route(request, response, context).catch((error: unknown) => {
      logger.error({ err: error }, 'console request failed');
      if (!response.headersSent) sendJson(response, 500, { code: 'INTERNAL', message: 'internal error' });
      else response.destroy();
    });
  };
  const secure = tls.certFile !== undefined && tls.keyFile !== undefined;
  const server = secure ? https.createServer(tlsOptions(tls), handler) : http.createServer(handler);
  // Requests are small JSON bodies: one not fully received in 30 s is dropped. (This limits the
  // request only; a tail's response stays open for as long as the operator watches.)
  server.requestTimeout = 30_000;
  const host = hostOf(options.listen);
  const port = Number(options.listen.slice(options.listen.lastIndexOf(':') + 1));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    if (options.optional && (error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      logger.warn({ address: options.listen }, 'web console not started: its development address is in use (set EH_CONSOLE_LISTEN)');
      return undefined;
    }
    throw error;
  }
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const address = `${shownHost}:${bound.port}`;
  return {
    address,
    url: `${secure ? 'https' : 'http'}://${address}/`,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        // Tails end through GrpcApi.closeSubscriptions; idle keep-alive connections go now.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      }),
  };
}

/** The server's certificate, and client certificates required when it requires them (mTLS). */
function tlsOptions(tls: TlsConfig): https.ServerOptions {
  const clientCa = tls.clientCaFile === undefined ? undefined : fs.readFileSync(tls.clientCaFile);
  return {
    cert: fs.readFileSync(tls.certFile as string),
    key: fs.readFileSync(tls.keyFile as string),
    ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  };
}

type Context = ConsoleOptions & {
  assets: ConsoleAssets;
  transcoder: Transcoder;
  /** The tails open now, by kind, for the overview. */
  tails: Record<TailKind, number>;
};

async function route(request: IncomingMessage, response: ServerResponse, context: Context): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://console');
  const { pathname } = url;
  if (pathname.startsWith('/api/')) {
    await serveApi(request, response, pathname, context);
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (pathname === '/' || pathname === '/index.html') {
    sendAsset(request, response, context.assets.page);
    return;
  }
  const match = /^\/assets\/([0-9a-f]+)\/([A-Za-z0-9._-]+)$/.exec(pathname);
  const asset = match?.[1] !== undefined && match[2] !== undefined ? context.assets.file(match[1], match[2]) : undefined;
  if (asset) sendAsset(request, response, asset);
  else response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
}

function sendAsset(request: IncomingMessage, response: ServerResponse, asset: Asset): void {
  const headers: Record<string, string | number> = {
    'content-type': asset.contentType,
    'cache-control': asset.cacheControl,
    etag: asset.etag,
    vary: 'accept-encoding',
  };
  if (request.headers['if-none-match'] === asset.etag) {
    response.writeHead(304, headers).end();
    return;
  }
  const gzip = asset.gzipped !== undefined && /\bgzip\b/.test(request.headers['accept-encoding'] ?? '');
  const body = gzip && asset.gzipped ? asset.gzipped : asset.body;
  response.writeHead(200, { ...headers, 'content-length': body.byteLength, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/**
 * One API call. Requests must be POSTs of JSON from the console's own origin: a page elsewhere
 * can neither send one without a CORS preflight (which is never granted) nor read an answer, and
 * a loopback console without auth also checks the Host header, so that a DNS-rebound name cannot
 * reach it from a browser.
 */
async function serveApi(request: IncomingMessage, response: ServerResponse, pathname: string, context: Context): Promise<void> {
  const requestId = acceptableRequestId(request.headers[REQUEST_ID_HEADER]);
  const headers = { [REQUEST_ID_HEADER]: requestId };
  // "eventhorizon.v1.EventHorizon/Read", as the gRPC calls' log lines name it.
  const callContext: RequestContext = { requestId, method: pathname.slice('/api/v1/'.length) };
  const started = performance.now();
  response.once('close', () => {
    context.logger.debug({ ...callContext, status: response.statusCode, ms: Math.round(performance.now() - started) }, 'console call finished');
  });
  const refuse = (httpStatus: number, code: string, message: string) => sendJson(response, httpStatus, { code, message }, headers);
  if (request.method !== 'POST') {
    response.setHeader('allow', 'POST');
    refuse(405, 'UNIMPLEMENTED', 'API calls are POST requests with a JSON body');
    return;
  }
  if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
    refuse(415, 'INVALID_ARGUMENT', 'the body must be JSON (content-type: application/json)');
    return;
  }
  const origin = request.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, request)) {
    refuse(403, 'PERMISSION_DENIED', 'cross-origin requests are not served');
    return;
  }
  if (context.auth === undefined && isLoopback(hostOf(context.listen)) && !loopbackHost(request.headers.host)) {
    refuse(403, 'PERMISSION_DENIED', 'this console answers only requests addressed to a loopback name (Host header)');
    return;
  }
  const body = await readBody(request);
  if (body === undefined) {
    refuse(413, 'INVALID_ARGUMENT', `the body must be at most ${MAX_BODY_BYTES} bytes`);
    return;
  }
  let json: unknown;
  try {
    json = body.length === 0 ? {} : JSON.parse(body);
  } catch (error) {
    sendJson(response, 400, { code: 'INVALID_ARGUMENT', message: 'the body is not JSON', violations: [{ field: 'request', description: (error as Error).message }] }, headers);
    return;
  }
  if (pathname === OVERVIEW_PATH) {
    await serveOverview(request, response, context, headers);
    return;
  }
  const method = pathname.startsWith(API_PREFIX) ? context.transcoder.method(pathname.slice(API_PREFIX.length)) : undefined;
  if (!method) {
    refuse(404, 'UNIMPLEMENTED', 'no such console call: the console serves ListChildren, DescribeStream, Read, GetSnapshot, ReadFeed, Subscribe, SubscribeFeed and Overview');
    return;
  }
  const fail = (error: unknown) => {
    const { httpStatus, body: errorBody } = consoleErrorOf(context.api.fail(method.name, error, metadata));
    sendJson(response, httpStatus, errorBody, headers);
  };
  // The key travels on as the gRPC call's metadata would carry it: the feed asks the same
  // interceptor, by it, which streams the caller may read (GrpcApi's readCheck).
  const metadata = new Metadata();
  const authorization = request.headers.authorization;
  if (authorization !== undefined) metadata.set('authorization', authorization);
  bindRequestContext(metadata, callContext);

  let grpcRequest: unknown;
  try {
    grpcRequest = method.requestOf(json);
  } catch (error) {
    fail(error);
    return;
  }
  const grant = authorize(context, authorization, method.path, grpcRequest, callContext);
  if (grant instanceof Error) {
    fail(grant);
    return;
  }
  if (!method.streaming) {
    const abandoned = new CallCancellation();
    let answered = false;
    response.on('close', () => {
      if (!answered) abandoned.cancel();
    });
    let answer: unknown;
    try {
      answer = method.responseJson(await context.api.invokeUnary(method.name, grpcRequest, abandoned, metadata));
    } catch (error) {
      answered = true;
      fail(error);
      return;
    }
    answered = true;
    sendJson(response, 200, answer, headers);
    return;
  }
  await serveTail(response, context, method.name, grpcRequest, metadata, headers, grant, callContext);
}

/** A tail: the gRPC streaming handler, writing NDJSON, checked again when auth changes. */
async function serveTail(
  response: ServerResponse,
  context: Context,
  name: string,
  grpcRequest: unknown,
  metadata: Metadata,
  headers: Record<string, string>,
  grant: Grant,
  callContext: RequestContext,
): Promise<void> {
  const method = context.transcoder.method(name);
  if (!method) return;
  const call = new NdjsonCall<unknown>(grpcRequest, metadata, response, method.responseJson, headers);
  const forget = grant
    ? context.auth?.trackOpenCall(grant.keyHash, grant.needed, (refusal: Refusal) => {
        context.logger.info({ ...callContext, reason: refusal.message }, 'open call ended: no longer authorized');
        call.fail(statusOf(refusal));
      })
    : undefined;
  const kind: TailKind = name === 'Subscribe' ? 'subscribe' : 'feed';
  context.tails[kind]++;
  try {
    // The request is what the method's own deserializer made (transcoding.ts).
    if (name === 'Subscribe') await context.api.subscribe(call as NdjsonCall<SubscribeRequest>);
    else await context.api.subscribeFeed(call as NdjsonCall<SubscribeFeedRequest>);
  } finally {
    forget?.();
    context.tails[kind]--;
  }
}

/** A caller who passed the checks: its key's hash and what it needs, to check again later. */
type Grant = { keyHash: string; needed: ReturnType<AuthInterceptor['permissionsNeeded']> } | undefined;

/**
 * The auth interceptor's decision for a console call: the same key (`authorization: Bearer
 * <key>`), the same method path and request, so the same permissions. Refusals are logged as the
 * interceptor logs them: the principal and the reason, never the key.
 */
function authorize(context: Context, authorization: string | undefined, path: string, grpcRequest: unknown, callContext: RequestContext): Grant | Refusal {
  const { auth, logger } = context;
  if (!auth) return undefined;
  const caller = auth.authenticate(authorization);
  let refusal: Refusal | undefined;
  let needed: ReturnType<AuthInterceptor['permissionsNeeded']> = [];
  if (caller instanceof Error) {
    refusal = caller;
  } else {
    callContext.principal = caller.principal;
    needed = auth.permissionsNeeded(path, grpcRequest);
    refusal = auth.refusalOf(caller.keyHash, needed);
  }
  if (refusal) {
    logger.info({ ...callContext, reason: refusal.message }, 'call refused');
    return refusal;
  }
  return { keyHash: (caller as { keyHash: string }).keyHash, needed };
}

/** The overview: any known key may see it (it shows what the health check and /metrics show). */
async function serveOverview(request: IncomingMessage, response: ServerResponse, context: Context, headers: Record<string, string>): Promise<void> {
  if (context.auth) {
    const caller = context.auth.authenticate(request.headers.authorization);
    if (caller instanceof Error) {
      const { httpStatus, body } = consoleErrorOf(statusOf(caller));
      sendJson(response, httpStatus, body, headers);
      return;
    }
  }
  sendJson(response, 200, await context.overview({ ...context.tails }), headers);
}

function statusOf(error: Error): StatusObject {
  const { unexpected: _ignored, ...statusObject } = toStatus(error);
  return statusObject;
}

/** The request body as text, or undefined when it is too large. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function acceptableRequestId(given: string | string[] | undefined): string {
  return typeof given === 'string' && ACCEPTABLE_REQUEST_ID.test(given) ? given : randomUUID();
}

/** Whether an Origin header names the host the request was sent to. */
function sameOrigin(origin: string, request: IncomingMessage): boolean {
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** Whether a Host header names this machine's loopback (localhost, 127.x.y.z, [::1]). */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return isLoopback(name);
}
