/** Keeps examples/bank-account compiling and working: it uses the client as an outside service would. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type EventHorizon } from '@eventhorizon/client';
import { BankAccounts, InsufficientFundsError } from '../../examples/bank-account/service';
import { startTestServer, type TestServer } from '../helpers/server';

describe('example: bank account read-model service', () => {
  let server: TestServer;
  let client: EventHorizon;

  before(async () => {
    server = await startTestServer();
    client = connect(server.address);
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  it('never overdraws when two replicas withdraw at once, and snapshots the balance', async () => {
    const replicas = [new BankAccounts(client, { snapshotEvery: 5 }), new BankAccounts(client, { snapshotEvery: 5 })];
    try {
      await replicas[0]?.open('acc-1', 'Ada');
      await replicas[0]?.deposit('acc-1', 10_000);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, async (_, n) => replicas[n % 2]?.withdraw('acc-1', 1_000)),
      );
      const refused = outcomes.filter((o) => o.status === 'rejected');
      assert.equal(refused.length, 2);
      for (const outcome of refused) assert.ok(outcome.status === 'rejected' && outcome.reason instanceof InsufficientFundsError);

      const written = outcomes.flatMap((o) => (o.status === 'fulfilled' && o.value !== undefined ? [o.value] : []));
      const newest = written.reduce((a, b) => (a > b ? a : b), 0n);
      for (const replica of replicas) {
        assert.deepEqual(await replica.account('acc-1', newest), { owner: 'Ada', balanceCents: 0, movements: 11 });
      }
    } finally {
      await Promise.all(replicas.map((replica) => replica.close()));
    }

    const snapshot = await client.getSnapshot({ stream: BankAccounts.streamOf('acc-1'), perspective: 'bank-account:v1' });
    assert.ok(snapshot.snapshot, 'a snapshot was stored');
    const fresh = new BankAccounts(client);
    try {
      assert.deepEqual(await fresh.account('acc-1'), { owner: 'Ada', balanceCents: 0, movements: 11 });
    } finally {
      await fresh.close();
    }
  });

  it('runs as a program against a server', async () => {
    const main = path.resolve(__dirname, '../../examples/bank-account/main.js');
    const { stdout } = await promisify(execFile)(process.execPath, [main, server.address]);
    assert.match(stdout, /^Ada: 0 cents after 11 movements; refused 2$/m);
  });
});
