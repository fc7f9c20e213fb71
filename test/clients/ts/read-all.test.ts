import assert from 'node:assert/strict';
import { connect, EventHorizon, jsonEvent, NotFoundError } from '../../../clients/ts/src';
import { failure, startTestServer, type TestServer } from '../../helpers/server';

describe('TypeScript client: readAll', () => {
  let server: TestServer;
  let client: EventHorizon;
  /** The versions readAll asked Read for, in the order it asked. */
  let reads: bigint[];
  /** The client's own Read, whatever a test puts in front of it. */
  const read = (request: Parameters<EventHorizon['read']>[0], settings?: Parameters<EventHorizon['read']>[1]) =>
    EventHorizon.prototype.read.call(client, request, settings);

  before(async () => {
    server = await startTestServer();
    client = connect(server.address);
    await client.createStream({ stream: '/all' });
    for (let i = 1; i <= 7; i++) await client.append({ stream: '/all', events: [jsonEvent('counted', { i })] });
  });
  after(async () => {
    client.close();
    await server.stop();
  });
  beforeEach(() => {
    reads = [];
    client.read = (request, settings) => {
      reads.push(BigInt(request.fromVersion ?? 0));
      return read(request, settings);
    };
  });
  afterEach(() => {
    // The instance's own property goes: the prototype's read is back.
    delete (client as Partial<Pick<EventHorizon, 'read'>>).read;
  });

  it('reads every entry once, in order, page after page, from any version', async () => {
    const versions: bigint[] = [];
    for await (const entry of client.readAll('/all', { pageSize: 2 })) versions.push(entry.version);
    assert.deepEqual(versions, [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    assert.deepEqual(reads, [0n, 2n, 4n, 6n]);
    const fromFive: bigint[] = [];
    for await (const entry of client.readAll('/all', { pageSize: 3, fromVersion: 5 })) fromFive.push(entry.version);
    assert.deepEqual(fromFive, [5n, 6n, 7n]);
  });

  it('asks for the next page before handing over the entries of the one that came', async () => {
    const seen: Array<{ version: bigint; readsMade: number }> = [];
    for await (const entry of client.readAll('/all', { pageSize: 4 })) seen.push({ version: entry.version, readsMade: reads.length });
    // The first entry of the first page is handed over once the second page has been asked for;
    // the second page is the last (it says no more), so nothing is asked after it.
    assert.equal(seen[0]?.readsMade, 2);
    assert.deepEqual(
      seen.map((s) => s.version),
      [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n],
    );
    assert.equal(reads.length, 2);
  });

  it('stops asking when the caller stops, and a failure it never awaited reaches nobody', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The page asked for ahead fails; the caller has stopped before it would await it.
      client.read = (request, settings) => {
        reads.push(BigInt(request.fromVersion ?? 0));
        return reads.length === 1 ? read(request, settings) : Promise.reject(new Error('the prefetched page failed'));
      };
      for await (const entry of client.readAll('/all', { pageSize: 2 })) {
        assert.equal(entry.version, 0n);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(reads.length, 2);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('throws the typed error of a page that fails', async () => {
    const error = await failure(
      (async () => {
        for await (const entry of client.readAll('/nowhere')) void entry;
      })(),
    );
    assert.ok(error instanceof NotFoundError);
  });
});
