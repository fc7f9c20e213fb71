import { CorruptDataError } from '../core/errors';
import type { PartitionProgress, Position } from './port';
import { encodeVarint, VarintReader } from './varint';

/**
 * A partition's progress as stored (port.ts, PartitionProgress), relative to its position so
 * that it stays small: varints of `through` − position, then of each not-done position minus the
 * one before it (the first minus the position). Both stores keep these bytes as they are.
 */
export function encodePartitionProgress(position: Position, progress: PartitionProgress): Buffer {
  const parts = [encodeVarint(progress.through - position)];
  let previous = position;
  for (const at of progress.notDone) {
    if (at <= previous || at > progress.through) throw new RangeError(`not-done position ${at} out of order, or past ${progress.through}`);
    parts.push(encodeVarint(at - previous));
    previous = at;
  }
  return Buffer.concat(parts);
}

export function decodePartitionProgress(position: Position, bytes: Uint8Array): PartitionProgress {
  const reader = new VarintReader(bytes, 'a partition\'s stored progress');
  const through = position + reader.next();
  const notDone: Position[] = [];
  let previous = position;
  while (!reader.done) {
    const delta = reader.next();
    previous += delta;
    if (delta === 0n || previous > through) throw new CorruptDataError('a partition\'s stored progress is out of order');
    notDone.push(previous);
  }
  return { through, notDone };
}
