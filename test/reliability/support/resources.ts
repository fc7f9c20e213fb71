import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Open file descriptors of this process (sockets included). */
export function openFileDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

let collect: (() => void) | undefined;

/** Heap in use after a full garbage collection, in bytes. */
export async function heapAfterGc(): Promise<number> {
  if (!collect) {
    // gc() without starting node with --expose-gc: the flag is set now and a fresh context sees it.
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  // Twice, with a turn of the loop between, so that objects freed by finalizers are gone too.
  collect();
  await new Promise((resolve) => setImmediate(resolve));
  collect();
  return process.memoryUsage().heapUsed;
}

/** Polls until `condition` holds; throws with `describe()` after `timeoutMs`. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
