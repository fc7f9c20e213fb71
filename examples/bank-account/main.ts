/**
 * Demo: `node dist/examples/bank-account/main.js [host:port]` against a running server. Opens an
 * account, then two replicas of the service withdraw from it at once; the balance never goes
 * below zero, and the second run loads from the snapshot the first one stored.
 */
import { connect } from '@eventhorizon/client';
import { BankAccounts, InsufficientFundsError } from './service';

async function main(address: string): Promise<void> {
  const client = connect(address);
  const replicas = [new BankAccounts(client, { snapshotEvery: 5 }), new BankAccounts(client, { snapshotEvery: 5 })];
  const [first, second] = replicas as [BankAccounts, BankAccounts];
  const accountId = `demo-${Date.now()}`;
  try {
    await first.open(accountId, 'Ada');
    await first.deposit(accountId, 10_000);
    const attempts = Array.from({ length: 12 }, (_, n) => (n % 2 === 0 ? first : second).withdraw(accountId, 1_000));
    const outcomes = await Promise.allSettled(attempts);
    const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof InsufficientFundsError);
    // Read our writes: wait until this replica's reader has seen the newest withdrawal.
    const newest = outcomes.reduce((max, o) => (o.status === 'fulfilled' && o.value > max ? o.value : max), 0n);
    const account = await first.account(accountId, newest);
    const { owner, balanceCents, movements } = account;
    console.log(`${owner}: ${balanceCents} cents after ${movements} movements; refused ${refused.length}`);
  } finally {
    await Promise.all(replicas.map((replica) => replica.close()));
    client.close();
  }
}

main(process.argv[2] ?? '127.0.0.1:50051').catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
