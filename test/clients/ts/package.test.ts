/**
 * @eventhorizon/client as another service gets it: packed with `npm pack`, unpacked into a
 * project outside this repository, then compiled against and loaded from there.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../../helpers/server';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../../..');

describe('TypeScript client: the packed package', function () {
  this.timeout(120_000);

  it('packs, compiles against and loads in a project outside the repository', async () => {
    const project = tempDir('eh-consumer-');
    try {
      const { stdout } = await execFileAsync('npm', ['pack', '--json', '--pack-destination', project], {
        cwd: path.join(ROOT, 'clients/ts'),
      });
      const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
      assert.ok(packed, 'npm pack reported the tarball');
      const files = packed.files.map((file) => file.path);
      for (const needed of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/gen/eventhorizon/v1/eventhorizon.js']) {
        assert.ok(files.includes(needed), `${needed} is packed`);
      }

      // Unpack as npm would install it; its dependencies come from this repository's install.
      const installed = path.join(project, 'node_modules/@eventhorizon/client');
      fs.mkdirSync(installed, { recursive: true });
      await execFileAsync('tar', ['-xzf', path.join(project, packed.filename), '-C', installed, '--strip-components=1']);
      for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
        if (name === '@eventhorizon' || name.startsWith('.')) continue;
        fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(project, 'node_modules', name));
      }
      fs.writeFileSync(
        path.join(project, 'consumer.ts'),
        [
          "import { connect, ConflictError, Reader, type ReadModel } from '@eventhorizon/client';",
          "const client = connect('127.0.0.1:1', { deadlineMs: 1000 });",
          'const model: ReadModel<number> = { perspective: "n:v1", handles: [], initialState: () => 0,',
          '  apply: (n) => n, encode: () => new Uint8Array(), decode: () => 0 };',
          "const reader = new Reader(client, '/x', model);",
          "console.log(typeof ConflictError, reader.version.toString());",
          'client.close();',
        ].join('\n'),
      );
      const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
      await execFileAsync(process.execPath, [
        tsc, '--strict', '--module', 'node16', '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'consumer.ts',
      ], { cwd: project });
      const run = await execFileAsync(process.execPath, ['consumer.js'], { cwd: project });
      assert.equal(run.stdout.trim(), 'function -1');
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
