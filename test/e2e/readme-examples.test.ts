import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyring } from '../../src/crypto/keyring';
import { REPO_ROOT } from '../helpers/process';
import { api, jsonEvent, startTestServer, type TestServer } from '../helpers/server';
import { shellExamples } from '../helpers/shell-examples';

/**
 * The README's grpcurl examples, run as written against a real server, in order (each builds on
 * the previous ones). They work only through server reflection: neither tool is given a .proto
 * file. grpcurl runs them when it is installed; buf curl (the buf CLI of our devDependencies,
 * which downloads and links descriptors by reflection just as grpcurl does) always runs them, so
 * CI checks the README with a real reflection client either way.
 */
const README_ADDRESS = '127.0.0.1:50051';
const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
const EXAMPLES = shellExamples(README, 'grpcurl').map(parseGrpcurl);
const README_URL = `http://${README_ADDRESS}`;
const BUF = path.join(REPO_ROOT, 'node_modules', '.bin', 'buf');
/** The README's own `npx buf curl` examples, without `npx buf`. */
const BUF_EXAMPLES = shellExamples(README, 'npx buf curl').map((args) => ['curl', ...args]);

/** One grpcurl example: its arguments, and what they ask for. */
interface Example {
  args: string[];
  data?: string;
  headers: string[];
  /** `list` and `describe` take an optional symbol; a call takes `package.Service/Method`. */
  action: { kind: 'list'; symbol?: string } | { kind: 'describe'; symbol?: string } | { kind: 'call'; method: string };
}

/** Reads the grpcurl options the README uses; anything else must be taught here first. */
function parseGrpcurl(args: string[]): Example {
  const positional: string[] = [];
  const headers: string[] = [];
  let data: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-plaintext') continue;
    if (arg === '-d') data = args[++i];
    else if (arg === '-H') headers.push(args[++i] ?? '');
    else if (arg.startsWith('-')) throw new Error(`README example uses grpcurl ${arg}, which this test does not translate: ${args.join(' ')}`);
    else positional.push(arg);
  }
  const [address, verb, symbol] = positional;
  assert.equal(address, README_ADDRESS, `README examples dial ${README_ADDRESS}: ${args.join(' ')}`);
  assert.ok(args.includes('-plaintext'), `README examples are plaintext: ${args.join(' ')}`);
  const action: Example['action'] =
    verb === 'list' || verb === 'describe' ? { kind: verb, ...(symbol ? { symbol } : {}) } : { kind: 'call', method: verb ?? '' };
  if (action.kind === 'call') assert.match(action.method, /^[\w.]+\/\w+$/, `a method: ${args.join(' ')}`);
  return { args, ...(data !== undefined ? { data } : {}), headers, action };
}

/** buf curl's equivalent of an example. buf curl has no `describe`: it lists the methods instead. */
function bufCurlArgs(example: Example, address: string, reflection: 'grpc-v1' | 'grpc-v1alpha'): string[] {
  const base = `http://${address}`;
  const common = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--reflect-protocol', reflection];
  for (const header of example.headers) common.push('-H', header);
  switch (example.action.kind) {
    case 'list':
      return [...common, '--list-services', base];
    case 'describe':
      return [...common, '--list-methods', base];
    case 'call':
      return [...common, ...(example.data !== undefined ? ['-d', example.data] : []), `${base}/${example.action.method}`];
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end; a Subscribe never ends by itself (the README says Ctrl-C), so it is
 * stopped once it has printed caught_up. The command runs in its own process group: the buf
 * package's `buf` is a Node wrapper around the real binary, and both must stop.
 */
function run(command: string, args: string[], example?: Example): Promise<Run> {
  // Subscribe and SubscribeFeed: both stream until the client stops.
  const subscribe = example?.action.kind === 'call' && /\/Subscribe(Feed)?$/.test(example.action.method);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let stopped = false;
    const stop = () => {
      if (stopped || child.pid === undefined) return;
      stopped = true;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already exited: nothing to stop.
      }
    };
    const timer = setTimeout(stop, 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (subscribe && /caught_?up/i.test(stdout)) stop();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // A Subscribe stopped after caught_up has done what the example shows.
      resolve({ code: subscribe && stopped && /caught_?up/i.test(stdout) ? 0 : code, stdout, stderr });
    });
  });
}

