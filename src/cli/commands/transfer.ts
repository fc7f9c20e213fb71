import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { status } from '@grpc/grpc-js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect, type Connection } from './connection';
import { UsageError, isServiceError } from './exit-codes';
import { StreamImporter, isServerWritten } from './import-stream';
import { entryToJson, eventFromJson, type EntryJson } from './render';

/** Help of `eventhorizon export` and `eventhorizon import`. */
export const TRANSFER_USAGE = `Usage: eventhorizon export STREAM FILE [options]
       eventhorizon import FILE [options]

export writes STREAM and every stream below it to FILE as NDJSON ("-" for stdout): a
{"kind":"stream"} line per stream, parents first, then a {"kind":"entry"} line per entry, with
JSON data inline and other data as base64. Server-written entries ($stream.started,
$stream.child-created) are left out: import recreates them.

import creates the streams (with missing parents) and appends the entries, in order per stream.
It is resumable: the entries already in a target stream are matched against the file's (by event
ids, which are kept) and skipped, and the rest are appended with an expected version, so running
the same import again (after an interruption, say) continues where it stopped and never writes an
entry twice. A target stream holding other entries than the file's is a conflict (exit code 6):
nothing more is written into it. Versions are the target's own.

Both show a progress line on a terminal.

${CONNECTION_HELP}
`;

/** One line of an export file. */
type Line = ({ kind: 'stream'; path: string }) | ({ kind: 'entry' } & EntryJson);

/** Appends in flight at once across streams during an import. */
const IMPORT_CONCURRENCY = 16;
/** Lines read ahead of the appends at most, so memory stays bounded for any file size. */
const IMPORT_READ_AHEAD = 2000;

/** `eventhorizon export STREAM FILE` */
export async function exportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: CONNECTION_OPTIONS, allowPositionals: true, strict: true });
  const [root, file] = positionals;
  if (values.help) {
    process.stdout.write(TRANSFER_USAGE);
    return;
  }
  if (root === undefined || file === undefined) throw new UsageError('export needs STREAM and FILE');
  const api = connect(values);
  const out = file === '-' ? process.stdout : fs.createWriteStream(file);
  const progress = new Progress('exported');
  try {
    for await (const stream of walk(api, root)) {
      await write(out, { kind: 'stream', path: stream });
      progress.streams++;
      for (let from = 0n; ; ) {
        const page = await api.read({ stream, fromVersion: from, limit: 1000 });
        for (const entry of page.entries) {
          if (isServerWritten(entry)) continue;
          await write(out, { kind: 'entry', ...entryToJson(stream, entry) });
          progress.entries++;
        }
        progress.show();
        if (!page.more || page.entries.length === 0) break;
        from = page.nextVersion;
      }
    }
  } finally {
    api.close();
    if (out !== process.stdout) await new Promise<void>((resolve) => (out as fs.WriteStream).end(resolve));
    progress.done();
  }
}

