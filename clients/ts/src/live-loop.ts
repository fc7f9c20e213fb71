/**
 * What the read models (Reader, SubtreeReader) share: a loop that keeps their state live in the
 * background, and callers waiting for the state to reach a version or a position.
 */

interface Waiter {
  mark: bigint;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Callers waiting for a mark that only moves forward (a stream version, a feed position). Once the
 * loop behind it failed, waiting rejects with that failure at once.
 */
export class MarkWaiters {
  private waiters: Waiter[] = [];
  private failure: { error: unknown } | undefined;

  /** Resolves once `reached` has been told `mark` or more; `current` is where the state is now. */
  wait(current: bigint, mark: bigint): Promise<void> {
    if (current >= mark) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure.error);
    return new Promise((resolve, reject) => this.waiters.push({ mark, resolve, reject }));
  }

  /** The state now includes `mark`: wakes whoever waited for it or less. */
  reached(mark: bigint): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      if (waiter.mark > mark) return true;
      waiter.resolve();
      return false;
    });
  }

  /** The loop failed: every waiter, now and later, rejects with `error`. */
  fail(error: unknown): void {
    this.failure = { error };
    this.rejectAll(error);
  }

  /** Rejects those waiting now (the loop was stopped); later waits wait again. */
  rejectAll(error: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }
}

/** A started loop: how to stop it, and its end. */
export interface LiveLoop {
  stop(): Promise<void>;
}

/**
 * Runs `body` in the background with a signal that `stop()` aborts. The returned `ready` resolves
 * when the body calls its `ready` callback (the state has caught up), and rejects if the body
 * fails before; a failure at any time goes to `onFailure`. `stop()` aborts and waits for the end
 * (the body's own failure included: it is `onFailure`'s, not stop's).
 */
export function startLiveLoop(
  body: (signal: AbortSignal, ready: () => void) => Promise<void>,
  onFailure: (error: unknown) => void,
): { loop: LiveLoop; ready: Promise<void> } {
  const abort = new AbortController();
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const done = body(abort.signal, () => settle.resolve()).catch((error: unknown) => {
    settle.reject(error);
    onFailure(error);
  });
  return {
    ready,
    loop: {
      stop: () => {
        abort.abort();
        return done;
      },
    },
  };
}
