/**
 * Spreads a burst of work over turns of the event loop: at most `perTurn` callers start in one
 * turn, the others wait for the following turns (setImmediate). A client opening 2000
 * subscriptions at once would otherwise have all their catch-up reads and first writes run in
 * one go, while every other call's I/O waited behind them (RELIABILITY.md).
 */
export class Admission {
  private startedThisTurn = 0;
  /** Waiting callers, first come first served; `head` is the next one (no O(n) shift). */
  private waiting: Array<() => void> = [];
  private head = 0;
  private turnScheduled = false;

  constructor(private readonly perTurn: number) {}

  /** Resolves when the caller may start: in this turn while it has room, else in a later one. */
  enter(): Promise<void> {
    this.scheduleTurn();
    if (this.head === this.waiting.length && this.startedThisTurn < this.perTurn) {
      this.startedThisTurn++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Callers waiting for a later turn. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      this.startedThisTurn = 0;
      while (this.head < this.waiting.length && this.startedThisTurn < this.perTurn) {
        const resolve = this.waiting[this.head];
        this.waiting[this.head++] = noop; // let the resolver be collected
        this.startedThisTurn++;
        resolve?.();
      }
      if (this.head === this.waiting.length) {
        this.waiting = [];
        this.head = 0;
      } else {
        // Immediates scheduled now run in the next turn, after its I/O: others get served first.
        this.scheduleTurn();
      }
    });
  }
}

function noop(): void {}
