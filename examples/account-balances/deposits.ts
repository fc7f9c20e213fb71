/**
 * Demo writer for the account-balances read model: opens accounts and moves money in and out of
 * them, spread over the accounts, and prints the balances the read model must end with.
 *
 *   node dist/examples/account-balances/deposits.js [--server host:port] [--accounts n] [--movements n]
 */
import { parseArgs } from 'node:util';
import { connect, jsonEvent, type EventHorizon } from '@eventhorizon/client';
import { ACCOUNTS_SUBTREE } from './balances';

/** Opens `accounts` accounts (ids prefixed with `prefix`) and spreads `movements` deposits and withdrawals over them; returns each account's final balance. */
export async function writeAccounts(client: EventHorizon, prefix: string, accounts: number, movements: number): Promise<Map<string, number>> {
  const balances = new Map<string, number>();
  const ids = Array.from({ length: accounts }, (_, n) => `${prefix}${n}`);
  for (const id of ids) {
    await client.createStream({ stream: `${ACCOUNTS_SUBTREE}/${id}`, createParents: true });
    await client.append({ stream: `${ACCOUNTS_SUBTREE}/${id}`, events: [jsonEvent('account.opened', { owner: `owner of ${id}` })] });
    balances.set(id, 0);
  }
  await moveMoney(client, balances, movements);
  return balances;
}

/** Appends `movements` deposits and withdrawals over the accounts of `balances` (round-robin, 1 to 3 events an entry), updating it. */
export async function moveMoney(client: EventHorizon, balances: Map<string, number>, movements: number): Promise<void> {
  const ids = [...balances.keys()];
  for (let n = 0; n < movements; n++) {
    const id = ids[n % ids.length] ?? '';
    const events = Array.from({ length: 1 + (n % 3) }, (_, k) => {
      const cents = 100 + ((n * 37 + k * 11) % 900);
      const withdraw = (n + k) % 4 === 3;
      balances.set(id, (balances.get(id) ?? 0) + (withdraw ? -cents : cents));
      return jsonEvent(withdraw ? 'money.withdrawn' : 'money.deposited', { cents });
    });
    await client.append({ stream: `${ACCOUNTS_SUBTREE}/${id}`, events });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string', default: '127.0.0.1:50051' },
      accounts: { type: 'string', default: '20' },
      movements: { type: 'string', default: '200' },
    },
  });
  const client = connect(values.server);
  try {
    const balances = await writeAccounts(client, `demo-${Date.now().toString(36)}-`, Number(values.accounts), Number(values.movements));
    for (const [id, cents] of balances) console.log(`${id}: ${cents} cents`);
  } finally {
    client.close();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
