import assert from 'node:assert/strict';
import { CallCancellation, abortSignalOf } from '../../src/core/call-signal';
import { CallAbandonedError } from '../../src/core/errors';

/** The server's per-call cancellation must act as the AbortSignal it replaced, wherever read. */
describe('CallCancellation', () => {
  it('is not aborted until cancelled, then is, once', () => {
    const cancellation = new CallCancellation();
    assert.equal(cancellation.aborted, false);
    cancellation.cancel();
    cancellation.cancel();
    assert.equal(cancellation.aborted, true);
  });

  it('fires the AbortSignal handed out before the cancellation, with CallAbandonedError', () => {
    const cancellation = new CallCancellation();
    const signal = abortSignalOf(cancellation);
    let fired = 0;
    signal.addEventListener('abort', () => fired++);
    assert.equal(signal.aborted, false);
    cancellation.cancel();
    assert.equal(signal.aborted, true);
    assert.equal(fired, 1);
    assert.ok(signal.reason instanceof CallAbandonedError);
    assert.equal(abortSignalOf(cancellation), signal, 'one AbortSignal per call');
  });

  it('hands out an AbortSignal already aborted after the cancellation', () => {
    const cancellation = new CallCancellation();
    cancellation.cancel();
    const signal = abortSignalOf(cancellation);
    assert.equal(signal.aborted, true);
    assert.ok(signal.reason instanceof CallAbandonedError);
  });

  it('passes a plain AbortSignal through', () => {
    const signal = new AbortController().signal;
    assert.equal(abortSignalOf(signal), signal);
  });
});
