import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');

interface Manifest {
  private?: boolean;
  main?: string;
  bin?: Record<string, string>;
}

describe('package.json of the server', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;

  it('points only at files that exist after the build', () => {
    const paths = [...(manifest.main !== undefined ? [manifest.main] : []), ...Object.values(manifest.bin ?? {})];
    assert.ok(paths.length > 0);
    for (const file of paths) assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} exists`);
  });

  it('is a private server, not a library: no main (the client library is clients/ts)', () => {
    assert.equal(manifest.private, true);
    assert.equal(manifest.main, undefined);
  });
});
