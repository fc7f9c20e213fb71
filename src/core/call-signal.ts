import { CallAbandonedError } from './errors';

/**
 * How a store learns that its caller gave up: `aborted` is read before a write is sent and after
 * a failed network request. A plain AbortSignal does (tests, tools); the server passes a
 * CallCancellation, which costs one small object per call instead of an AbortController.
 */
export type CallSignal = AbortSignal | CallCancellation;

/**
 * The cancellation of one gRPC call. Why not an AbortController per call: on Node 20 creating one
 * (an EventTarget with its AbortSignal) cost a visible share of a unary call's server CPU
 * (BENCHMARKS.md, "Hot-path costs removed"), and almost every call ends without being
 * cancelled. The real AbortSignal that an API needs (the AWS SDK's `abortSignal`) is made only
 * when asked for, and fires as this object is cancelled, before or after.
 */
export class CallCancellation {
  private cancelled = false;
  private controller: AbortController | undefined;

  get aborted(): boolean {
    return this.cancelled;
  }

  /** The caller gave up: `aborted` turns true and the AbortSignal handed out, if any, fires. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort(new CallAbandonedError());
  }

  /** A real AbortSignal for this call, created on first use (already aborted if cancelled). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(new CallAbandonedError());
    }
    return this.controller.signal;
  }
}

/** The AbortSignal of a CallSignal, for APIs that take only a real one. */
export function abortSignalOf(signal: CallSignal): AbortSignal {
  return signal instanceof CallCancellation ? signal.signal : signal;
}
