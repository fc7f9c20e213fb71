/**
 * A small read-model service over Event Horizon: bank accounts whose balance is kept live by a
 * Reader (snapshot + entries after it + subscription), and whose withdrawals never overdraw even
 * when several replicas of the service withdraw at once (transactWrite retries on conflict).
 */
import { Reader, type EventHorizon } from '@eventhorizon/client';
import { accountModel, deposited, opened, withdrawn, type Account } from './account';

/** A withdrawal larger than the balance. */
export class InsufficientFundsError extends Error {
  override name = 'InsufficientFundsError';
  constructor(
    readonly accountId: string,
    readonly balanceCents: number,
    readonly requestedCents: number,
  ) {
    super(`account ${accountId} holds ${balanceCents} cents, cannot withdraw ${requestedCents}`);
  }
}

/** Options of the service. */
export interface BankAccountsOptions {
  /** Store a snapshot every this many entries (default 50). */
  snapshotEvery?: number;
}

/** The accounts service; one per process, sharing one client. */
export class BankAccounts {
  private readonly readers = new Map<string, Promise<Reader<Account>>>();

  constructor(
    private readonly client: EventHorizon,
    private readonly options: BankAccountsOptions = {},
  ) {}

  /** The stream of an account. */
  static streamOf(accountId: string): string {
    return `/bank/accounts/${accountId}`;
  }

  /** Opens an account: its stream, created with the opening event in one write. */
  async open(accountId: string, owner: string): Promise<void> {
    await this.client.createStream({
      stream: BankAccounts.streamOf(accountId),
      createParents: true,
      events: [opened(owner)],
    });
  }

  /** Deposits `cents`; returns the version written. */
  async deposit(accountId: string, cents: number): Promise<bigint> {
    const reader = await this.reader(accountId);
    const result = await reader.transactWrite(() => [deposited(cents)]);
    return result.version;
  }

  /**
   * Withdraws `cents` unless that would overdraw. The check and the append form one optimistic
   * transaction: if another replica moved the account meanwhile, the check runs again on the
   * newer balance, so concurrent withdrawals can never overdraw together.
   */
  async withdraw(accountId: string, cents: number): Promise<bigint> {
    const reader = await this.reader(accountId);
    const result = await reader.transactWrite(
      (account) => {
        if (account.balanceCents < cents) throw new InsufficientFundsError(accountId, account.balanceCents, cents);
        return [withdrawn(cents)];
      },
      { maxAttempts: 10 },
    );
    return result.version;
  }

  /** The account as of at least `atLeastVersion` (read-your-writes after deposit/withdraw). */
  async account(accountId: string, atLeastVersion = 0n): Promise<Account> {
    const reader = await this.reader(accountId);
    await reader.waitForVersion(atLeastVersion);
    return reader.state;
  }

  /** Stops every live reader. */
  async close(): Promise<void> {
    const readers = await Promise.all(this.readers.values());
    await Promise.all(readers.map((reader) => reader.stop()));
    this.readers.clear();
  }

  /** The live reader of an account, started on first use. */
  private reader(accountId: string): Promise<Reader<Account>> {
    let reader = this.readers.get(accountId);
    if (!reader) {
      const created = new Reader(this.client, BankAccounts.streamOf(accountId), accountModel, {
        snapshotEvery: this.options.snapshotEvery ?? 50,
      });
      reader = created.start().then(() => created);
      // A failed start is not cached: the next call tries again.
      reader.catch(() => this.readers.delete(accountId));
      this.readers.set(accountId, reader);
    }
    return reader;
  }
}
