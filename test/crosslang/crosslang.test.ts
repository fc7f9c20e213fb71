/**
 * Cross-language: programs built from the generated Python and Go clients append, read and
 * subscribe against a real server, and each sees exactly what the other wrote.
 *
 * They need Debian's toolchains (see .ci/run). Without them these tests skip with a loud reason
 * on a developer machine, and fail in CI (CI=true), where a skip would hide a broken client.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { connect, eventData, type EventHorizon } from '../../clients/ts/src';
import { startTestServer, tempDir, type TestServer } from '../helpers/server';

const execFileAsync = promisify(execFile);

/** The repository root (this file runs from dist/test/crosslang). */
const ROOT = path.resolve(__dirname, '../../..');
/** Debian's interpreter: python3-grpcio and python3-protobuf serve it, not pyenv's python3. */
const PYTHON = '/usr/bin/python3';
const PYTHON_PROGRAM = path.join(ROOT, 'test/crosslang/python/eh_check.py');
const GO_PROGRAM = path.join(ROOT, 'test/crosslang/go/main.go');
/** The consumer-group examples that the clients' READMEs point to. */
const PYTHON_GROUP_EXAMPLE = path.join(ROOT, 'clients/python/examples/consume_group.py');
const GO_GROUP_EXAMPLE = path.join(ROOT, 'clients/go/examples/consumegroup/main.go');
/** Where Debian's golang-*-dev packages put Go sources; the Go check builds in GOPATH mode from it. */
const DEBIAN_GOPATH = '/usr/share/gocode';
const GO_CLIENT_IMPORT_PATH = 'github.com/eventhorizon/eventhorizon/clients/go';

/** Skips the suite with a loud reason outside CI; fails it in CI. */
function requireToolchain(context: Mocha.Context, problem: string | undefined): void {
  if (problem === undefined) return;
  const message = `${problem} (.ci/run installs it with apt-get)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`\n    SKIPPED cross-language tests: ${message}\n`);
  context.skip();
}

function pythonProblem(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} is missing`;
  if (probe.status !== 0) return `${PYTHON} lacks grpc/protobuf: apt-get install python3-grpcio python3-protobuf`;
  return undefined;
}

function goProblem(): string | undefined {
  const probe = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'go is missing: apt-get install golang-go';
  if (!fs.existsSync(path.join(DEBIAN_GOPATH, 'src/google.golang.org/grpc'))) {
    return 'grpc-go sources are missing: apt-get install golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev';
  }
  return undefined;
}

/**
 * Builds the Go check offline: in GOPATH mode, with Debian's sources and clients/go linked in at
 * its import path (module mode would need a module proxy, which this machine cannot reach).
 */
