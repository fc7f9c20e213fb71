/**
 * Polls `check` until it passes, for tests of things that happen "soon" (a subscription leaving
 * the hub, a metric moving, a policy reaching the server): no fixed sleeps, which fail on a busy
 * machine and waste time on a quiet one.
 *
 * `check` passes when it returns anything but `false` without throwing, so it can be a condition
 * or an async block of assertions. After `timeoutMs` the error names the last failure: the
 * assertion's own message, or `describe()` when the condition was merely false.
 */
export async function eventually(
  check: () => boolean | void | Promise<boolean | void>,
  timeoutMs = 10_000,
  describe?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      if ((await check()) !== false) return;
    } catch (error) {
      failure = error;
    }
    if (Date.now() > deadline) {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a thrown non-Error: its String() is all there is to show
      const last = failure instanceof Error ? failure.message : failure !== undefined ? String(failure) : (describe?.() ?? 'the condition was still false');
      const error = new Error(`not within ${timeoutMs} ms: ${last}`);
      if (failure !== undefined) error.cause = failure;
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
