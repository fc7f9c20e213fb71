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

type Listener = (() => void) | LifetimeListener;

export class Lifetime {
  private ended_ = false;
  /** Made on the first call to signal() only: most subscriptions never need one. */
  private controller: AbortController | undefined;
  /**
   * At most a couple at a time: the wait in progress (for an entry, or for the client to read).
   * The first in a field and any more in an array, made when needed: an array pushed to grows to
   * 17 slots (152 bytes), which an idle subscription held for its one waiting feed.
   */
  private first: Listener | undefined;
  private more: Listener[] | undefined;

  get ended(): boolean {
    return this.ended_;
  }

  /** Ends it, once; listeners run now. */
  end(): void {
    if (this.ended_) return;
    this.ended_ = true;
    this.controller?.abort(ENDED);
    const { first, more } = this;
    this.first = undefined;
    this.more = undefined;
    if (first) notify(first);
    for (const listener of more ?? []) notify(listener);
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
    this.add(listener);
  }

  unlisten(listener: LifetimeListener): void {
    this.remove(listener);
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
    this.add(listener);
    return () => this.remove(listener);
  }

  private add(listener: Listener): void {
    if (this.first === undefined) this.first = listener;
    else (this.more ??= []).push(listener);
  }

  /** Removes one listener, keeping the others in the order they were added. */
  private remove(listener: Listener): void {
    if (this.first === listener) {
      this.first = this.more?.shift();
      return;
    }
    const at = this.more?.indexOf(listener) ?? -1;
    if (at >= 0) this.more?.splice(at, 1);
  }
}

function notify(listener: Listener): void {
  if (typeof listener === 'function') listener();
  else listener.lifetimeEnded();
}
