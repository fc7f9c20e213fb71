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

