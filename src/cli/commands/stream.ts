import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import { Direction, SubscribeRequest, type Entry, type SubscribeResponse } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect, type Connection } from './connection';
import { entryToJson, formatEntry } from './render';
import { UsageError } from './exit-codes';

/** Help of `eventhorizon stream`. */
export const STREAM_USAGE = `Usage: eventhorizon stream <command> PATH [options]

  stream create PATH [--parents]            create a stream (--parents: and its missing ancestors)
  stream ls PATH                            list the children of a stream
  stream describe PATH                      head version, creation time, children, bytes, snapshots
  stream cat PATH [--from V] [--limit N] [--backward]
                                            print stored entries (oldest first by default)
  stream tail PATH [--from V] [--count N]   follow new entries live (from V: replay first); Ctrl-C stops
  stream append PATH TYPE [DATA|-] [--content-type T] [--metadata K=V]... [--expected-version V]
                    [--request-id ID]       append one event; DATA is JSON text, - reads stdin

${CONNECTION_HELP}
`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  parents: { type: 'boolean' },
  from: { type: 'string' },
  limit: { type: 'string' },
  count: { type: 'string' },
  backward: { type: 'boolean' },
  'content-type': { type: 'string' },
  metadata: { type: 'string', multiple: true },
  'expected-version': { type: 'string' },
  'request-id': { type: 'string' },
} as const;

/** `eventhorizon stream ...` */
export async function streamCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, path, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(STREAM_USAGE);
    return;
  }
  if (path === undefined) throw new UsageError(`stream ${command} needs a stream PATH`);
  const json = values.json === true;
  const api = connect(values);
  try {
    switch (command) {
      case 'create': {
        const created = await api.createStream({ stream: path, createParents: values.parents === true });
        print(json ? { created: created.created, head: created.head?.version.toString() } : `created ${created.created.join(', ')}`);
        return;
      }
      case 'ls': {
        const children: string[] = [];
        for (let pageToken = ''; ; ) {
          const page = await api.listChildren({ stream: path, limit: 1000, pageToken });
          children.push(...page.children);
          if (page.nextPageToken === '') break;
          pageToken = page.nextPageToken;
        }
        print(json ? children : children.join('\n'), children.length === 0 && !json);
        return;
      }
      case 'describe': {
        const info = await api.describeStream({ stream: path });
        const shown = {
          stream: info.stream,
          headVersion: info.headVersion.toString(),
          createdAt: info.createdAt?.toISOString(),
          childCount: info.childCount.toString(),
          bytesStored: info.bytesStored.toString(),
          snapshotPerspectives: info.snapshotPerspectives,
        };
        print(
          json
            ? shown
            : Object.entries(shown)
                .map(([k, v]) => `${k.padEnd(22)} ${Array.isArray(v) ? v.join(', ') : v}`)
                .join('\n'),
        );
        return;
      }
      case 'cat':
        return await cat(api, path, values, json);
      case 'tail':
        return await tail(api, path, values, json);
      case 'append': {
        const [type, dataArg] = rest;
        if (type === undefined) throw new UsageError('stream append needs PATH TYPE [DATA]');
        const data = dataArg === '-' ? fs.readFileSync(0) : Buffer.from(dataArg ?? '{}');
        const result = await api.append({
          stream: path,
          events: [
            { type, data, contentType: values['content-type'] ?? '', metadata: parseMetadata(values.metadata ?? []) },
          ],
          ...(values['expected-version'] !== undefined ? { expectedVersion: version(values['expected-version'], '--expected-version') } : {}),
          requestId: values['request-id'] ?? '',
        });
        const at = result.cursor?.version.toString();
        print(json ? { version: at, deduplicated: result.deduplicated } : `appended at version ${at}${result.deduplicated ? ' (already committed: deduplicated)' : ''}`);
        return;
      }
      default:
        throw new UsageError(`unknown stream command "${command}"`);
    }
  } finally {
    api.close();
  }
}

async function cat(
  api: Connection,
  path: string,
  values: { from?: string; limit?: string; backward?: boolean },
  json: boolean,
): Promise<void> {
  const backward = values.backward === true;
  let remaining = values.limit === undefined ? Infinity : count(values.limit, '--limit');
  let from = values.from === undefined ? (backward ? (1n << 63n) - 1n : 0n) : version(values.from, '--from');
  while (remaining > 0) {
    const page = await api.read({
      stream: path,
      fromVersion: from,
      limit: Math.min(1000, remaining),
      direction: backward ? Direction.DIRECTION_BACKWARD : Direction.DIRECTION_FORWARD,
    });
    for (const entry of page.entries) writeEntry(path, entry, json);
    remaining -= page.entries.length;
    if (!page.more || page.entries.length === 0) break;
    from = page.nextVersion;
  }
}

/** Entries per Subscribe message that `tail` asks for (the server's maximum). */
const TAIL_BATCH = 1000;

async function tail(api: Connection, path: string, values: { from?: string; count?: string }, json: boolean): Promise<void> {
  const fromVersion =
    values.from !== undefined ? version(values.from, '--from') : (await api.describeStream({ stream: path })).headVersion + 1n;
  let remaining = values.count === undefined ? Infinity : count(values.count, '--count');
  if (remaining === 0) return;
  // Stored entries come in batches (a server that predates batches sends them one by one).
  const call = api.client.subscribe(SubscribeRequest.fromPartial({ stream: path, fromVersion, maxEntriesPerMessage: TAIL_BATCH }));
  const stop = () => call.cancel();
  process.once('SIGINT', stop);
  try {
    await new Promise<void>((resolve, reject) => {
      call.on('data', (message: SubscribeResponse) => {
        const entries =
          message.message?.$case === 'entry' ? [message.message.value] : message.message?.$case === 'entries' ? message.message.value.entries : [];
        for (const entry of entries) {
          if (remaining === 0) break;
          writeEntry(path, entry, json);
          if (--remaining === 0) call.cancel();
        }
      });
      call.on('error', (error: ServiceError) => (error.code === 1 /* CANCELLED: we stopped it */ ? resolve() : reject(error)));
      call.on('end', resolve);
    });
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

function writeEntry(stream: string, entry: Entry, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(entryToJson(stream, entry))}\n` : `${formatEntry(entry)}\n\n`);
}

function print(value: unknown, empty = false): void {
  if (empty) return;
  process.stdout.write(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value, null, 2)}\n`);
}

function parseMetadata(pairs: string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const cut = pair.indexOf('=');
    if (cut <= 0) throw new UsageError(`--metadata "${pair}" must be KEY=VALUE`);
    metadata[pair.slice(0, cut)] = pair.slice(cut + 1);
  }
  return metadata;
}

/** A version number given on the command line. */
export function version(raw: string, flag: string): bigint {
  if (!/^\d{1,19}$/.test(raw)) throw new UsageError(`${flag} must be a version number (0, 1, 2, ...)`);
  return BigInt(raw);
}

function count(raw: string, flag: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`${flag} must be a number`);
  return Number(raw);
}
