import { h, type Child } from './dom.js';
import type { EntryJson, EventJson } from './api.js';

/** The bytes of a base64 value (protobuf's JSON form of bytes). */
export function bytesOf(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** "1.2 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit] ?? ''}`;
}

/** A time as the operator's locale shows it, with the exact value on hover. */
export function time(iso: string | undefined): HTMLElement {
  if (iso === undefined) return h('span', { className: 'muted' }, '—');
  const date = new Date(iso);
  return h('time', { attrs: { datetime: iso, title: iso } }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

/** Bytes of an entry's events: data plus metadata, as the server's limits count them. */
export function entrySize(entry: EntryJson): number {
  let size = 0;
  for (const event of entry.events) size += eventSize(event);
  return size;
}

function eventSize(event: EventJson): number {
  const encoder = new TextEncoder();
  let size = bytesOf(event.data).byteLength;
  for (const [key, value] of Object.entries(event.metadata)) size += encoder.encode(key).byteLength + encoder.encode(value).byteLength;
  return size;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A payload shown by its content type: JSON pretty-printed and coloured (an empty content type is
 * JSON, the API's default), text as text, anything else as a hex dump of its first bytes.
 */
export function payload(base64: string, contentType: string): HTMLElement {
  const bytes = bytesOf(base64);
  const type = (contentType === '' ? 'application/json' : contentType).toLowerCase();
  if (bytes.byteLength === 0) return h('span', { className: 'muted' }, '(empty)');
  let text: string | undefined;
  try {
    text = decoder.decode(bytes);
  } catch {
    text = undefined;
  }
  if (text !== undefined && (type === 'application/json' || type.endsWith('+json'))) {
    try {
      return h('pre', { className: 'data json' }, jsonTree(JSON.parse(text) as unknown, 0));
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  if (text !== undefined && (type.startsWith('text/') || type.endsWith('+xml') || type.endsWith('/xml') || type.includes('json'))) {
    return h('pre', { className: 'data text' }, text);
  }
  return h('pre', { className: 'data binary' }, hexDump(bytes));
}

/** A JSON value as coloured, indented text (spans of text nodes only). */
function jsonTree(value: unknown, depth: number): Child {
  const pad = '  '.repeat(depth + 1);
  const closePad = '  '.repeat(depth);
  if (value === null) return h('span', { className: 'j-null' }, 'null');
  if (typeof value === 'string') return h('span', { className: 'j-str' }, JSON.stringify(value));
  if (typeof value === 'number') return h('span', { className: 'j-num' }, String(value));
  if (typeof value === 'boolean') return h('span', { className: 'j-bool' }, String(value));
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const parts: Child[] = ['[\n'];
    value.forEach((item, i) => parts.push(pad, jsonTree(item, depth + 1), i < value.length - 1 ? ',\n' : '\n'));
    parts.push(`${closePad}]`);
    return h('span', null, ...parts);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const parts: Child[] = ['{\n'];
  entries.forEach(([key, item], i) => {
    parts.push(pad, h('span', { className: 'j-key' }, JSON.stringify(key)), ': ', jsonTree(item, depth + 1), i < entries.length - 1 ? ',\n' : '\n');
  });
  parts.push(`${closePad}}`);
  return h('span', null, ...parts);
}

/** The first 512 bytes as a hex dump, and how many more there are. */
function hexDump(bytes: Uint8Array): string {
  const shown = bytes.subarray(0, 512);
  const lines: string[] = [];
  for (let offset = 0; offset < shown.length; offset += 16) {
    const row = shown.subarray(offset, offset + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.byteLength > shown.length) lines.push(`… ${bytes.byteLength - shown.length} more bytes`);
  return lines.join('\n');
}

/** One entry: version, time, size, then each event with its id, type, metadata and data. */
export function entryView(entry: EntryJson, extra?: Child): HTMLElement {
  return h(
    'article',
    { className: 'entry', attrs: { 'data-version': entry.version } },
    h(
      'header',
      null,
      h('span', { className: 'version' }, `v${entry.version}`),
      extra,
      time(entry.recordedAt),
      h('span', { className: 'muted' }, `${entry.events.length} event${entry.events.length === 1 ? '' : 's'}, ${formatBytes(entrySize(entry))}`),
    ),
    ...entry.events.map((event) => eventView(event)),
  );
}

function eventView(event: EventJson): HTMLElement {
  const metadata = Object.entries(event.metadata);
  return h(
    'section',
    { className: 'event' },
    h(
      'div',
      { className: 'event-head' },
      h('span', { className: 'event-type' }, event.type),
      h('span', { className: 'muted', attrs: { title: 'event id' } }, event.id),
      h('span', { className: 'tag' }, event.contentType === '' ? 'application/json' : event.contentType),
      h('span', { className: 'muted' }, formatBytes(bytesOf(event.data).byteLength)),
      event.occurredAt !== undefined ? h('span', { className: 'muted' }, 'occurred ', time(event.occurredAt)) : null,
    ),
    metadata.length > 0
      ? h('dl', { className: 'metadata' }, ...metadata.flatMap(([key, value]) => [h('dt', null, key), h('dd', null, value)]))
      : null,
    payload(event.data, event.contentType),
  );
}
