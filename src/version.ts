import fs from 'node:fs';
import path from 'node:path';

/** The server's version: package.json's, found above this file (source or dist). */
export const SERVER_VERSION = readVersion(__dirname);

function readVersion(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'eventhorizon' && manifest.version !== undefined) return manifest.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
