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

/** The first fenced code block in `language` of a client's README. */
function readmeExample(client: 'python' | 'go', language: string): string {
  const readme = fs.readFileSync(path.join(ROOT, 'clients', client, 'README.md'), 'utf8');
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(readme);
  if (!match?.[1]) throw new Error(`clients/${client}/README.md has no ${language} example`);
  return match[1];
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

  it("the READMEs' Python and Go examples run and print what they promise", async () => {
    const expectedLines = (codeName: string) => [
      'written at 1',
      /^0 .*\$stream\.started/,
      /^1 .*order\.placed/,
      'entry 0',
      'entry 1',
      new RegExp(`^${codeName} WRONG_EXPECTED_VERSION head is 1$`),
    ];
    const check = (output: string, codeName: string) => {
      const lines = output.trim().split('\n');
      const expected = expectedLines(codeName);
      assert.equal(lines.length, expected.length, output);
      expected.forEach((want, index) =>
        typeof want === 'string' ? assert.equal(lines[index], want) : assert.match(lines[index] ?? '', want),
      );
    };

    const pythonScript = path.join(workDir, 'readme_example.py');
    fs.writeFileSync(pythonScript, readmeExample('python', 'python').replace('localhost:50051', server.address));
    // Asynchronously: the server runs in this process and must keep serving meanwhile.
    check((await execFileAsync(PYTHON, [pythonScript], { env: python.env })).stdout, 'StatusCode.ABORTED');

    // A second server, so that the Go example starts from an empty store like the Python one did.
    await server.stop();
    server = await startTestServer();
    const goSource = path.join(workDir, 'readme_example.go');
    fs.writeFileSync(goSource, `${GO_EXAMPLE_PRELUDE}${readmeExample('go', 'go').replace('localhost:50051', server.address)}}\n`);
    check((await execFileAsync(buildGoProgram(workDir, goSource, 'readme_example'))).stdout, 'Aborted');
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
});
