import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import {
  SubscribeFeedRequest,
  type FeedEntry,
  type FeedSelector,
  type SubscribeFeedResponse,
} from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect, type Connection } from './connection';
import { UsageError } from './exit-codes';
import { entryToJson, formatEntry } from './render';

/** Help of `eventhorizon feed`. */
export const FEED_USAGE = `Usage: eventhorizon feed <command> PATH [options]

The feed: the entries of PATH and every stream below it ("/" for all), in one order with a
position each (store the last one you handled; --from it resumes after it).

  feed cat PATH [--from P] [--limit N]   print the stored entries after position P (default: all)
  feed tail PATH [--from P] [--count N]  follow new entries live (with --from: replay after P
                                         first); Ctrl-C stops

  --types T,T     only events of these types ("order.placed", or "order.*" for a prefix)
  --only-stream   PATH alone, not the streams below it

Long catch-ups show their progress on stderr (on a terminal).

${CONNECTION_HELP}
`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  from: { type: 'string' },
  limit: { type: 'string' },
  count: { type: 'string' },
  types: { type: 'string' },
  'only-stream': { type: 'boolean' },
} as const;

/** `eventhorizon feed ...` */
export async function feedCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, path] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(FEED_USAGE);
    return;
  }
  if (path === undefined) throw new UsageError(`feed ${command} needs a stream PATH`);
  const selector: FeedSelector = {
    stream: path,
    excludeDescendants: values['only-stream'] === true,
    eventTypes: values.types === undefined ? [] : values.types.split(',').map((type) => type.trim()).filter((type) => type !== ''),
  };
  const json = values.json === true;
  const from = values.from === undefined ? undefined : position(values.from, '--from');
  const api = connect(values);
  try {
    switch (command) {
      case 'cat':
        return await cat(api, selector, from ?? 0n, values.limit === undefined ? Infinity : count(values.limit, '--limit'), json);
      case 'tail':
        return await tail(api, selector, from, values.count === undefined ? Infinity : count(values.count, '--count'), json);
      default:
        throw new UsageError(`unknown feed command "${command}"`);
    }
  } finally {
    api.close();
  }
}

async function cat(api: Connection, selector: FeedSelector, after: bigint, limit: number, json: boolean): Promise<void> {
  const progress = new CatchUpProgress();
  let remaining = limit;
  for (let position = after; remaining > 0; ) {
    const page = await api.readFeed({ selector, afterPosition: position, limit: Math.min(1000, remaining) });
    for (const entry of page.entries) writeEntry(entry, json);
    remaining -= page.entries.length;
    progress.show(page.entries.length, page.nextAfterPosition, page.headPosition);
    if (!page.more) break;
    position = page.nextAfterPosition;
  }
  progress.done();
}

async function tail(api: Connection, selector: FeedSelector, after: bigint | undefined, limit: number, json: boolean): Promise<void> {
  let remaining = limit;
  if (remaining === 0) return;
  // The head, for the progress of a replay: how far there is to go.
  const head = after === undefined ? 0n : (await api.readFeed({ selector, afterPosition: after, limit: 1 })).headPosition;
  const call = api.client.subscribeFeed(
    SubscribeFeedRequest.fromPartial({ selector, afterPosition: after ?? 0n, fromNow: after === undefined }),
  );
  const progress = after === undefined ? undefined : new CatchUpProgress();
  const stop = () => call.cancel();
  process.once('SIGINT', stop);
  try {
    await new Promise<void>((resolve, reject) => {
      call.on('data', ({ message }: SubscribeFeedResponse) => {
        if (message?.$case === 'caughtUp') {
          progress?.done('caught up; following live entries');
        } else if (message?.$case === 'checkpoint') {
          progress?.show(0, message.value.position, head);
        } else if (message?.$case === 'entry') {
          writeEntry(message.value, json);
          progress?.show(1, message.value.position, head);
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

function writeEntry(entry: FeedEntry, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ position: entry.position.toString(), ...entryToJson(entry.stream, entry) })}\n`);
  } else {
    process.stdout.write(`@${entry.position} ${entry.stream}\n${formatEntry(entry)}\n\n`);
  }
}

/** The progress of a catch-up on stderr, on a terminal: entries printed, and position of head. */
class CatchUpProgress {
  private entries = 0;
  private position = 0n;
  private head = 0n;
  private lastShown = 0;
  private shown = false;
  private readonly tty = process.stderr.isTTY === true;

  show(entries: number, position: bigint, head: bigint): void {
    this.entries += entries;
    if (position > this.position) this.position = position;
    if (head > this.head) this.head = head;
    if (!this.tty || Date.now() - this.lastShown < 100) return;
    this.lastShown = Date.now();
    this.shown = true;
    process.stderr.write(`\r${this.summary()}`);
  }

  done(note?: string): void {
    if (!this.tty || !this.shown) {
      if (note !== undefined && this.tty) process.stderr.write(`${note}\n`);
      return;
    }
    process.stderr.write(`\r${this.summary()}${note !== undefined ? `; ${note}` : ''}\n`);
  }

  private summary(): string {
    const percent = this.head > 0n ? ` (${Number((this.position * 1000n) / this.head) / 10}%)` : '';
    return `${this.entries} entries, position ${this.position} of ${this.head}${percent}`;
  }
}

/** A feed position given on the command line. */
function position(raw: string, flag: string): bigint {
  if (!/^\d{1,19}$/.test(raw)) throw new UsageError(`${flag} must be a feed position (0, 1, 2, ...)`);
  return BigInt(raw);
}

function count(raw: string, flag: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`${flag} must be a number`);
  return Number(raw);
}
