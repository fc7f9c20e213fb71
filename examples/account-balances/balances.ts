/**
 * The read model: each account's balance, one JSON file per account in a folder that every
 * process of the group shares (a stand-in for the table a real read model would write).
 *
 * The group delivers at least once: an entry comes again when its ack was lost or came too late
 * (a process killed between writing and acking). So each file keeps the last stream version it
 * applied, and an entry at or below it is skipped: applying is idempotent. The group hands a
 * stream's entries out one at a time and in version order, so no two processes write one file
 * at once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { eventData, type FeedEntry } from '@eventhorizon/client';

/** Where the accounts live: one stream per account, "/bank/accounts/<id>". */
export const ACCOUNTS_SUBTREE = '/bank/accounts';

/** One account in the read model. */
export interface AccountBalance {
  accountId: string;
  owner: string;
  balanceCents: number;
  /** The last version of the account's stream applied here. */
  version: number;
}

/** The events of an account stream (as examples/bank-account writes them). */
type AccountEvent =
  | { type: 'account.opened'; data: { owner: string } }
  | { type: 'money.deposited'; data: { cents: number } }
  | { type: 'money.withdrawn'; data: { cents: number } };

const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The account id of a stream of the subtree; undefined for anything else (the subtree itself, a deeper stream). */
export function accountIdOf(stream: string): string | undefined {
  if (!stream.startsWith(`${ACCOUNTS_SUBTREE}/`)) return undefined;
  const id = stream.slice(ACCOUNTS_SUBTREE.length + 1);
  return ACCOUNT_ID.test(id) ? id : undefined;
}

/** Folds one event into a balance. Unknown types are left alone: other writers may add some. */
export function applyEvent(balance: AccountBalance, event: { type: string; data: unknown }): void {
  const known = event as AccountEvent;
  switch (known.type) {
    case 'account.opened':
      balance.owner = known.data.owner;
      break;
    case 'money.deposited':
      balance.balanceCents += known.data.cents;
      break;
    case 'money.withdrawn':
      balance.balanceCents -= known.data.cents;
      break;
  }
}

/** The balances folder. */
export class BalanceFiles {
  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
  }

  /** Applies an entry of an account stream; false when it was applied before (a redelivery) or is not an account's. */
  async apply(entry: FeedEntry): Promise<boolean> {
    const accountId = accountIdOf(entry.stream);
    if (accountId === undefined) return false;
    const version = Number(entry.version);
    const balance = (await this.read(accountId)) ?? { accountId, owner: '', balanceCents: 0, version: -1 };
    if (version <= balance.version) return false;
    for (const event of entry.events) {
      if (event.type.startsWith('$')) continue; // $stream.started and other system events
      applyEvent(balance, { type: event.type, data: eventData(event) });
    }
    balance.version = version;
    await this.write(balance);
    return true;
  }

  /** Every account, by id. */
  async all(): Promise<AccountBalance[]> {
    const names = (await fs.readdir(this.dir)).filter((name) => name.endsWith('.json')).sort();
    const balances = await Promise.all(names.map((name) => this.read(name.slice(0, -'.json'.length))));
    return balances.filter((balance): balance is AccountBalance => balance !== undefined);
  }

  private async read(accountId: string): Promise<AccountBalance | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.fileOf(accountId), 'utf8')) as AccountBalance;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Replaces the file at once (write, then rename): a reader never sees half of it, a crash leaves the old one. */
  private async write(balance: AccountBalance): Promise<void> {
    const file = this.fileOf(balance.accountId);
    const temporary = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temporary, JSON.stringify(balance));
    await fs.rename(temporary, file);
  }

  private fileOf(accountId: string): string {
    return path.join(this.dir, `${accountId}.json`);
  }
}