/** What each example must print besides succeeding. */
function checkOutput(example: Example, output: string): void {
  const { action } = example;
  if (action.kind === 'list') {
    for (const service of ['eventhorizon.v1.EventHorizon', 'grpc.health.v1.Health']) assert.ok(output.includes(service), output);
  } else if (action.kind === 'describe') {
    // grpcurl prints the service's definition, buf curl its methods' paths.
    assert.ok(output.includes(action.symbol ?? 'eventhorizon.v1.EventHorizon'), output);
    assert.match(output, /\bSubscribe\b/, output);
  } else if (action.method === 'grpc.health.v1.Health/Check') {
    assert.match(output, /"status": "SERVING"/, output);
  } else {
    assert.match(output.trim(), /^\{[\s\S]*\}$/, `a JSON reply: ${output}`);
  }
}

/** The README's encryption examples (RotateStreamKey, ShredStream) need a keyring. */
function startReadmeServer(): Promise<TestServer> {
  return startTestServer({ keyring: JSON.stringify(generateKeyring('kek-1')) });
}

describe('README examples of grpcurl and buf curl', () => {
  it('cover every method, found in README.md', () => {
    const actions = EXAMPLES.map(({ action }) => (action.kind === 'call' ? action.method.split('/')[1] : action.kind));
    // Every method of the API and the discovery commands: an example lost from the README fails here.
    for (const expected of ['list', 'describe', 'Check', 'CreateStream', 'Append', 'Read', 'Subscribe', 'PutSnapshot',
      'GetSnapshot', 'DeleteSnapshot', 'RotateStreamKey', 'ShredStream', 'DescribeStream', 'ListChildren', 'ReadFeed',
      'SubscribeFeed']) {
      assert.ok(actions.includes(expected), `${expected} among ${actions.join(', ')}`);
    }
  });

  for (const reflection of ['grpc-v1', 'grpc-v1alpha'] as const) {
    it(`run through buf curl, which links the descriptors served by reflection (${reflection})`, async function () {
      this.timeout(120_000);
      const test = await startReadmeServer();
      try {
        for (const example of EXAMPLES) {
          const args = bufCurlArgs(example, test.address, reflection);
          const result = await run(BUF, args, example);
          const shown = `README: grpcurl ${example.args.join(' ')}\nran: buf ${args.join(' ')}\n${result.stdout}${result.stderr}`;
          assert.equal(result.code, 0, shown);
          checkOutput(example, result.stdout);
        }
      } finally {
        await test.stop();
      }
    });
  }

  it('include buf curl examples, which run as written', async function () {
    this.timeout(60_000);
    assert.ok(BUF_EXAMPLES.length >= 2, 'README shows buf curl');
    const test = await startReadmeServer();
    try {
      // The examples read the README's stream: write it first.
      await api(test.client).createStream({ stream: '/tenants/acme/orders-42', createParents: true, events: [jsonEvent('order.opened', { id: 42 })] });
      for (const example of BUF_EXAMPLES) {
        const args = example.map((arg) => (arg.startsWith(README_URL) ? `http://${test.address}${arg.slice(README_URL.length)}` : arg));
        assert.notDeepEqual(args, example, `a buf curl example dials ${README_URL}: ${example.join(' ')}`);
        const result = await run(BUF, args);
        assert.equal(result.code, 0, `buf ${args.join(' ')}\n${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /order\.opened|eventhorizon\.v1\.EventHorizon\/Read/, result.stdout);
      }
    } finally {
      await test.stop();
    }
  });

  it('run through grpcurl, as written', async function () {
    this.timeout(120_000);
    if (spawnSync('grpcurl', ['-version']).error) {
      console.warn('\n  !!! grpcurl is not on PATH: the README examples were NOT run with grpcurl (buf curl ran them).\n');
      this.skip();
    }
    const test = await startReadmeServer();
    try {
      for (const example of EXAMPLES) {
        const args = example.args.map((arg) => (arg === README_ADDRESS ? test.address : arg));
        const result = await run('grpcurl', args, example);
        assert.equal(result.code, 0, `grpcurl ${args.join(' ')}\n${result.stdout}${result.stderr}`);
        checkOutput(example, result.stdout);
      }
    } finally {
      await test.stop();
    }
  });
});
