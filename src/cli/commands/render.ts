import type { Entry, Event } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/** An event as JSON for scripts and NDJSON files: JSON data inline, other data as base64. */
export interface EventJson {
  id: string;
  type: string;
  contentType: string;
  /** Present when the content type is JSON. */
  data?: unknown;
  /** Present otherwise. */
  dataBase64?: string;
  metadata: Record<string, string>;
  occurredAt?: string;
}

/** An entry as JSON. */
export interface EntryJson {
  stream: string;
  version: string;
  recordedAt?: string;
  events: EventJson[];
}

/** Whether a content type is JSON (application/json, or a +json type). */
export function isJson(contentType: string): boolean {
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === '' || type === 'application/json' || type.endsWith('+json');
}

/** An event as JSON. */
export function eventToJson(event: Event): EventJson {
  const data = Buffer.from(event.data);
  let parsed: { data?: unknown; dataBase64?: string } = { dataBase64: data.toString('base64') };
  if (isJson(event.contentType)) {
    try {
      parsed = { data: JSON.parse(data.toString('utf8')) };
    } catch {
      // Stored before the server checked JSON, or mislabelled: keep the bytes.
    }
  }
  return {
    id: event.id,
    type: event.type,
    contentType: event.contentType,
    ...parsed,
    metadata: event.metadata,
    ...(event.occurredAt ? { occurredAt: event.occurredAt.toISOString() } : {}),
  };
}

/** The API event of an `EventJson`. */
export function eventFromJson(json: EventJson): Event {
  const data =
    json.dataBase64 !== undefined ? Buffer.from(json.dataBase64, 'base64') : Buffer.from(JSON.stringify(json.data ?? null));
  return {
    id: json.id,
    type: json.type,
    data,
    contentType: json.contentType,
    metadata: json.metadata ?? {},
    occurredAt: json.occurredAt ? new Date(json.occurredAt) : undefined,
  };
}

/** An entry as JSON. */
export function entryToJson(stream: string, entry: Entry): EntryJson {
  return {
    stream,
    version: entry.version.toString(),
    ...(entry.recordedAt ? { recordedAt: entry.recordedAt.toISOString() } : {}),
    events: entry.events.map(eventToJson),
  };
}

/**
 * An entry for people: version and time, then each event's type, id and metadata, with JSON data
 * pretty-printed and other data summarized.
 */
export function formatEntry(entry: Entry): string {
  const lines = [`#${entry.version}  ${entry.recordedAt?.toISOString() ?? ''}`.trimEnd()];
  for (const event of entry.events) {
    const occurred = event.occurredAt ? `  occurred ${event.occurredAt.toISOString()}` : '';
    lines.push(`  ${event.type}  id=${event.id}${occurred}`);
    const metadata = Object.entries(event.metadata);
    if (metadata.length > 0) lines.push(`    metadata: ${metadata.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const json = eventToJson(event);
    const body =
      json.dataBase64 === undefined
        ? JSON.stringify(json.data, null, 2)
        : `<${event.data.byteLength} bytes of ${event.contentType || 'data'}>`;
    lines.push(...body.split('\n').map((line) => `    ${line}`));
  }
  return lines.join('\n');
}
