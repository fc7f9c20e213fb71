/**
 * Runs tasks one at a time per key, in arrival order, and different keys concurrently.
 *
 * The store writes each stream's entries through its queue: concurrent appends on one replica
 * then each land at the next head instead of racing each other for the same version and
 * retrying, so a replica spends one write request per append even under local concurrency.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    // Forget the key once its last task is done, so idle streams cost no memory.
    // void: tail has its rejection caught above, so this never rejects.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
