/** Exponential backoff with jitter, for reconnecting subscriptions. */

/** How long to wait between reconnection attempts. */
export interface BackoffOptions {
  /** First delay, in milliseconds (default 100). */
  initialMs?: number;
  /** Largest delay, in milliseconds (default 5000). */
  maxMs?: number;
  /** Growth factor between attempts (default 2). */
  multiplier?: number;
}

/**
 * Delays that grow exponentially up to a cap. Each delay is drawn uniformly between half the
 * current ceiling and the ceiling ("equal jitter") so that many clients dropped at once by a
 * restarting server do not all come back in the same millisecond.
 */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private ceilingMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 5000;
    this.multiplier = options.multiplier ?? 2;
    this.ceilingMs = this.initialMs;
  }

  /** The next delay; each call raises the ceiling for the one after. */
  next(): number {
    const delay = this.ceilingMs / 2 + Math.random() * (this.ceilingMs / 2);
    this.ceilingMs = Math.min(this.maxMs, this.ceilingMs * this.multiplier);
    return Math.round(delay);
  }

  /** Back to the first delay, after the connection proved healthy. */
  reset(): void {
    this.ceilingMs = this.initialMs;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
