import fs from 'node:fs';
import path from 'node:path';
import { summarise, type LatencySummary } from './stats';

/**
 * How long this disk takes to make a small write durable: 4 KiB written, then fdatasync,
 * repeated; in the filesystem of the data folder, as the server's WAL sync sees it. A durable
 * append at concurrency 1 cannot be faster than the empty handler plus about one such sync, so
 * the latency target is judged against it (Append c=1 p50 ≤ the empty handler's p50 +
 * 2 × the median fdatasync).
 *
 * The writes overwrite blocks of a file written and synced beforehand, as SQLite's WAL does in
 * its steady state (it restarts from its beginning after each checkpoint): fdatasync then has no
 * file size to journal, only the data. That is the smaller, stricter figure: appending to a
 * growing file measured up to several times slower on this machine's ext4.
 */
export function fdatasyncProbe(dir: string, count: number): LatencySummary {
  const file = path.join(dir, `fsync-probe-${process.pid}.bin`);
  const block = Buffer.alloc(4096, 0x5a);
  const fd = fs.openSync(file, 'w');
  const samples: number[] = [];
  try {
    fs.writeSync(fd, Buffer.alloc(block.length * count));
    fs.fsyncSync(fd);
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      fs.writeSync(fd, block, 0, block.length, i * block.length);
      fs.fdatasyncSync(fd);
      samples.push(performance.now() - started);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return summarise(samples);
}
