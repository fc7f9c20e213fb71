import assert from 'node:assert/strict';
import { connect, PermissionDeniedError, UnauthenticatedError, type EventHorizon } from '../../../clients/ts/src';
import { runCli } from '../../helpers/cli';
import { eventually } from '../../helpers/eventually';
import { failure, startTestServer, type TestServer } from '../../helpers/server';

describe('TypeScript client: against a server that requires API keys', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clients: EventHorizon[] = [];
  const keys: Record<string, string> = {};

  const cli = async (...args: string[]) => {
    const result = await runCli(['auth', ...args, '--data-dir', server.dataDir]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  /** A client sending `key` as its bearer token (plaintext: loopback test server). */
  const as = (key: string | undefined) => {
    const client = connect(server.address, key === undefined ? {} : { token: key, allowInsecureToken: true });
    clients.push(client);
    return client;
  };

  before(async () => {
    server = await startTestServer({ auth: 'required', authRefreshMs: 50 });
    for (const [principal, allow] of [
      ['admin', '*=/**'],
      ['acme', 'stream:*=/tenants/acme/**'],
    ] as const) {
      keys[principal] = (JSON.parse(await cli('key', 'create', '--principal', principal, '--json')) as { key: string }).key;
      await cli('policy', 'set', principal, '--allow', allow);
    }
    // The server picks up new keys by polling; wait until the admin key works.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await as(keys['admin']).createStream({ stream: '/tenants/acme/orders', createParents: true });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await as(keys['admin']).createStream({ stream: '/tenants/other' });
    // acme's policy was written last: the admin key working does not mean it was applied too.
    const acme = as(keys['acme']);
    await eventually(async () => {
      await acme.describeStream({ stream: '/tenants/acme/orders' });
    });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.stop();
  });

  it('UnauthenticatedError without a token, and for a token the server does not know', async () => {
    const missing = await failure(as(undefined).describeStream({ stream: '/' }));
    assert.ok(missing instanceof UnauthenticatedError, String(missing));
    assert.equal(missing.reason, 'UNAUTHENTICATED');
    const unknown = await failure(as('ehk_000000000000_not-a-real-key').describeStream({ stream: '/' }));
    assert.ok(unknown instanceof UnauthenticatedError);
    assert.notEqual(unknown.message, missing.message, 'the token reached the server');
  });

  it('PermissionDeniedError names the action and the resource', async () => {
    const error = await failure(as(keys['acme']).read({ stream: '/tenants/other' }));
    assert.ok(error instanceof PermissionDeniedError, String(error));
    assert.deepEqual(error.metadata, { action: 'stream:read', resource: '/tenants/other' });
  });

  it('sends the token on subscriptions, and does not retry a refused one', async () => {
    const acme = as(keys['acme']);
    for await (const item of acme.subscribe('/tenants/acme/orders')) {
      if (item.kind === 'caughtUp') break;
    }
    const refused = await failure(
      (async () => {
        for await (const item of acme.subscribe('/tenants/other')) void item;
      })(),
    );
    assert.ok(refused instanceof PermissionDeniedError, String(refused));
  });
});
