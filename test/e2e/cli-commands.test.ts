import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, REPO_ROOT } from '../helpers/process';
import { runCli } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';

/** A line of `stream cat --json` / `stream tail --json`. */
type PrintedLine = { events: Array<{ type: string; data: unknown }> };

describe('eventhorizon stream and snapshot commands against a real server', function () {
  this.timeout(120_000);
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => runCli(args, env);

  before(async () => {
    server = await startTestServer();
    env = { EH_ADDRESS: server.address };
  });
  after(async () => server.stop());

  it('creates, appends, lists, describes and cats', async () => {
    const created = await cli('stream', 'create', '/shop/orders', '--parents', '--json');
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual((JSON.parse(created.stdout) as { created: string[] }).created, ['/shop', '/shop/orders']);

    const appended = await cli('stream', 'append', '/shop/orders', 'order.placed', '{"id":7,"items":["a"]}', '--metadata', 'user=ann', '--request-id', 'r-1', '--json');
    assert.equal(appended.code, 0, appended.stderr);
    assert.deepEqual(JSON.parse(appended.stdout), { version: '1', deduplicated: false });
    const retried = await cli('stream', 'append', '/shop/orders', 'order.placed', '{"id":7,"items":["a"]}', '--request-id', 'r-1', '--json');
    assert.deepEqual(JSON.parse(retried.stdout), { version: '1', deduplicated: true });

    const listed = await cli('stream', 'ls', '/shop');
    assert.equal(listed.stdout, '/shop/orders\n');

    const described = await cli('stream', 'describe', '/shop/orders', '--json');
    assert.equal((JSON.parse(described.stdout) as { headVersion: string }).headVersion, '1');

    const readable = await cli('stream', 'cat', '/shop/orders', '--from', '1');
    assert.equal(readable.code, 0, readable.stderr);
    assert.match(readable.stdout, /^#1 {2}\d{4}-\d\d-\d\dT/);
    assert.match(readable.stdout, /order\.placed {2}id=\S+\n {4}metadata: user=ann\n {4}\{\n {6}"id": 7,/);

    const json = await cli('stream', 'cat', '/shop/orders', '--json');
    const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as PrintedLine);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[1]?.events[0]?.data, { id: 7, items: ['a'] });
    assert.equal(lines[0]?.events[0]?.type, '$stream.started');
  });

  it('follows new entries with tail', async () => {
    await cli('stream', 'create', '/live');
    const child = spawn(process.execPath, [BIN, 'stream', 'tail', '/live', '--count', '2', '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Append until the tail has seen two entries (it starts after the head it finds).
    for (let n = 0; output.split('\n').length < 3 && n < 50; n++) {
      await cli('stream', 'append', '/live', 'tick', JSON.stringify({ n }));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(await exited, 0);
    const seen = output.trim().split('\n').map((line) => (JSON.parse(line) as PrintedLine).events[0]?.type);
    assert.deepEqual(seen, ['tick', 'tick']);
  });

  it('tails stored entries, which come in batches, and stops at --count within a batch', async () => {
    await cli('stream', 'create', '/tailed');
    for (let n = 1; n <= 5; n++) await cli('stream', 'append', '/tailed', 'tick', JSON.stringify({ n }));
    const tailed = await cli('stream', 'tail', '/tailed', '--from', '1', '--count', '3', '--json');
    assert.equal(tailed.code, 0, tailed.stderr);
    const printed = tailed.stdout.trim().split('\n').map((line) => JSON.parse(line) as PrintedLine);
    assert.deepEqual(printed.map((line) => line.events[0]?.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('reads and follows a subtree in feed order with feed cat and feed tail', async () => {
    await cli('stream', 'create', '/feed/a', '--parents');
    await cli('stream', 'create', '/feed/b');
    await cli('stream', 'append', '/feed/a', 'order.placed', '{"n":1}');
    await cli('stream', 'append', '/feed/b', 'noise', '{}');
    await cli('stream', 'append', '/feed/b', 'order.shipped', '{"n":2}');

    type FeedLine = PrintedLine & { position: string; stream: string; version: string };
    const lines = (stdout: string) => stdout.trim().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as FeedLine);
    const all = await cli('feed', 'cat', '/feed', '--json');
    assert.equal(all.code, 0, all.stderr);
    const entries = lines(all.stdout);
    assert.deepEqual(
      entries.map((line) => `${line.stream}@${line.version}`),
      ['/feed@0', '/feed@1', '/feed/a@0', '/feed@2', '/feed/b@0', '/feed/a@1', '/feed/b@1', '/feed/b@2'],
    );
    const positions = entries.map((line) => BigInt(line.position));
    assert.deepEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : 1)));

    const orders = await cli('feed', 'cat', '/feed', '--types', 'order.*', '--json');
    assert.deepEqual(lines(orders.stdout).map((line) => line.events[0]?.type), ['order.placed', 'order.shipped']);
    const rest = await cli('feed', 'cat', '/feed', '--from', entries[5]?.position ?? '', '--json');
    assert.deepEqual(lines(rest.stdout).map((line) => `${line.stream}@${line.version}`), ['/feed/b@1', '/feed/b@2']);
    const human = await cli('feed', 'cat', '/feed/a', '--only-stream');
    assert.match(human.stdout, /^@\d+ \/feed\/a\n#0 {2}\d{4}-/);

    // tail --from replays after the position, then follows live entries.
    const child = spawn(process.execPath, [BIN, 'feed', 'tail', '/feed', '--from', entries[6]?.position ?? '', '--count', '3', '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for (let n = 0; output.split('\n').length < 4 && n < 50; n++) {
      await cli('stream', 'append', '/feed/a', 'tick', JSON.stringify({ n }));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(await exited, 0);
    const tailed = lines(output);
    assert.equal(`${tailed[0]?.stream}@${tailed[0]?.version}`, '/feed/b@2');
    assert.deepEqual(tailed.slice(1).map((line) => line.events[0]?.type), ['tick', 'tick']);

    const bad = await cli('feed', 'cat', '/feed', '--types', 'a.*.b');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /INVALID_ARGUMENT.*event_types/);
  });

  it('puts, gets and removes snapshots', async () => {
    const put = await cli('snapshot', 'put', '/shop/orders', 'view:v1', '--version', '1', '{"total":7}');
    assert.equal(put.code, 0, put.stderr);
    const got = await cli('snapshot', 'get', '/shop/orders', 'view:v1', '--json');
    assert.deepEqual((JSON.parse(got.stdout) as { data: unknown }).data, { total: 7 });
    assert.equal((await cli('snapshot', 'rm', '/shop/orders', 'view:v1')).stdout, 'deleted\n');
    assert.equal((await cli('snapshot', 'get', '/shop/orders', 'view:v1')).code, 5);
  });

  it('says what failed in its exit code', async () => {
    const missing = await cli('stream', 'describe', '/nope');
    assert.equal(missing.code, 5);
    assert.match(missing.stderr, /NOT_FOUND: stream \/nope does not exist/);
    const conflict = await cli('stream', 'append', '/shop/orders', 'x', '{}', '--expected-version', '0');
    assert.equal(conflict.code, 6);
    const usage = await cli('stream', 'append', '/shop/orders');
    assert.equal(usage.code, 2);
    const unreachable = await runCli(['stream', 'describe', '/'], { EH_ADDRESS: '127.0.0.1:1' });
    assert.equal(unreachable.code, 3);
  });
});
