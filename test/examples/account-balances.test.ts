/**
 * examples/account-balances: a read model run as two processes of one consumer group, as its
 * README runs it, against a real server.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect, jsonEvent, type EventHorizon, type FeedEntry } from '@eventhorizon/client';
import { BalanceFiles, type AccountBalance } from '../../examples/account-balances/balances';
import { moveMoney, writeAccounts } from '../../examples/account-balances/deposits';
import type { ProcessStatus } from '../../examples/account-balances/main';
import { startTestServer, tempDir, type TestServer } from '../helpers/server';

const MAIN = path.resolve(__dirname, '../../examples/account-balances/main.js');

/** One process of the read model. */
interface ReadModelProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output: () => string;
}

async function startProcess(server: string, dir: string, name: string): Promise<ReadModelProcess> {
  // A short ack wait: a killed process's in-flight streams go to the other one after it.
  const child = spawn(process.execPath, [MAIN, '--server', server, '--dir', dir, '--port', '0', '--name', name, '--ack-wait-ms', '1000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      output += `${line}\n`;
      const listening = /listening on (http:\S+)/.exec(line);
      if (listening?.[1]) resolve(listening[1]);
    });
    void exited.then((code) => reject(new Error(`${name} exited ${code} before listening:\n${output}`)));
  });
  return { child, url, exited, output: () => output };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  return (await response.json()) as T;
}

/** Polls `check` until it returns true; fails with `what` (and the last value seen) after `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('example: account balances read model in two processes of one consumer group', function () {
  this.timeout(180_000);
  let server: TestServer;
  let client: EventHorizon;
  const processes: ReadModelProcess[] = [];

  before(async () => {
    server = await startTestServer();
    client = connect(server.address);
  });
  after(async () => {
    for (const running of processes) running.child.kill('SIGKILL');
    client.close();
    await server.stop();
  });

  it('applies an entry delivered again only once (at-least-once delivery, idempotent read model)', async () => {
    // A server of its own: the other test's read model covers every account of the shared one.
    const own = await startTestServer();
    const ownClient = connect(own.address);
    let entries: FeedEntry[];
    try {
      await ownClient.createStream({ stream: '/bank/accounts/twice', createParents: true }, { waitForReady: true });
      await ownClient.append({ stream: '/bank/accounts/twice', events: [jsonEvent('account.opened', { owner: 'ann' })] });
      await ownClient.append({ stream: '/bank/accounts/twice', events: [jsonEvent('money.deposited', { cents: 500 })] });
      entries = (await ownClient.readFeed({ selector: { stream: '/bank/accounts/twice' }, limit: 100 })).entries;
    } finally {
      ownClient.close();
      await own.stop();
    }
    assert.deepEqual(entries.map((e) => e.version), [0n, 1n, 2n]);
    const files = new BalanceFiles(tempDir('eh-balances-twice-'));
    await files.open();
    const applied: boolean[] = [];
    // Each entry, then the deposit again (its ack was lost), then all of them again (a reset).
    for (const entry of [...entries, entries[2], ...entries]) if (entry) applied.push(await files.apply(entry));
    assert.deepEqual(applied, [true, true, true, false, false, false, false]);
    assert.deepEqual(await files.all(), [{ accountId: 'twice', owner: 'ann', balanceCents: 500, version: 2 }]);
  });

  it('shares the streams, builds an exact read model, and the survivor takes over when one process is killed', async () => {
    const dir = tempDir('eh-balances-');
    const [first, second] = await Promise.all([startProcess(server.address, dir, 'first'), startProcess(server.address, dir, 'second')]);
    processes.push(first, second);
    const status = (running: ReadModelProcess) => getJson<ProcessStatus>(`${running.url}/status`);
    // Both joined and the 16 partitions are split between them.
    await eventually('both processes hold partitions', async () => {
      const [a, b] = await Promise.all([status(first), status(second)]);
      return a.partitions.length > 0 && b.partitions.length > 0 && a.partitions.length + b.partitions.length === 16;
    });

    const expected = await writeAccounts(client, 'acct-', 40, 400);
    /** The read model as either process serves it (the shared folder) equals `expected`, to the cent and to the stream's head version. */
    const readModelIsExact = async (via: ReadModelProcess) => {
      const { accounts } = await getJson<{ accounts: AccountBalance[] }>(`${via.url}/balances`);
      const got = new Map(accounts.map((account) => [account.accountId, account.balanceCents]));
      return got.size === expected.size && [...expected].every(([id, cents]) => got.get(id) === cents);
    };
    await eventually('the read model has every movement', () => readModelIsExact(first));
    const { accounts } = await getJson<{ accounts: AccountBalance[] }>(`${second.url}/balances`);
    for (const account of accounts) {
      assert.equal(account.owner, `owner of ${account.accountId}`);
      const head = await client.read({ stream: `/bank/accounts/${account.accountId}`, fromVersion: 0n });
      assert.equal(account.version, Number(head.headVersion), `${account.accountId} applied up to its head`);
    }
    const [firstBefore, secondBefore] = await Promise.all([status(first), status(second)]);
    assert.ok(firstBefore.applied > 0 && secondBefore.applied > 0, `both did work: ${firstBefore.applied} and ${secondBefore.applied} entries`);
    assert.equal(firstBefore.applied + secondBefore.applied, 40 * 2 + 400, 'each entry applied once (a stream.started, an opening and the movements)');
    assert.deepEqual(firstBefore.accounts.filter((id) => secondBefore.accounts.includes(id)), [], 'no account handled by both');

    // Kill the second process (no clean leave) while money moves: the first takes its partitions
    // at once, and the streams it had entries in flight on after their ack wait; an entry the
    // dead process applied but did not ack comes again, and must not count twice.
    const moving = moveMoney(client, expected, 300);
    await eventually('the second process applies some of the new movements', async () => (await status(second)).applied >= secondBefore.applied + 20);
    second.child.kill('SIGKILL');
    await second.exited;
    await moving;
    await eventually('the survivor holds every partition', async () => (await status(first)).partitions.length === 16);
    await moveMoney(client, expected, 80); // every account again, after the kill
    await eventually('the read model has the movements made around and after the kill', () => readModelIsExact(first));
    const firstAfter = await status(first);
    const takenOver = secondBefore.accounts.filter((id) => firstAfter.accounts.includes(id));
    assert.deepEqual(takenOver.sort(), [...secondBefore.accounts].sort(), 'the survivor applied entries of every account the killed process had');

    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0, `a clean stop:\n${first.output()}`);
    assert.match(first.output(), /first: stopped after applying \d+ entries/);
  });
});