function buildGoProgram(workDir: string, source: string, name: string): string {
  const gopath = path.join(workDir, 'gopath');
  const link = path.join(gopath, 'src', GO_CLIENT_IMPORT_PATH);
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'clients/go'), link);
  }
  const binary = path.join(workDir, name);
  const build = spawnSync('go', ['build', '-o', binary, source], {
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:${DEBIAN_GOPATH}`, GOFLAGS: '' },
  });
  if (build.status !== 0) throw new Error(`go build failed:\n${build.stderr}`);
  return binary;
}

interface Program {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** A running check program: its JSON output lines as they come, and its end. */
interface Running {
  lines: AsyncIterator<unknown>;
  exited: Promise<void>;
  kill(): void;
}

function start(program: Program, args: string[]): Running {
  const child = spawn(program.command, [...program.args, ...args], { env: program.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(program.command)} ${args.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
  exited.catch(() => undefined); // observed by the test when it matters
  const lines = (async function* () {
    for await (const line of createInterface({ input: child.stdout })) yield JSON.parse(line) as unknown;
  })();
  return { lines, exited, kill: () => child.kill() };
}

/** Runs a check program to its end and returns its one JSON result. */
async function run(program: Program, args: string[]): Promise<Record<string, unknown>> {
  const running = start(program, args);
  const first = await running.lines.next();
  await running.exited;
  assert.ok(!first.done, `${args[0]} printed nothing`);
  return first.value as Record<string, unknown>;
}

/** The fenced code blocks in `language` of a client's README, as one program: each block goes on from the one before. */
function readmeExample(client: 'python' | 'go', language: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'clients', client, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1] ?? '');
  if (blocks.length === 0) throw new Error(`clients/${client}/README.md has no ${language} example`);
  return blocks.join('\n');
}

/** The imports the Go README's example leaves out to stay short. */
const GO_EXAMPLE_PRELUDE = `package main

import (
\t"context"
\t"fmt"
\t"log"
\t"time"

\teh "${GO_CLIENT_IMPORT_PATH}/eventhorizon/v1"
\t"google.golang.org/genproto/googleapis/rpc/errdetails"
\t"google.golang.org/grpc"
\t"google.golang.org/grpc/codes"
\t"google.golang.org/grpc/status"
)

func main() {
`;

/** Entries as the check programs print them. */
interface PrintedEntry {
  version: number;
  events: Array<{ type: string; data: unknown }>;
}

/** Subscribes with a check program; resolves `live` at caught_up and `entries` after `count`. */
function subscribeWith(program: Program, address: string, stream: string, count: number) {
  const running = start(program, ['subscribe', address, stream, String(count)]);
  let markLive!: () => void;
  const live = new Promise<void>((resolve) => (markLive = resolve));
  const entries = (async () => {
    const seen: PrintedEntry[] = [];
    for (;;) {
      const next = await running.lines.next();
      if (next.done) break;
      const line = next.value as { caught_up?: number; entry?: PrintedEntry };
      if (line.caught_up !== undefined) markLive();
      if (line.entry) seen.push(line.entry);
    }
    await running.exited;
    return seen;
  })();
  // If the program dies before catching up, let the waiter see why.
  return { live: Promise.race([live, entries.then(() => undefined)]), entries, kill: () => running.kill() };
}

/** Feed entries as the check programs print them. */
interface PrintedFeedEntry {
  stream: string;
  version: number;
  position: number;
  types: string[];
}

/** What a feed follower printed: the entries before caught_up, its position, and the live ones. */
interface Followed {
  stored: PrintedFeedEntry[];
  caughtUp: number;
  live: PrintedFeedEntry[];
}

/**
 * Follows a subtree's feed with a check program, after the position in `positionFile`;
 * `caughtUp` resolves when it is live, `followed` once it has seen `live` live entries.
 */
function followWith(program: Program, address: string, subtree: string, live: number, positionFile: string) {
  const running = start(program, ['follow', address, subtree, String(live), positionFile]);
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  const followed = (async (): Promise<Followed> => {
    const result: Followed = { stored: [], caughtUp: -1, live: [] };
    for (;;) {
      const next = await running.lines.next();
      if (next.done) break;
      const line = next.value as { caught_up?: number; entry?: PrintedFeedEntry };
      if (line.caught_up !== undefined) {
        assert.equal(result.caughtUp, -1, 'caught_up once');
        result.caughtUp = line.caught_up;
        markCaughtUp();
      }
      if (line.entry) (result.caughtUp === -1 ? result.stored : result.live).push(line.entry);
    }
    await running.exited;
    return result;
  })();
  // If the program dies before catching up, let the waiter see why.
  return { caughtUp: Promise.race([caughtUp, followed.then(() => undefined)]), followed, kill: () => running.kill() };
}

/** Rejects with `what` unless `promise` settles within `ms`: a feed that never delivers fails the test, not hangs it. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A page-by-page ReadFeed run of the Python check program (see eh_check.py). */
interface FeedRead {
  entries: PrintedFeedEntry[];
  pages: number;
  position: number;
}

/** The whole feed of a subtree through the TypeScript client, in the programs' printed shape. */
async function readFeedWithTypeScript(client: EventHorizon, subtree: string): Promise<PrintedFeedEntry[]> {
  const entries: PrintedFeedEntry[] = [];
  for (let after = 0n, more = true; more; ) {
    const page = await client.readFeed({ selector: { stream: subtree }, afterPosition: after, limit: 1000 });
    for (const entry of page.entries) {
      entries.push({ stream: entry.stream, version: Number(entry.version), position: Number(entry.position), types: entry.events.map((event) => event.type) });
    }
    [after, more] = [page.nextAfterPosition, page.more];
  }
  return entries;
}

/** "stream@version" of each entry. */
const feedLabels = (entries: PrintedFeedEntry[]) => entries.map((entry) => `${entry.stream}@${entry.version}`);

/** Asserts that positions strictly increase and that each stream's entries come in version order, none skipped. */
function assertFeedOrder(entries: PrintedFeedEntry[], what: string): void {
  entries.forEach((entry, index) => {
    const before = entries[index - 1];
    if (before) assert.ok(entry.position > before.position, `${what}: position ${entry.position} after ${before.position}`);
  });
  const last = new Map<string, number>();
  for (const entry of entries) {
    const previous = last.get(entry.stream);
    if (previous !== undefined) assert.equal(entry.version, previous + 1, `${what}: ${entry.stream}@${entry.version} after @${previous}`);
    last.set(entry.stream, entry.version);
  }
}

/** What the TypeScript client reads from the stream, in the programs' printed shape. */
async function readWithTypeScript(client: EventHorizon, stream: string): Promise<PrintedEntry[]> {
  const entries: PrintedEntry[] = [];
  for await (const entry of client.readAll(stream)) {
    entries.push({
      version: Number(entry.version),
      events: entry.events.map((event) => ({ type: event.type, data: eventData(event) })),
    });
  }
  return entries;
}

describe('cross-language: generated Python and Go clients against the real server', function () {
  this.timeout(180_000);
  let python: Program;
  let go: Program;
  let pythonGroupExample: Program;
  let goGroupExample: Program;
  let workDir: string;
  let server: TestServer;
  let client: EventHorizon;

  before(function () {
    requireToolchain(this, pythonProblem());
    requireToolchain(this, goProblem());
    workDir = tempDir('eh-crosslang-');
    python = {
      command: PYTHON,
      args: [PYTHON_PROGRAM],
      env: { ...process.env, PYTHONPATH: path.join(ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1' },
    };
    go = { command: buildGoProgram(workDir, GO_PROGRAM, 'ehcheck'), args: [], env: process.env };
    pythonGroupExample = { ...python, args: [PYTHON_GROUP_EXAMPLE] };
    goGroupExample = { command: buildGoProgram(workDir, GO_GROUP_EXAMPLE, 'consumegroup'), args: [], env: process.env };
  });

  beforeEach(async () => {
    server = await startTestServer();
    client = connect(server.address);
  });

  afterEach(async () => {
    client?.close();
    await server?.stop();
  });

  after(() => {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  /** One direction: `writer` appends three entries while `subscriber` is live on the stream. */
  async function writeAndWatch(writer: Program, subscriber: Program, stream: string, writerTag: string) {
    await client.createStream({ stream, createParents: true });
    const watching = subscribeWith(subscriber, server.address, stream, 4); // entry 0 + three appends
    try {
      await watching.live;
      const appended = await run(writer, ['append', server.address, stream, '3']);
      assert.deepEqual(appended, { appended: [1, 2, 3] });
      const seen = await watching.entries;

      const expected = [0, 1, 2].map((n) => ({
        version: n + 1,
        events: [{ type: `xlang.${writerTag}`, data: { n, from: writerTag } }],
      }));
      assert.deepEqual(seen.map((entry) => entry.version), [0, 1, 2, 3]);
      assert.equal(seen[0]?.events[0]?.type, '$stream.started');
      assert.deepEqual(seen.slice(1), expected);
      // The TypeScript client and the subscriber's own Read agree with what was streamed.
      assert.deepEqual((await readWithTypeScript(client, stream)).slice(1), expected);
      const read = (await run(subscriber, ['read', server.address, stream])) as { entries: PrintedEntry[]; head: number };
      assert.equal(read.head, 3);
      assert.deepEqual(read.entries.slice(1), expected);
    } finally {
      watching.kill();
    }
  }

  it('Python appends; Go subscribes and sees exactly those events, then reads them', async () => {
    await writeAndWatch(python, go, '/xlang/python-to-go', 'python');
  });

  it('Go appends; Python subscribes and sees exactly those events, then reads them', async () => {
    await writeAndWatch(go, python, '/xlang/go-to-python', 'go');
  });

  /** The versions of a stream as the TypeScript client reads them. */
  async function versionsOf(stream: string): Promise<number[]> {
    const versions: number[] = [];
    for await (const entry of client.readAll(stream)) versions.push(Number(entry.version));
    return versions;
  }

  const event = (type: string, data: unknown = {}) => ({ type, data: Buffer.from(JSON.stringify(data)), contentType: 'application/json' });

  it('Go follows a subtree with SubscribeFeed: stored entries, caught_up, then a live one from Python, as ReadFeed has them; resumed after its stored position it gets exactly the rest', async () => {
    const written = ['/xfeed/shop/orders/1', '/xfeed/shop/orders/2', '/xfeed/shop/payments'];
    const subtree = ['/xfeed/shop', '/xfeed/shop/orders', ...written];
    // "/xfeed/shopping" shares the subtree's prefix but is not in it.
    for (const stream of [...written, '/xfeed/shopping']) await client.createStream({ stream, createParents: true });
    for (let i = 0; i < 9; i++) {
      await client.append({ stream: written[i % 3] ?? '', events: [event(i % 2 === 0 ? 'order.placed' : 'payment.taken', { i })] });
      await client.append({ stream: '/xfeed/shopping', events: [event('order.placed', { i })] });
    }

    const positionFile = path.join(workDir, 'go-feed.position');
    const following = followWith(go, server.address, '/xfeed/shop', 1, positionFile);
    let first: Followed;
    try {
      await within(20_000, "Go's caught_up", following.caughtUp);
      // Live, an entry outside the subtree first (Go must not see it), then Python's inside it.
      await client.append({ stream: '/xfeed/shopping', events: [event('order.placed', { live: true })] });
      assert.deepEqual(await run(python, ['append', server.address, '/xfeed/shop/orders/2', '1']), { appended: [4] });
      first = await within(20_000, 'live entry in Go', following.followed);
    } finally {
      following.kill();
    }
    const seen = [...first.stored, ...first.live];

    // What Go followed is what ReadFeed pages through, from Python and from TypeScript alike.
    const read = (await run(python, ['readfeed', server.address, '/xfeed/shop', '4', path.join(workDir, 'python-all.position')])) as unknown as FeedRead;
    assert.ok(read.pages > 1, `ReadFeed paged: ${read.pages} page(s)`);
    assert.deepEqual(seen, read.entries);
    assert.deepEqual(seen, await readFeedWithTypeScript(client, '/xfeed/shop'));
    // In one order, each stream of the subtree whole and in version order, nothing from outside it.
    assertFeedOrder(seen, "Go's feed");
    for (const entry of seen) assert.ok(subtree.includes(entry.stream), `${entry.stream} is not in /xfeed/shop`);
    for (const stream of subtree) {
      assert.deepEqual(seen.filter((entry) => entry.stream === stream).map((entry) => entry.version), await versionsOf(stream), stream);
    }
    // caught_up between the stored entries and the live one, which is Python's append.
    const lastStored = first.stored[first.stored.length - 1];
    const liveEntry = first.live[0];
    assert.ok(lastStored && liveEntry, `stored and live entries: ${JSON.stringify(first)}`);
    assert.ok(first.caughtUp >= lastStored.position && first.caughtUp < liveEntry.position, `caught_up at ${first.caughtUp}`);
    assert.deepEqual(first.live.map(({ stream, version, types }) => ({ stream, version, types })), [
      { stream: '/xfeed/shop/orders/2', version: 4, types: ['xlang.python'] },
    ]);
    assert.equal(Number(fs.readFileSync(positionFile, 'utf8')), liveEntry.position, 'Go stored the position it handled last');

    // Go resumes after the position it stored: exactly the entries since, caught up at once.
    await client.append({ stream: '/xfeed/shop/payments', events: [event('payment.taken', { i: 9 })] });
    await client.append({ stream: '/xfeed/shopping', events: [event('order.placed', { i: 9 })] });
    await client.createStream({ stream: '/xfeed/shop/refunds' });
    await client.append({ stream: '/xfeed/shop/payments', events: [event('payment.refunded', { i: 10 })] });
    const resuming = followWith(go, server.address, '/xfeed/shop', 0, positionFile);
    const resumed = await within(20_000, "resumed Go's caught_up", resuming.followed).finally(resuming.kill);
    const rest = (await readFeedWithTypeScript(client, '/xfeed/shop')).filter((entry) => entry.position > liveEntry.position);
    assert.deepEqual(resumed.stored, rest);
    assert.deepEqual(resumed.live, []);
    const label = (entry: PrintedFeedEntry) => `${entry.stream}@${entry.version} ${entry.types.join(',')}`;
    assert.deepEqual(resumed.stored.filter((entry) => !entry.types.some((type) => type.startsWith('$'))).map(label), [
      '/xfeed/shop/payments@4 payment.taken',
      '/xfeed/shop/payments@5 payment.refunded',
    ]);
    assert.ok(feedLabels(resumed.stored).includes('/xfeed/shop/refunds@0'), `the new stream: ${feedLabels(resumed.stored).join(' ')}`);
  });

  it('Python pages through ReadFeed with an "order.*" filter: only matching events; resumed after its stored position it gets exactly the rest', async () => {
    await client.createStream({ stream: '/xtypes/a', createParents: true });
    await client.createStream({ stream: '/xtypes/b' });
    await client.createStream({ stream: '/xtypes-elsewhere' });
    const write = (stream: string, ...types: string[]) => client.append({ stream, events: types.map((type) => event(type)) });
    await write('/xtypes/a', 'order.placed', 'audit.logged');
    await write('/xtypes/b', 'orderly.noted'); // "order.*" is the prefix "order." and not "order"
    await write('/xtypes/a', 'order.item.added');
    await write('/xtypes/b', 'payment.taken');
    await write('/xtypes-elsewhere', 'order.placed');
    for (let i = 0; i < 5; i++) await write('/xtypes/b', 'noise'); // the feed ends with skipped entries
    /** The unfiltered feed, filtered here: the events whose type starts with "order.", entries left without one dropped. */
    const ordersAfter = async (position: number) =>
      (await readFeedWithTypeScript(client, '/xtypes'))
        .filter((entry) => entry.position > position)
        .map((entry) => ({ ...entry, types: entry.types.filter((type) => type.startsWith('order.')) }))
        .filter((entry) => entry.types.length > 0);
    const label = (entry: PrintedFeedEntry) => `${entry.stream}@${entry.version} ${entry.types.join(',')}`;

    const positionFile = path.join(workDir, 'python-orders.position');
    const readOrders = async () =>
      (await run(python, ['readfeed', server.address, '/xtypes', '2', positionFile, 'order.*'])) as unknown as FeedRead;
    const first = await readOrders();
    assert.deepEqual(first.entries, await ordersAfter(0));
    assert.deepEqual(first.entries.map(label), ['/xtypes/a@1 order.placed', '/xtypes/a@2 order.item.added']);
    assertFeedOrder(first.entries.filter((entry) => entry.stream === '/xtypes/a'), 'the order.* feed');
    assert.ok(first.pages > 1, `ReadFeed paged: ${first.pages} page(s)`);
    // The stored position is past the skipped entries at the feed's end, so they are not read again.
    const whole = await readFeedWithTypeScript(client, '/xtypes');
    assert.ok(first.position >= (whole[whole.length - 1]?.position ?? Infinity), `stored ${first.position}`);
    assert.equal(Number(fs.readFileSync(positionFile, 'utf8')), first.position);

    await write('/xtypes/a', 'order.shipped');
    await write('/xtypes/b', 'noise');
    await write('/xtypes/b', 'payment.refunded', 'order.cancelled');
    const second = await readOrders();
    assert.deepEqual(second.entries, await ordersAfter(first.position));
    assert.deepEqual(second.entries.map(label), ['/xtypes/a@3 order.shipped', '/xtypes/b@9 order.cancelled']);
  });

  it("the READMEs' Python and Go examples run and print what they promise", async () => {
    const expectedLines = (codeName: string) => [
      'written at 1',
      /^0 .*\$stream\.started/,
      /^1 .*order\.placed/,
      'entry 0',
      'entry 1',
      new RegExp(`^${codeName} WRONG_EXPECTED_VERSION head is 1$`),
      // The feed example: only the order.* event of the whole /orders subtree, then where to resume.
      /^feed \/orders\/\d+ 1 \W*order\.placed\W*$/,
      /^resume after \d+$/,
    ];
    const check = async (output: string, codeName: string) => {
      const lines = output.trim().split('\n');
      const expected = expectedLines(codeName);
      assert.equal(lines.length, expected.length, output);
      expected.forEach((want, index) =>
        typeof want === 'string' ? assert.equal(lines[index], want) : assert.match(lines[index] ?? '', want),
      );
      // The position it would store is at or past every entry of the subtree.
      const feed = await readFeedWithTypeScript(client, '/orders');
      const resumeAfter = Number(/\d+$/.exec(lines[lines.length - 1] ?? '')?.[0]);
      assert.ok(resumeAfter >= (feed[feed.length - 1]?.position ?? Infinity), `${lines[lines.length - 1]} with the feed at ${feed[feed.length - 1]?.position}`);
    };

    const pythonScript = path.join(workDir, 'readme_example.py');
    fs.writeFileSync(pythonScript, readmeExample('python', 'python').replace('localhost:50051', server.address));
    // Asynchronously: the server runs in this process and must keep serving meanwhile.
    await check((await execFileAsync(PYTHON, [pythonScript], { env: python.env })).stdout, 'StatusCode.ABORTED');

    // A second server, so that the Go example starts from an empty store like the Python one did.
    client.close();
    await server.stop();
    server = await startTestServer();
    client = connect(server.address);
    const goSource = path.join(workDir, 'readme_example.go');
    fs.writeFileSync(goSource, `${GO_EXAMPLE_PRELUDE}${readmeExample('go', 'go').replace('localhost:50051', server.address)}}\n`);
    await check((await execFileAsync(buildGoProgram(workDir, goSource, 'readme_example'))).stdout, 'Aborted');
  });

  it('both read the ErrorInfo of a conflicting append: reason, domain and actual_version', async () => {
    await client.createStream({ stream: '/xlang/conflict', createParents: true });
    await client.append({ stream: '/xlang/conflict', events: [{ type: 'x', data: Buffer.from('{}') }] });
    for (const program of [python, go]) {
      const result = await run(program, ['conflict', server.address, '/xlang/conflict']);
      assert.equal(String(result['code']).toUpperCase(), 'ABORTED', JSON.stringify(result));
      assert.equal(result['reason'], 'WRONG_EXPECTED_VERSION');
      assert.equal(result['domain'], 'eventhorizon.v1');
      assert.equal(result['actual_version'], '1');
    }
  });

  /** An entry as the consumer-group examples print it. */
  interface HandledEntry {
    stream: string;
    version: number;
    position: number;
    partition: number;
    delivery_count: number;
    types: string[];
  }

  /**
   * Runs a consumer-group example until it has handled `count` entries, then stops it as a user
   * would (SIGTERM) and returns what it handled and what it said it acked when it stopped.
   */
  async function consumeWithExample(example: Program, args: string[], count: number): Promise<{ handled: HandledEntry[]; acked: number }> {
    const running = start(example, args);
    const handled: HandledEntry[] = [];
    let stopped: { stopped: boolean; acked: number } | undefined;
    const reading = (async () => {
      for (;;) {
        const next = await running.lines.next();
        if (next.done) break;
        const line = next.value as { entry?: HandledEntry; stopped?: boolean; acked?: number };
        if (line.entry) {
          handled.push(line.entry);
          if (handled.length === count) running.kill();
        }
        if (line.stopped !== undefined) stopped = { stopped: line.stopped, acked: line.acked ?? -1 };
      }
      await running.exited;
    })();
    try {
      await within(30_000, `${count} entries handled and a clean stop of ${path.basename(example.args[0] ?? example.command)}`, reading);
    } finally {
      running.kill();
    }
    assert.ok(stopped?.stopped, 'the example printed {"stopped": true, ...}');
    return { handled, acked: stopped.acked };
  }

  /** Each of `expected` handled exactly once, on its first delivery, and each stream in version order. */
  function assertHandledOnceInOrder(handled: HandledEntry[], expected: PrintedFeedEntry[], what: string): void {
    const label = (entry: { stream: string; version: number }) => `${entry.stream}@${entry.version}`;
    assert.deepEqual(handled.map(label).sort(), expected.map(label).sort(), `${what}: every entry once`);
    for (const stream of new Set(expected.map((entry) => entry.stream))) {
      assert.deepEqual(
        handled.filter((entry) => entry.stream === stream).map((entry) => entry.version),
        expected.filter((entry) => entry.stream === stream).map((entry) => entry.version),
        `${what}: ${stream} in version order`,
      );
    }
    for (const entry of handled) assert.equal(entry.delivery_count, 1, `${what}: ${label(entry)} delivered once`);
  }

  /** The group's stored progress covers every handled entry: positions past them, nothing in flight or left over, no member. */
  async function assertGroupDone(group: string, handled: HandledEntry[]): Promise<void> {
    const described = await client.describeConsumerGroup(group);
    assert.deepEqual(described.members, [], 'the stopped example left the group');
    for (const partition of described.partitions) {
      const last = Math.max(0, ...handled.filter((entry) => entry.partition === partition.partition).map((entry) => entry.position));
      assert.ok(Number(partition.position) >= last, `partition ${partition.partition} at ${partition.position}, handled up to ${last}`);
      assert.equal(partition.inFlight, 0, `partition ${partition.partition} in flight`);
      assert.equal(Number(partition.lagEntries), 0, `partition ${partition.partition} lag`);
    }
  }

  /**
   * The language's consumer-group example creates a group over a subtree written by TypeScript,
   * handles every entry once per stream in version order and acks it; stopped and started again,
   * it handles exactly what was appended meanwhile, so its acks were stored.
   */
  async function consumerGroupExample(example: Program, tag: string): Promise<void> {
    const subtree = `/xgroup/${tag}`;
    const streams = Array.from({ length: 6 }, (_, n) => `${subtree}/account-${n}`);
    for (const stream of streams) await client.createStream({ stream, createParents: true });
    const appendRound = async (round: number) => {
      for (const stream of streams) await client.append({ stream, events: [event('money.deposited', { round, cents: 100 * round })] });
    };
    for (let round = 1; round <= 4; round++) await appendRound(round);
    const group = `xlang-${tag}`;

    const expected = await readFeedWithTypeScript(client, subtree);
    const first = await consumeWithExample(example, [server.address, group, subtree], expected.length);
    assertHandledOnceInOrder(first.handled, expected, `${tag}, first run`);
    assert.equal(first.acked, expected.length, 'every handled entry acked');
    assert.ok(new Set(first.handled.map((entry) => entry.partition)).size > 1, 'the streams spread over several partitions');
    await assertGroupDone(group, first.handled);

    for (let round = 5; round <= 6; round++) await appendRound(round);
    const lastHandled = Math.max(...first.handled.map((entry) => entry.position));
    const rest = (await readFeedWithTypeScript(client, subtree)).filter((entry) => entry.position > lastHandled);
    assert.equal(rest.length, 2 * streams.length);
    // Without SUBTREE: the group exists, and carries on from its stored positions.
    const second = await consumeWithExample(example, [server.address, group], rest.length);
    assertHandledOnceInOrder(second.handled, rest, `${tag}, second run`);
    assert.equal(second.acked, rest.length);
    await assertGroupDone(group, [...first.handled, ...second.handled]);
  }

  it("Python's consumer-group example joins a group, handles each entry once per stream in version order, acks in batches, stops cleanly and resumes", async () => {
    await consumerGroupExample(pythonGroupExample, 'python');
  });

  it("Go's consumer-group example joins a group, handles each entry once per stream in version order, acks in batches, stops cleanly and resumes", async () => {
    await consumerGroupExample(goGroupExample, 'go');
  });
});
