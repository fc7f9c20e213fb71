import { CorruptDataError } from '../core/errors';
import type { PartitionProgress, Position } from './port';
import { encodeVarint, VarintReader } from './varint';

/**
 * A partition's progress as stored (port.ts, PartitionProgress): varints of the position it was
 * saved with, of `through` − that position, then of each not-done position minus the one before
 * it (the first minus the position), so that it stays small. Both stores keep these bytes as
 * they are, beside the position.
 */
export function encodePartitionProgress(position: Position, progress: PartitionProgress): Buffer {
  const parts = [encodeVarint(position), encodeVarint(progress.through - position)];
  let previous = position;
  for (const at of progress.notDone) {
    if (at <= previous || at > progress.through) throw new RangeError(`not-done position ${at} out of order, or past ${progress.through}`);
    parts.push(encodeVarint(at - previous));
    previous = at;
  }
  return Buffer.concat(parts);
}

/**
 * The stored progress of a partition now at `position`; undefined when it was saved with another
 * position: a server of a version that does not know progress moved the position and left the
 * bytes as they were (a rolling upgrade), and they no longer describe what lies past it.
 */
export function decodePartitionProgress(position: Position, bytes: Uint8Array): PartitionProgress | undefined {
  const reader = new VarintReader(bytes, 'a partition\'s stored progress');
  if (reader.next() !== position) return undefined;
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
