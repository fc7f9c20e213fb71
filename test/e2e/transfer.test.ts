import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { runCli } from '../helpers/cli';
import { api, startTestServer, tempDir, type Api, type TestServer } from '../helpers/server';

const STREAMS = ['/exp', '/exp/a', '/exp/a/deep', '/exp/b', '/exp/c', '/exp/d', '/exp/e', '/exp/f', '/exp/g', '/exp/h'];
const ENTRIES_PER_STREAM = 1000;

/** Every entry of a stream that a user wrote (server-written entries left out), as comparable data. */
async function userEntries(calls: Api, stream: string): Promise<unknown[]> {
  const found: Entry[] = [];
  for (let from = 0n; ; ) {
    const page = await calls.read({ stream, fromVersion: from, limit: 1000 });
    found.push(...page.entries);
    if (!page.more) break;
    from = page.nextVersion;
  }
  return found
    .filter((entry) => !entry.events.every((event) => event.type.startsWith('$')))
    .map((entry) => entry.events.map((e) => ({ id: e.id, type: e.type, data: Buffer.from(e.data).toString(), metadata: e.metadata, contentType: e.contentType })));
}

describe('export and import of a subtree of 10,000 entries (NDJSON)', function () {
  this.timeout(600_000);
  let source: TestServer;
  let target: TestServer;
  let dir: string;

  before(async () => {
    dir = tempDir('eh-transfer-');
    source = await startTestServer();
    target = await startTestServer();
    const calls = api(source.client);
    for (const stream of STREAMS) await calls.createStream({ stream });
    // 10,000 entries, written concurrently across the streams (group commit keeps this quick).
    await Promise.all(
      STREAMS.map(async (stream) => {
        for (let i = 0; i < ENTRIES_PER_STREAM; i += 50) {
          await Promise.all(
            Array.from({ length: 50 }, (_, k) =>
              calls.append({
                stream,
                events: [
                  { type: 'tick', data: Buffer.from(JSON.stringify({ stream, n: i + k })), metadata: { k: String(k) } },
                  ...(k % 10 === 0 ? [{ type: 'blob', data: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' }] : []),
                ],
              }),
            ),
          );
        }
      }),
    );
  });
  after(async () => {
    await source.stop();
    await target.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips every entry, and a repeated or resumed import adds nothing twice', async () => {
    const file = path.join(dir, 'exp.ndjson');
    const exported = await runCli(['export', '/exp', file], { EH_ADDRESS: source.address });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /exported 10 streams, 10000 entries/);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, STREAMS.length + STREAMS.length * ENTRIES_PER_STREAM);

    // An interrupted import: only the first 4,000 lines made it.
    const partial = path.join(dir, 'partial.ndjson');
    fs.writeFileSync(partial, `${lines.slice(0, 4000).join('\n')}\n`);
    const first = await runCli(['import', partial], { EH_ADDRESS: target.address });
    assert.equal(first.code, 0, first.stderr);

    const resumed = await runCli(['import', file], { EH_ADDRESS: target.address });
    assert.equal(resumed.code, 0, resumed.stderr);
    const skipped = Number(/(\d+) already there/.exec(resumed.stderr)?.[1] ?? 0);
    const imported = Number(/imported \d+ streams, (\d+) entries/.exec(resumed.stderr)?.[1] ?? -1);
    assert.ok(skipped > 0, resumed.stderr);
    assert.equal(imported + skipped, STREAMS.length * ENTRIES_PER_STREAM, resumed.stderr);

    const again = await runCli(['import', file], { EH_ADDRESS: target.address });
    assert.match(again.stderr, /imported 10 streams, 0 entries, 10000 already there/);

    const from = api(source.client);
    const to = api(target.client);
    for (const stream of STREAMS) {
      assert.deepEqual(await userEntries(to, stream), await userEntries(from, stream), stream);
    }
  });

  it('refuses a missing stream with exit code 5', async () => {
    const result = await runCli(['export', '/nope', path.join(dir, 'x.ndjson')], { EH_ADDRESS: source.address });
    assert.equal(result.code, 5);
  });
});
