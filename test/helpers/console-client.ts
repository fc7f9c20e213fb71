/** Calls of the web console's JSON API, as its page makes them (web/src/api.ts). */

export const SERVICE_PATH = 'api/v1/eventhorizon.v1.EventHorizon/';

export interface ConsoleAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

function headersOf(key: string | undefined, extra: Record<string, string>): Record<string, string> {
  return { 'content-type': 'application/json', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** A unary call: POST <console>/api/v1/eventhorizon.v1.EventHorizon/<method>. */
export async function consoleCall(
  consoleUrl: string,
  method: string,
  request: unknown,
  options: { key?: string; headers?: Record<string, string>; path?: string } = {},
): Promise<ConsoleAnswer> {
  const response = await fetch(consoleUrl + (options.path ?? SERVICE_PATH + method), {
    method: 'POST',
    headers: headersOf(options.key, options.headers ?? {}),
    body: typeof request === 'string' ? request : JSON.stringify(request),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** An open tail: its HTTP status, and its NDJSON messages one at a time. */
export interface ConsoleTail {
  status: number;
  /** The next message; undefined once the stream ended. */
  next(): Promise<Record<string, unknown> | undefined>;
  /** The next message that has this key (skipping heartbeats and the like). */
  nextWith(key: string): Promise<Record<string, unknown>>;
  close(): void;
}

/** A streaming call (Subscribe, SubscribeFeed) read line by line. */
export async function consoleTail(consoleUrl: string, method: 'Subscribe' | 'SubscribeFeed', request: unknown, key?: string): Promise<ConsoleTail> {
  const controller = new AbortController();
  const response = await fetch(consoleUrl + SERVICE_PATH + method, {
    method: 'POST',
    headers: headersOf(key, {}),
    body: JSON.stringify(request),
    signal: controller.signal,
  });
  // Node's fetch body is an async iterable of byte chunks.
  const reader = (response.body as AsyncIterable<Uint8Array> | null)?.[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  let pending = '';
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    for (;;) {
      const newline = pending.indexOf('\n');
      if (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        return JSON.parse(line) as Record<string, unknown>;
      }
      if (!reader) return undefined;
      const chunk = await reader.next();
      if (chunk.done === true) return pending.trim() === '' ? undefined : (JSON.parse(pending) as Record<string, unknown>);
      pending += decoder.decode(chunk.value, { stream: true });
    }
  };
  return {
    status: response.status,
    next,
    async nextWith(wanted) {
      for (;;) {
        const message = await next();
        if (message === undefined) throw new Error(`the tail ended before a message with "${wanted}"`);
        if (wanted in message) return message;
        if ('error' in message) throw new Error(`the tail ended with ${JSON.stringify(message.error)}`);
      }
    },
    close: () => controller.abort(),
  };
}
