import assert from 'node:assert/strict';
import { credentials, InterceptingCall, status, type Interceptor } from '@grpc/grpc-js';
import { EventHorizonClient, SubscribeRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { checkHealth } from '../../src/observability/health-client';
import { runCli } from '../helpers/cli';
import { eventually } from '../helpers/eventually';
import { api, jsonEvent, rejection, startTestServer, type Api, type TestServer } from '../helpers/server';

/** A client interceptor that sends the key as `authorization: Bearer <key>`. */
function bearer(key: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${key}`);
        next(metadata, listener);
      },
    });
}

describe('authentication and authorization over gRPC', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clients: EventHorizonClient[] = [];
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};

  const cli = (...args: string[]) => runCli(['auth', ...args, '--data-dir', server.dataDir]);
  const as = (key: string | undefined): Api => {
    const client = new EventHorizonClient(server.address, credentials.createInsecure(), {
      interceptors: key === undefined ? [] : [bearer(key)],
    });
    clients.push(client);
    return api(client);
  };
  const createKey = async (principal: string) => {
    const result = await cli('key', 'create', '--principal', principal, '--json');
    assert.equal(result.code, 0, result.stderr);
    const created = JSON.parse(result.stdout) as { key: string; keyId: string };
    keys[principal] = created.key;
    keyIds[principal] = created.keyId;
  };

  before(async () => {
    server = await startTestServer({ auth: 'required', authRefreshMs: 50 });
    await createKey('admin');
    await createKey('acme');
    await createKey('gone');
    const setPolicy = async (...policy: string[]) => {
      const result = await cli('policy', 'set', ...policy);
      assert.equal(result.code, 0, result.stderr);
    };
    await setPolicy('gone', '--allow', '*=/**');
    const revoked = await cli('key', 'revoke', keyIds.gone ?? '');
    assert.equal(revoked.code, 0, revoked.stderr);
    // The server applies the auth stream in order: once the admin's policy (written after the
    // revocation) is in force, so is the revocation.
    await setPolicy('admin', '--allow', '*=/**');
    await setPolicy('acme', '--allow', 'stream:*,snapshot:*=/tenants/acme/**', '--deny', 'stream:append=/tenants/acme/audit/**');
    await eventually(async () => {
      await as(keys.admin).createStream({ stream: '/tenants/acme/audit', createParents: true });
    });
    await as(keys.admin).createStream({ stream: '/tenants/other', createParents: true });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.stop();
  });

  it('refuses a call without a key: UNAUTHENTICATED', async () => {
    const error = await rejection(as(undefined).describeStream({ stream: '/' }), status.UNAUTHENTICATED);
    assert.equal(error.reason, 'UNAUTHENTICATED');
  });

  it('refuses an unknown key: UNAUTHENTICATED', async () => {
    await rejection(as('ehk_000000000000_not-a-real-key').describeStream({ stream: '/' }), status.UNAUTHENTICATED);
  });

  it('refuses a revoked key: UNAUTHENTICATED', async () => {
    await rejection(as(keys.gone).describeStream({ stream: '/' }), status.UNAUTHENTICATED);
  });

  it('serves what the policy allows', async () => {
    const acme = as(keys.acme);
    await acme.createStream({ stream: '/tenants/acme/orders' });
    await acme.append({ stream: '/tenants/acme/orders', events: [jsonEvent('placed', { id: 1 })] });
    const read = await acme.read({ stream: '/tenants/acme/orders' });
    assert.equal(read.entries.length, 2);
    await acme.putSnapshot({ stream: '/tenants/acme/orders', perspective: 'p', version: 1n, data: Buffer.from('{}') });
    await acme.describeStream({ stream: '/tenants/acme' });
  });

  it('denies streams outside the globs: PERMISSION_DENIED naming the action and resource', async () => {
    const error = await rejection(as(keys.acme).read({ stream: '/tenants/other' }), status.PERMISSION_DENIED);
    assert.deepEqual(error.metadata, { action: 'stream:read', resource: '/tenants/other' });
    await rejection(as(keys.acme).describeStream({ stream: '/tenants' }), status.PERMISSION_DENIED);
    await rejection(as(keys.acme).createStream({ stream: '/tenants/acmex' }), status.PERMISSION_DENIED);
  });

  it('denies by an explicit deny rule over an allow', async () => {
    const acme = as(keys.acme);
    await acme.read({ stream: '/tenants/acme/audit' });
    const error = await rejection(
      acme.append({ stream: '/tenants/acme/audit', events: [jsonEvent('x', {})] }),
      status.PERMISSION_DENIED,
    );
    assert.deepEqual(error.metadata, { action: 'stream:append', resource: '/tenants/acme/audit' });
  });

  it('checks subscriptions too', async () => {
    const client = new EventHorizonClient(server.address, credentials.createInsecure(), { interceptors: [bearer(keys.acme ?? '')] });
    clients.push(client);
    const code = await new Promise<number>((resolve) => {
      const call = client.subscribe(SubscribeRequest.fromPartial({ stream: '/tenants/other' }));
      call.on('data', () => undefined);
      call.on('error', (error: { code: number }) => resolve(error.code));
    });
    assert.equal(code, status.PERMISSION_DENIED);
  });

  it('does not list or count the system stream /$ among the root\'s children', async () => {
    const admin = as(keys.admin);
    // The auth commands created /$ and /$/auth; the API refuses those paths, so it hides them.
    assert.deepEqual((await admin.listChildren({ stream: '/' })).children, ['/tenants']);
    assert.equal((await admin.describeStream({ stream: '/' })).childCount, 1n, 'nor counts it');
    await admin.createStream({ stream: '/zz' });
    const first = await admin.listChildren({ stream: '/', limit: 1 });
    assert.deepEqual(first.children, ['/tenants']);
    const second = await admin.listChildren({ stream: '/', limit: 1, pageToken: first.nextPageToken });
    assert.deepEqual(second.children, ['/zz']);
    assert.equal(second.nextPageToken, '', 'no page is promised for the hidden /$');
  });

  it('keeps health open to callers without a key', async () => {
    assert.equal(await checkHealth(server.address, credentials.createInsecure()), 'SERVING');
  });

  it('applies new keys, policy changes and revocations without a restart', async () => {
    await createKey('late');
    const late = as(keys.late);
    // A key without a policy authenticates but may do nothing.
    await eventually(async () => {
      await rejection(late.describeStream({ stream: '/tenants/other' }), status.PERMISSION_DENIED);
    });
    assert.equal((await cli('policy', 'set', 'late', '--allow', 'stream:read=/tenants/other')).code, 0);
    await eventually(async () => {
      await late.describeStream({ stream: '/tenants/other' });
    });
    assert.equal((await cli('key', 'revoke', keyIds.late ?? '')).code, 0);
    await eventually(async () => {
      await rejection(late.describeStream({ stream: '/tenants/other' }), status.UNAUTHENTICATED);
    });
  });

  it('lets the CLI call with --key or EH_API_KEY, and says exit code 4 when refused', async () => {
    const allowed = await runCli(['stream', 'describe', '/tenants/acme/orders', '--key', keys.acme ?? ''], { EH_ADDRESS: server.address });
    assert.equal(allowed.code, 0, allowed.stderr);
    const denied = await runCli(['stream', 'cat', '/tenants/other'], { EH_ADDRESS: server.address, EH_API_KEY: keys.acme ?? '' });
    assert.equal(denied.code, 4);
    assert.match(denied.stderr, /PERMISSION_DENIED: permission denied: stream:read on \/tenants\/other/);
    const anonymous = await runCli(['stream', 'describe', '/'], { EH_ADDRESS: server.address });
    assert.equal(anonymous.code, 4);
  });

  it('lists keys without the keys, and policies', async () => {
    const listed = await cli('key', 'ls', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(!listed.stdout.includes(keys.acme ?? 'unset'), 'the key itself is never shown');
    const byPrincipal = new Map((JSON.parse(listed.stdout) as Array<{ principal: string; revokedAt?: string }>).map((k) => [k.principal, k]));
    assert.ok(byPrincipal.get('gone')?.revokedAt);
    assert.equal(byPrincipal.get('acme')?.revokedAt, undefined);
    const policies = await cli('policy', 'ls');
    assert.match(policies.stdout, /acme\s+deny\s+stream:append\s+\/tenants\/acme\/audit\/\*\*/);
  });

  it('rejects bad rules with a usage error', async () => {
    const result = await cli('policy', 'set', 'x', '--allow', 'stream:fly=/a');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown action "stream:fly"/);
  });
});
