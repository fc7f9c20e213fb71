import fs from 'node:fs';
import path from 'node:path';

/** The folder of the .proto contract: the nearest `proto/` above this file (source or dist). */
export const PROTO_ROOT = findUp(__dirname, 'proto/eventhorizon');

function findUp(from: string, marker: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, marker))) return path.join(dir, 'proto');
    if (path.dirname(dir) === dir) throw new Error(`no ${marker} above ${from}`);
  }
}
