import assert from 'node:assert/strict';
import fs from 'node:fs';
import { credentials, status } from '@grpc/grpc-js';
import { EventHorizonClient, SubscribeRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { spawnServer } from '../helpers/process';
import { api, dataOf, jsonEvent, tempDir } from '../helpers/server';

const WRITERS = 8;

describe('graceful shutdown under load (SIGTERM to eventhorizon serve)', function () {
  this.timeout(120_000);
  let dataDir: string;
  before(() => (dataDir = tempDir('eh-shutdown-')));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('loses no acknowledged append, ends subscriptions with UNAVAILABLE and exits 0', async () => {
    const server = await spawnServer({ EH_DATA_DIR: dataDir });
    const clients = Array.from({ length: WRITERS }, () => new EventHorizonClient(server.address, credentials.createInsecure()));
    const first = api(clients[0] ?? assert.fail());
    await first.createStream({ stream: '/load' });

    const subscriber = clients[0]?.subscribe(SubscribeRequest.fromPartial({ stream: '/load' }));
    const subscriptionEnd = new Promise<number>((resolve) => {
      subscriber?.on('data', () => undefined);
      subscriber?.on('error', (error: { code: number }) => resolve(error.code));
      subscriber?.on('end', () => resolve(status.OK));
    });

    /** Acknowledged appends: version → what was written. */
    const acknowledged = new Map<bigint, { writer: number; seq: number }>();
    const failures: number[] = [];
    let shutdownSent = false;
    // Each writer appends until the server stops answering, at most 20 s.
    const writers = clients.map(async (client, writer) => {
      const calls = api(client);
      const until = Date.now() + 20_000;
      for (let seq = 0; Date.now() < until; seq++) {
        try {
          const result = await calls.append({ stream: '/load', events: [jsonEvent('tick', { writer, seq })] });
          acknowledged.set(result.cursor?.version ?? -1n, { writer, seq });
        } catch (error) {
          failures.push((error as { code: number }).code);
          if (shutdownSent) return;
        }
      }
    });

    while (acknowledged.size < 300) await new Promise((resolve) => setTimeout(resolve, 10));
    shutdownSent = true;
    server.child.kill('SIGTERM');
    await Promise.all(writers);
    const exitCode = await server.exited;
    for (const client of clients) client.close();

    assert.equal(exitCode, 0, server.output());
    assert.equal(await subscriptionEnd, status.UNAVAILABLE);
    assert.ok(failures.every((code) => code === status.UNAVAILABLE), `failures other than UNAVAILABLE: ${failures.join(', ')}`);

    // Restart on the same data and read everything back.
    const again = await spawnServer({ EH_DATA_DIR: dataDir });
    const reader = new EventHorizonClient(again.address, credentials.createInsecure());
    try {
      const stored = new Map<bigint, unknown>();
      for (let from = 0n; ; ) {
        const page = await api(reader).read({ stream: '/load', fromVersion: from, limit: 1000 });
        for (const entry of page.entries) stored.set(entry.version, dataOf(entry.events[0] ?? assert.fail()));
        if (!page.more) break;
        from = page.nextVersion;
      }
      for (const [version, written] of acknowledged) {
        assert.deepEqual(stored.get(version), written, `acknowledged entry ${version} is missing or different`);
      }
      assert.ok(acknowledged.size >= 300);
    } finally {
      reader.close();
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  });
});
