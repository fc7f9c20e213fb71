/**
 * The bank account read model: the events of one account folded into its balance. Amounts are
 * whole cents, so that JSON carries them exactly.
 */
import { eventData, jsonEvent, jsonSnapshots, type Event, type ReadModel } from '@eventhorizon/client';

/** Event types of an account stream. */
export const OPENED = 'account.opened';
export const DEPOSITED = 'money.deposited';
export const WITHDRAWN = 'money.withdrawn';

/** The state of one account. */
export interface Account {
  owner: string;
  balanceCents: number;
  /** How many deposits and withdrawals it has seen (shows what a snapshot saved). */
  movements: number;
}

/** The read model; bump the perspective's version whenever `Account` changes shape. */
export const accountModel: ReadModel<Account> = {
  perspective: 'bank-account:v1',
  handles: [OPENED, DEPOSITED, WITHDRAWN],
  initialState: () => ({ owner: '', balanceCents: 0, movements: 0 }),
  apply(account: Account, event: Event): Account {
    switch (event.type) {
      case OPENED:
        return { ...account, owner: eventData<{ owner: string }>(event).owner };
      case DEPOSITED:
        return applyMovement(account, eventData<{ cents: number }>(event).cents);
      case WITHDRAWN:
        return applyMovement(account, -eventData<{ cents: number }>(event).cents);
      default:
        return account;
    }
  },
  ...jsonSnapshots<Account>(),
};

function applyMovement(account: Account, cents: number): Account {
  return { ...account, balanceCents: account.balanceCents + cents, movements: account.movements + 1 };
}

/** The event that opens an account. */
export const opened = (owner: string) => jsonEvent(OPENED, { owner });
/** A deposit of `cents`. */
export const deposited = (cents: number) => jsonEvent(DEPOSITED, { cents });
/** A withdrawal of `cents`. */
export const withdrawn = (cents: number) => jsonEvent(WITHDRAWN, { cents });
