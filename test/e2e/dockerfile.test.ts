import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, spawnServer } from '../helpers/process';
import { tempDir } from '../helpers/server';

/**
 * Docker cannot run here, so this proves what it can of the Dockerfile: its npm commands are the
 * ones the README and CI use, and its HEALTHCHECK command works against a real server.
 */
describe('Dockerfile', function () {
  this.timeout(60_000);
  // Instructions only: comments dropped, continued lines joined.
  const dockerfile = fs
    .readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')
    .replace(/^#.*\n/gm, '')
    .replace(/\\\n/g, ' ');
  const scripts = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

  it('builds and starts with npm ci, npm run build and npm start', () => {
    // Exec form ["npm", "start"] reads as the shell form npm start.
    const commands = dockerfile.replace(/"\s*,\s*"/g, ' ');
    const npmCommands = [...commands.matchAll(/\bnpm\s+(ci|prune|start|run\s+[\w:-]+)/g)].map((m) => m[1]?.replace(/\s+/g, ' '));
    assert.deepEqual(npmCommands, ['ci', 'run build', 'prune', 'start']);
    assert.ok(scripts.build && scripts.start === 'node bin/eventhorizon serve');
    assert.match(dockerfile, /^USER node$/m, 'runs as a non-root user');
    assert.match(dockerfile, /^VOLUME \["\/data"\]$/m);
    assert.match(dockerfile, /^EXPOSE 50051 9464$/m);
  });

  it('has a HEALTHCHECK command that answers 0 for a serving server', async () => {
    const healthcheck = /^HEALTHCHECK .*CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    const argv = JSON.parse(healthcheck ?? assert.fail('no HEALTHCHECK')) as string[];
    assert.equal(argv[0], 'node');
    const dataDir = tempDir('eh-docker-');
    const server = await spawnServer({ EH_DATA_DIR: dataDir });
    try {
      const args = argv.slice(1).map((arg) => (arg === '127.0.0.1:50051' ? server.address : arg));
      const output = execFileSync(process.execPath, args, { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(output.trim(), 'SERVING');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
