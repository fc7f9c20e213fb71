import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { credentials } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { api, dataOf, jsonEvent, tempDir } from '../helpers/server';
import { runCli } from '../helpers/cli';
import { BIN, REPO_ROOT, spawnServer } from '../helpers/process';

describe('eventhorizon serve (the npm start command)', function () {
  this.timeout(60_000);
  let dataDir: string;
  beforeEach(() => (dataDir = tempDir('eh-cli-')));
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('serves the API, stops on SIGTERM with exit 0 and keeps the data', async () => {
    const first = await spawnServer({ EH_DATA_DIR: dataDir });
    let client = new EventHorizonClient(first.address, credentials.createInsecure());
    await api(client).createStream({ stream: '/orders' });
    const appended = await api(client).append({ stream: '/orders', events: [jsonEvent('placed', { id: 1 })] });
    client.close();
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0, first.output());
    assert.ok(fs.existsSync(`${dataDir}/eventhorizon.sqlite`));

    const second = await spawnServer({ EH_DATA_DIR: dataDir });
    client = new EventHorizonClient(second.address, credentials.createInsecure());
    try {
      const page = await api(client).read({ stream: '/orders', fromVersion: appended.cursor?.version ?? 0n });
      assert.deepEqual(dataOf(page.entries[0]?.events[0] ?? assert.fail('no entry')), { id: 1 });
    } finally {
      client.close();
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('serves the web console on http://127.0.0.1:8080 by default, as the README says (or only warns when that port is taken)', async () => {
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(8080, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    const server = await spawnServer({ EH_DATA_DIR: dataDir, EH_CONSOLE_LISTEN: undefined, NODE_ENV: undefined });
    try {
      if (!free) {
        // Another program has the port: the server serves the API anyway and says why there is no console.
        assert.match(server.output(), /web console not started: its development address is in use/);
        return;
      }
      assert.match(server.output(), /"console":"http:\/\/127\.0\.0\.1:8080\/"/);
      const page = await fetch('http://127.0.0.1:8080/');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await page.text(), /Event Horizon/);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('exits with code 1, serving nothing, when a port it needs is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busy = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`;
    try {
      for (const env of [{ EH_LISTEN: busy }, { EH_LISTEN: '127.0.0.1:0', EH_METRICS_LISTEN: busy }]) {
        // Before the fix, a taken metrics port left the gRPC server bound and the process running.
        const result = await runCli(['serve'], { EH_DATA_DIR: dataDir, ...env });
        assert.equal(result.code, 1, `${JSON.stringify(env)}: ${result.stdout}${result.stderr}`);
        assert.match(result.stdout + result.stderr, /could not start/);
      }
    } finally {
      taken.close();
    }
  });

  it('refuses bad configuration with one line per problem and exit code 2', () => {
    const result = spawnSync(process.execPath, [BIN, 'serve', '--heartbeat-interval', 'soon'], {
      cwd: REPO_ROOT,
      env: { ...process.env, EH_LISTEN: 'no-port-here', EH_DATA_DIR: dataDir },
      encoding: 'utf8',
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /EH_LISTEN="no-port-here": must be host:port/);
    assert.match(result.stderr, /--heartbeat-interval="soon": must be a duration/);
  });

  it('prints help listing every setting', () => {
    const result = spawnSync(process.execPath, [BIN, 'serve', '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0);
    for (const name of ['--listen', 'EH_LISTEN', '--data-dir', 'EH_DATA_DIR', 'EH_HEARTBEAT_INTERVAL']) {
      assert.ok(result.stdout.includes(name), name);
    }
  });
});
