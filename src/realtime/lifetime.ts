/**
 * The end of one subscription: client cancel, deadline, server shutdown or the subscription's own
 * end. It stands in for an AbortController, which cost the most of our per-subscription work
 * when 2000 subscriptions opened or cancelled at once (RELIABILITY.md): each AbortController is
 * an EventTarget, abort() without a reason builds a DOMException with a stack trace, and each
 * wait for a live entry added and removed an event listener.
 */
/** What listens without a closure of its own: a live feed waiting for an entry. */
export interface LifetimeListener {
  lifetimeEnded(): void;
}

/** The reason a lifetime's signal aborts with: one, not a DOMException with a stack per abort. */
const ENDED = new Error('the subscription ended');

export class Lifetime {
  private ended_ = false;
  /** Made on the first call to signal() only: most subscriptions never need one. */
  private controller: AbortController | undefined;
  /** At most a couple at a time: the wait in progress (for an entry, or for the client to read). */
  private listeners: Array<(() => void) | LifetimeListener> = [];

  get ended(): boolean {
    return this.ended_;
  }

  /** Ends it, once; listeners run now. */
  end(): void {
    if (this.ended_) return;
    this.ended_ = true;
    this.controller?.abort(ENDED);
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) {
      if (typeof listener === 'function') listener();
      else listener.lifetimeEnded();
    }
  }

  /**
   * An AbortSignal that fires when it ends, for a store read that can stop (a network read): made
   * on first use, since an AbortController per subscription was a measured cost (RELIABILITY.md).
   */
  signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.ended_ && !this.controller.signal.aborted) this.controller.abort(ENDED);
    return this.controller.signal;
  }

  /**
   * Like onEnd, for an object that stops listening with `unlisten`: no closure per wait. Only
   * while not ended (the caller checks `ended` first).
   */
  listen(listener: LifetimeListener): void {
    this.listeners.push(listener);
  }

  unlisten(listener: LifetimeListener): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  /**
   * Calls `listener` when it ends (at once if it has), and returns what stops listening. Only for
   * short waits: a listener added per wait must be removed by the same wait.
   */
  onEnd(listener: () => void): () => void {
    if (this.ended_) {
      listener();
      return () => undefined;
    }
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }
}
