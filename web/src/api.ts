/**
 * The console's calls to the server: POST /api/v1/<service>/<Method> with the request in
 * protobuf's JSON mapping, the answer likewise; tails read NDJSON from a streamed fetch.
 *
 * The API key lives in this module's variable only: never in storage, cookies or URLs, gone when
 * the tab closes. It travels as the `authorization: Bearer <key>` header, as the gRPC API takes it
 * (EventSource could not send a header, which is why tails use fetch).
 */

let apiKey: string | undefined;

export function setKey(key: string | undefined): void {
  apiKey = key === '' ? undefined : key;
}

export function hasKey(): boolean {
  return apiKey !== undefined;
}

/** An error the server answered: the gRPC status code's name, its message and details. */
export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: number,
    readonly violations: Array<{ field: string; description: string }> = [],
  ) {
    super(message);
  }

  /** Whether a key (another key) would help. */
  get refused(): boolean {
    return this.code === 'UNAUTHENTICATED' || this.code === 'PERMISSION_DENIED';
  }
}

const SERVICE = '/api/v1/eventhorizon.v1.EventHorizon/';

function headers(): Record<string, string> {
  return { 'content-type': 'application/json', ...(apiKey !== undefined ? { authorization: `Bearer ${apiKey}` } : {}) };
}

async function errorOf(response: Response): Promise<CallError> {
  try {
    const body = (await response.json()) as { code?: string; message?: string; violations?: Array<{ field: string; description: string }> };
    return new CallError(body.code ?? 'UNKNOWN', body.message ?? response.statusText, response.status, body.violations ?? []);
  } catch {
    return new CallError('UNKNOWN', `HTTP ${response.status}`, response.status);
  }
}

async function post<T>(path: string, request: object, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify(request), ...(signal ? { signal } : {}) });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

/** A unary call of the EventHorizon service. */
export function call<T>(method: string, request: object): Promise<T> {
  return post<T>(SERVICE + method, request);
}

/** The overview of the server. */
export function overview(): Promise<Overview> {
  return post<Overview>('/api/v1/console/Overview', {});
}

/**
 * A streaming call: `onMessage` gets each message; resolves when the stream ends, rejects with
 * the CallError it ended with. Aborting the signal closes it (the server ends the subscription).
 */
export async function tail(method: 'Subscribe' | 'SubscribeFeed', request: object, signal: AbortSignal, onMessage: (message: TailMessage) => void): Promise<void> {
  const response = await fetch(SERVICE + method, { method: 'POST', headers: headers(), body: JSON.stringify(request), signal });
  if (!response.ok || !response.body) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += value;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() === '') continue;
      const message = JSON.parse(line) as TailMessage;
      const error = message.error;
      if (error) throw new CallError(error.code ?? 'UNKNOWN', error.message ?? 'the stream ended with an error', 200);
      onMessage(message);
    }
  }
}

// The JSON shapes of the messages the console reads (protobuf's JSON mapping: 64-bit numbers as
// strings, bytes as base64, times as RFC 3339).

export interface EventJson {
  id: string;
  type: string;
  data: string;
  contentType: string;
  metadata: Record<string, string>;
  occurredAt?: string;
}

export interface EntryJson {
  version: string;
  events: EventJson[];
  recordedAt?: string;
  /** Feed entries only. */
  stream?: string;
  position?: string;
}

/** One message of a tail: SubscribeResponse or SubscribeFeedResponse, or the error it ended with. */
export interface TailMessage {
  entry?: EntryJson;
  entries?: { entries: EntryJson[] };
  caughtUp?: { version?: string; position?: string };
  checkpoint?: { position?: string };
  heartbeat?: { time?: string };
  error?: { code?: string; message?: string };
}

export interface ReadResponse {
  entries: EntryJson[];
  more: boolean;
  nextVersion: string;
  headVersion: string;
}

export interface DescribeStreamResponse {
  stream: string;
  headVersion: string;
  createdAt?: string;
  childCount: string;
  bytesStored: string;
  snapshotPerspectives: string[];
}

export interface ListChildrenResponse {
  children: string[];
  nextPageToken: string;
}

export interface GetSnapshotResponse {
  snapshot?: { perspective: string; version: string; data: string; contentType: string; storedAt?: string };
}

export interface Overview {
  version: string;
  store: string;
  health: string;
  auth: string;
  tls: boolean;
  mutualTls: boolean;
  encryption: boolean;
  startedAt: string;
  now: string;
  counters: {
    appends: number;
    eventsAppended: number;
    subscribeCalls: number;
    consoleStreamTails: number;
    feedSubscriptions: number;
    consoleFeedTails: number;
    subscriberLagSecondsSum: number;
    subscriberLagCount: number;
  };
}
