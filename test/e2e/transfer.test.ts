import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { EventStore } from '../../src/store/port';
import { runCli } from '../helpers/cli';
import { freshTablePrefix, localStore, requireDynamoDbLocal, type DynamoDbLocal } from '../helpers/dynamodb-local';
import { api, startTestServer, tempDir, type Api, type TestServer } from '../helpers/server';

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

interface TransferSuiteOptions {
  streams: string[];
  entriesPerStream: number;
  /** Lines of the file an interrupted import got through. */
  interruptedAfterLines: number;
  /** The target server's store (the embedded SQLite store when unset); the source is SQLite. */
  targetStore?: () => EventStore;
}

/**
 * Export, then an interrupted, resumed and repeated import. The resumed import must not depend on
 * the store's idempotency window: on DynamoDB a request id is recognised only among the newest
 * 100 entries of a stream, so each suite imports well over 100 entries of a stream before the
 * interruption.
 */
function runTransferSuite(name: string, options: TransferSuiteOptions): void {
  const { streams, entriesPerStream } = options;
  const total = streams.length * entriesPerStream;
  describe(`export and import of a subtree of ${total} entries (NDJSON), ${name}`, function () {
    this.timeout(600_000);
    let source: TestServer;
    let target: TestServer;
    let dir: string;

    before(async () => {
      dir = tempDir('eh-transfer-');
      source = await startTestServer();
      target = await startTestServer({}, options.targetStore);
      const calls = api(source.client);
      for (const stream of streams) await calls.createStream({ stream });
      // Written concurrently across the streams (group commit keeps this quick).
      await Promise.all(
        streams.map(async (stream) => {
          for (let i = 0; i < entriesPerStream; i += 50) {
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
      await source?.stop();
      await target?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('round-trips every entry, and a repeated or resumed import adds nothing twice', async () => {
      const file = path.join(dir, 'exp.ndjson');
      const exported = await runCli(['export', '/exp', file], { EH_ADDRESS: source.address });
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stderr, new RegExp(`exported ${streams.length} streams, ${total} entries`));
      const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(lines.length, streams.length + total);

      // An interrupted import: only the first lines made it, over 100 entries of the first stream.
      const partial = path.join(dir, 'partial.ndjson');
      const written = lines.slice(0, options.interruptedAfterLines);
      fs.writeFileSync(partial, `${written.join('\n')}\n`);
      const writtenEntries = written.filter((line) => line.startsWith('{"kind":"entry"')).length;
      const first = await runCli(['import', partial], { EH_ADDRESS: target.address });
      assert.equal(first.code, 0, first.stderr);

      const resumed = await runCli(['import', file], { EH_ADDRESS: target.address });
      assert.equal(resumed.code, 0, resumed.stderr);
      const skipped = Number(/(\d+) already there/.exec(resumed.stderr)?.[1] ?? 0);
      const imported = Number(/imported \d+ streams, (\d+) entries/.exec(resumed.stderr)?.[1] ?? -1);
      assert.equal(skipped, writtenEntries, resumed.stderr);
      assert.equal(imported, total - writtenEntries, resumed.stderr);

      const again = await runCli(['import', file], { EH_ADDRESS: target.address });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, new RegExp(`imported ${streams.length} streams, 0 entries, ${total} already there`));

      const from = api(source.client);
      const to = api(target.client);
      for (const stream of streams) {
        assert.deepEqual(await userEntries(to, stream), await userEntries(from, stream), stream);
      }
    });

    it('refuses to import into a stream that holds other entries (exit code 6), writing nothing there', async () => {
      const from = api(source.client);
      const to = api(target.client);
      await from.createStream({ stream: '/clash' });
      for (let n = 0; n < 3; n++) await from.append({ stream: '/clash', events: [{ type: 'tick', data: Buffer.from(JSON.stringify({ n })) }] });
      await to.createStream({ stream: '/clash' });
      await to.append({ stream: '/clash', events: [{ type: 'other', data: Buffer.from('{}') }] });
      const file = path.join(dir, 'clash.ndjson');
      assert.equal((await runCli(['export', '/clash', file], { EH_ADDRESS: source.address })).code, 0);

      const result = await runCli(['import', file], { EH_ADDRESS: target.address });
      assert.equal(result.code, 6, result.stderr);
      assert.match(result.stderr, /\/clash already holds other entries than the file/);
      assert.deepEqual(
        (await userEntries(to, '/clash')).map((events) => (events as Array<{ type: string }>).map((event) => event.type)),
        [['other']],
      );
    });

    it('refuses a missing stream with exit code 5', async () => {
      const result = await runCli(['export', '/nope', path.join(dir, 'x.ndjson')], { EH_ADDRESS: source.address });
      assert.equal(result.code, 5);
    });
  });
}

runTransferSuite('SQLite store', {
  streams: ['/exp', '/exp/a', '/exp/a/deep', '/exp/b', '/exp/c', '/exp/d', '/exp/e', '/exp/f', '/exp/g', '/exp/h'],
  entriesPerStream: 1000,
  interruptedAfterLines: 4000,
});

describe('DynamoDB Local', function () {
  let local: DynamoDbLocal | undefined;
  before(async function () {
    local = await requireDynamoDbLocal(this);
  });

  // Fewer entries than on SQLite (DynamoDB Local is slow), still well past its 100-entry window:
  // the interruption comes after all 300 entries of /exp and 96 of /exp/a.
  runTransferSuite('DynamoDB store (DynamoDB Local)', {
    streams: ['/exp', '/exp/a', '/exp/b'],
    entriesPerStream: 300,
    interruptedAfterLines: 398,
    targetStore: () => {
      if (!local) throw new Error('DynamoDB Local is not running');
      return localStore(local, freshTablePrefix());
    },
  });
});
