import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { runCli } from '../helpers/cli';
import { eventually } from '../helpers/eventually';
import { BIN } from '../helpers/process';
import { startTestServer, type TestServer } from '../helpers/server';

describe('eventhorizon consumer commands against a real server', function () {
  this.timeout(120_000);
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => runCli(args, env);

  before(async () => {
    server = await startTestServer();
    env = { EH_ADDRESS: server.address };
  });
  after(async () => server.stop());

  it('creates, lists, tails (acking), describes, resets and deletes a group', async () => {
    assert.equal((await cli('stream', 'create', '/cli/a', '--parents')).code, 0);
    const created = await cli('consumer', 'create', 'g1', '--stream', '/cli/a', '--partitions', '2', '--ack-wait-ms', '5000', '--json');
    assert.equal(created.code, 0, created.stderr);
    assert.equal((JSON.parse(created.stdout) as { settings: { partitions: number } }).settings.partitions, 2);
    const again = await cli('consumer', 'create', 'g1', '--stream', '/cli/a');
    assert.equal(again.code, 6, 'already exists: the conflict exit code');
    assert.match((await cli('consumer', 'ls')).stdout, /^g1: \/cli\/a \(and below\), 2 partitions/);

    const tail = spawn(process.execPath, [BIN, 'consumer', 'tail', 'g1', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tail.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tail.once('exit', (code) => resolve(code)));
    assert.equal((await cli('stream', 'append', '/cli/a', 'thing.done', '{"n":1}')).code, 0);
    await eventually(() => out.split('\n').filter((l) => l !== '').length === 2, 15_000, () => out);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; version: string; deliveryCount: number });
    assert.deepEqual(lines.map((l) => [l.stream, l.version, l.deliveryCount]), [['/cli/a', '0', 1], ['/cli/a', '1', 1]]);
    // tail acked both: the group's partitions are at the head.
    await eventually(async () => {
      const described = JSON.parse((await cli('consumer', 'describe', 'g1', '--json')).stdout) as { headPosition: string; partitions: Array<{ position: string; lagEntries: string }> };
      assert.ok(described.partitions.every((p) => p.position === described.headPosition && p.lagEntries === '0'), JSON.stringify(described));
    });
    tail.kill('SIGINT');
    assert.equal(await exited, 0);

    const reset = await cli('consumer', 'reset', 'g1', '--json');
    assert.deepEqual(JSON.parse(reset.stdout), { position: '0' });
    assert.equal((await cli('consumer', 'delete', 'g1')).code, 0);
    assert.equal((await cli('consumer', 'describe', 'g1')).code, 5, 'not found');
  });
});
