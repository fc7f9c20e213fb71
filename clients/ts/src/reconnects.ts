/**
 * When and how a resumable call (a subscription, following the feed) tries again: which failures
 * it resumes after, how many in a row it tolerates, and the backoff between attempts.
 */
import { status } from '@grpc/grpc-js';
import { Backoff, sleep, type BackoffOptions } from './backoff';
import { EventHorizonError } from './errors';

/** A reconnection the call is about to make. */
export interface ReconnectInfo {
  /** Consecutive failed attempts so far (1 for the first reconnection after a drop). */
  attempt: number;
  /** How long it waits before reconnecting. */
  delayMs: number;
  /** Why the previous connection ended (undefined when the server just closed it). */
  error: EventHorizonError | undefined;
  /** The version it resumes from (following the feed: the position it resumes after). */
  fromVersion: bigint;
}

export interface ReconnectOptions {
  /** Delays between reconnection attempts. */
  backoff?: BackoffOptions;
  /** Consecutive failed reconnections after which the error is thrown (default: no limit). */
  maxReconnects?: number;
  /** Told about every reconnection, e.g. to log it. */
  onReconnect?: (info: ReconnectInfo) => void;
}

/** The reconnections of one resumable call. */
export class Reconnects {
  private readonly backoff: Backoff;
  private failures = 0;

  constructor(
    private readonly options: ReconnectOptions,
    /** What the call is, for the error after too many failures ("subscription to /a"). */
    private readonly what: string,
  ) {
    this.backoff = new Backoff(options.backoff);
  }

  /** The call delivers: the next drop starts the backoff afresh. */
  delivered(): void {
    this.failures = 0;
    this.backoff.reset();
  }

  /**
   * After a call ended, with `failure` or without (the server closed it): throws what may not be
   * resumed, or once `maxReconnects` failures came in a row; otherwise waits the backoff (cut
   * short by `signal`) before the next attempt, which resumes from `resumeFrom`.
   */
  async after(failure: unknown, resumeFrom: bigint, signal: AbortSignal | undefined): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the call's error (as toClientError mapped it)
    if (failure !== undefined && !isResumable(failure)) throw failure;
    this.failures += 1;
    if (this.failures > (this.options.maxReconnects ?? Number.POSITIVE_INFINITY)) {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the call's error (as toClientError mapped it)
      throw failure ?? new Error(`${this.what} failed ${this.failures} times in a row`);
    }
    const delayMs = this.backoff.next();
    this.options.onReconnect?.({
      attempt: this.failures,
      delayMs,
      error: failure instanceof EventHorizonError ? failure : undefined,
      fromVersion: resumeFrom,
    });
    await sleep(delayMs, signal).catch(() => undefined);
  }
}

/**
 * Whether a failed call may be resumed. UNAVAILABLE covers a server that shut down, a refused
 * connection and a dropped one; CANCELLED here came from the idle watchdog, the server or a proxy
 * (cancellations by the caller's signal end the loop before this is asked); an INTERNAL without
 * ErrorInfo is what grpc-js reports when the HTTP/2 stream is reset under it, while the server's
 * own INTERNAL errors carry an ErrorInfo and are not retried.
 */
export function isResumable(error: unknown): boolean {
  if (!(error instanceof EventHorizonError)) return false;
  if (error.code === status.INTERNAL) return error.reason === undefined;
  return error.code === status.UNAVAILABLE || error.code === status.CANCELLED;
}
