import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConsoleAssets, WEB_DIR } from '../../src/console/assets';

const ROOT = path.resolve(__dirname, '../../..');

interface Manifest {
  private?: boolean;
  scripts?: Record<string, string>;
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

  describe('the web console', () => {
    it('is built into dist/web, where the server finds its page and every file the page names', () => {
      assert.match(manifest.scripts?.build ?? '', /tsc -p web\/tsconfig\.json && node scripts\/copy-web-assets\.mjs/);
      const assets = new ConsoleAssets();
      assert.equal(WEB_DIR, path.join(ROOT, 'dist', 'web'));
      const page = assets.page.body.toString('utf8');
      const named = [...page.matchAll(/(?:src|href)="\/assets\/([0-9a-f]+)\/([^"]+)"/g)];
      const names = named.map((m) => m[2]);
      assert.ok(names.includes('console.css') && names.includes('main.js'), names.join(', '));
      for (const [, version = '', name = ''] of named) assert.ok(assets.file(version, name), `${name} is served`);
      // The modules the entry imports, and theirs, are there too.
      const pending = ['main.js'];
      const seen = new Set<string>();
      while (pending.length > 0) {
        const name = pending.pop() ?? '';
        if (seen.has(name)) continue;
        seen.add(name);
        const file = assets.file(assets.version, name) ?? assert.fail(`${name} is imported but not served`);
        for (const [, imported = ''] of file.body.toString('utf8').matchAll(/from '\.\/([^']+)'/g)) pending.push(imported);
      }
      assert.ok(seen.size >= 5);
      // Every module is preloaded with the page, so that the browser fetches them all at once.
      assert.deepEqual([...seen].filter((name) => name !== 'main.js').sort(), names.filter((name) => name?.endsWith('.js') && name !== 'main.js').sort());
    });

    it('is in the Docker image: the build stage has its sources and build script, the runtime dist/', () => {
      const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
      assert.match(dockerfile, /^COPY web \.\/web$/m);
      assert.match(dockerfile, /^COPY scripts \.\/scripts$/m);
      assert.match(dockerfile, /^COPY --from=build \/app\/dist \.\/dist$/m);
    });
  });
});
