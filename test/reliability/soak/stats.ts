import fs from 'node:fs';

/** Latency samples of one time window, per operation. */
export class LatencyWindows {
  private readonly windows: Array<Map<string, number[]>> = [];

  constructor(private readonly startedAt: number, private readonly windowMs: number) {}

  record(operation: string, ms: number): void {
    const index = Math.floor((Date.now() - this.startedAt) / this.windowMs);
    while (this.windows.length <= index) this.windows.push(new Map());
    const window = this.windows[index] ?? new Map<string, number[]>();
    const samples = window.get(operation) ?? [];
    samples.push(ms);
    window.set(operation, samples);
  }

  /** p50 and p99 per operation for each window, oldest first. */
  summary(): Array<Record<string, { count: number; p50: number; p99: number }>> {
    return this.windows.map((window) =>
      Object.fromEntries(
        [...window].map(([operation, samples]) => {
          const sorted = [...samples].sort((a, b) => a - b);
          const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0) * 10) / 10;
          return [operation, { count: sorted.length, p50: at(0.5), p99: at(0.99) }];
        }),
      ),
    );
  }
}

/** A process's resident memory in bytes, from /proc (Linux). */
export function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Open descriptors of a process. */
export function descriptorCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}