/** `eventhorizon import FILE` */
export async function importCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: CONNECTION_OPTIONS, allowPositionals: true, strict: true });
  const [file] = positionals;
  if (values.help) {
    process.stdout.write(TRANSFER_USAGE);
    return;
  }
  if (file === undefined) throw new UsageError('import needs FILE');
  const api = connect(values);
  const progress = new Progress('imported');
  // Each stream's work runs in order on its own chain; streams proceed side by side.
  const chains = new Map<string, Promise<void>>();
  const importers = new Map<string, StreamImporter>();
  const slots = new Semaphore(IMPORT_CONCURRENCY);
  let failure: unknown;
  let queued = 0;
  let onDequeue: (() => void) | undefined;
  const enqueue = (stream: string, work: () => Promise<void>) => {
    queued++;
    const previous = chains.get(stream) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (failure !== undefined) return;
      await slots.acquire();
      try {
        await work();
      } catch (error) {
        failure ??= error;
      } finally {
        slots.release();
        queued--;
        onDequeue?.();
      }
    });
    chains.set(stream, next);
  };
  const input = file === '-' ? process.stdin : fs.createReadStream(file);
  let lineNumber = 0;
  try {
    for await (const text of readline.createInterface({ input, crlfDelay: Infinity })) {
      lineNumber++;
      if (failure !== undefined) break;
      if (text.trim() === '') continue;
      const line = parseLine(text, lineNumber);
      if (line.kind === 'stream') {
        enqueue(line.path, async () => {
          await createIfMissing(api, line.path);
          progress.streams++;
        });
      } else {
        const requestId = `import:${line.version}:${createHash('sha256').update(line.stream).update('\0').update(text).digest('hex').slice(0, 40)}`;
        let importer = importers.get(line.stream);
        if (!importer) importers.set(line.stream, (importer = new StreamImporter(api, line.stream)));
        const target = importer;
        enqueue(line.stream, async () => {
          const outcome = await target.import(line.events.map(eventFromJson), requestId);
          if (outcome === 'skipped') progress.skipped++;
          else progress.entries++;
          progress.show();
        });
      }
      // Back-pressure: do not read the file far ahead of the appends.
      while (queued > IMPORT_READ_AHEAD) await new Promise<void>((resolve) => (onDequeue = resolve));
    }
    await Promise.all(chains.values());
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the first append's error, as it was thrown
    if (failure !== undefined) throw failure;
  } finally {
    api.close();
    progress.done();
  }
}

/** The stream and its descendants, parents before children. */
async function* walk(api: Connection, root: string): AsyncGenerator<string> {
  await api.describeStream({ stream: root }); // NOT_FOUND for a missing root, before writing anything
  const pending = [root];
  while (pending.length > 0) {
    const stream = pending.shift() as string;
    yield stream;
    for (let pageToken = ''; ; ) {
      const page = await api.listChildren({ stream, limit: 1000, pageToken });
      pending.push(...page.children);
      if (page.nextPageToken === '') break;
      pageToken = page.nextPageToken;
    }
  }
}

async function createIfMissing(api: Connection, stream: string): Promise<void> {
  if (stream === '/') return;
  try {
    await api.createStream({ stream, createParents: true });
  } catch (error) {
    if (!(isServiceError(error) && error.code === status.ALREADY_EXISTS)) throw error;
  }
}

function parseLine(text: string, lineNumber: number): Line {
  let line: Line;
  try {
    line = JSON.parse(text) as Line;
  } catch {
    throw new UsageError(`line ${lineNumber}: not JSON`);
  }
  if (line.kind === 'stream' && typeof line.path === 'string') return line;
  if (line.kind === 'entry' && typeof line.stream === 'string' && Array.isArray(line.events)) return line;
  throw new UsageError(`line ${lineNumber}: neither a stream nor an entry line`);
}

function write(out: NodeJS.WritableStream, line: Line): Promise<void> {
  return new Promise((resolve) => {
    if (out.write(`${JSON.stringify(line)}\n`)) resolve();
    else out.once('drain', () => resolve());
  });
}

/** Counts, shown as one rewritten line on a terminal (stderr), and summed up at the end. */
class Progress {
  streams = 0;
  entries = 0;
  skipped = 0;
  private lastShown = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly verb: string) {}

  show(): void {
    if (!this.tty || Date.now() - this.lastShown < 100) return;
    this.lastShown = Date.now();
    process.stderr.write(`\r${this.summary()}`);
  }

  done(): void {
    process.stderr.write(`${this.tty ? '\r' : ''}${this.summary()}\n`);
  }

  private summary(): string {
    const skipped = this.skipped > 0 ? `, ${this.skipped} already there (skipped)` : '';
    return `${this.verb} ${this.streams} streams, ${this.entries} entries${skipped}`;
  }
}

/** A counting semaphore: at most `size` holders at once. */
class Semaphore {
  private held = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly size: number) {}

  acquire(): Promise<void> {
    if (this.held < this.size) {
      this.held++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.held--;
  }
}
