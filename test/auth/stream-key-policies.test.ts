import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startAuthTestServer, type AuthTestServer, type GrantedKey } from '../helpers/auth-server';
import { jsonEvent, rejection } from '../helpers/server';

/**
 * RotateStreamKey and ShredStream are authorized per stream, like every other call (issue 12,
 * item 2): deny rules protect streams from them, and tenants may use them on their own streams.
 */
describe('stream key rotation and shredding under per-stream policies (gRPC)', function () {
  this.timeout(60_000);
  let eh: AuthTestServer;
  let keys: Record<'admin' | 'ops' | 'acme' | 'tenant' | 'rotator', GrantedKey>;
  let counter = 0;
  /** A fresh stream (with its parents) under `prefix`, created by the admin. */
  const fresh = async (prefix: string) => {
    const stream = `${prefix}/s${++counter}`;
    await eh.as(keys.admin).createStream({ stream, createParents: true, events: [jsonEvent('created', {})] });
    return stream;
  };
  /** Whether the stream's contents are still readable (not shredded). */
  const readable = async (stream: string) => (await eh.as(keys.admin).read({ stream })).entries.length === 2;

  before(async () => {
    eh = await startAuthTestServer();
    keys = {
      admin: await eh.grant('admin', { allow: ['*=/**'] }),
      ops: await eh.grant('ops', { allow: ['*=/**'], deny: ['*=/tenants/secret/**'] }),
      acme: await eh.grant('acme', { allow: ['*=/tenants/acme/**'] }),
      // The tenant policy operations.md gives as its example: written before stream-key:* existed.
      tenant: await eh.grant('tenant', { allow: ['stream:*,snapshot:*=/tenants/acme/**'] }),
      rotator: await eh.grant('rotator', { allow: ['stream:read,stream-key:rotate=/tenants/acme/**'] }),
    };
    await eh.refresh();
  });
  after(async () => {
    await eh.stop();
  });

  it('a deny rule stops ShredStream and RotateStreamKey as it stops Read and Append', async () => {
    const secret = await fresh('/tenants/secret');
    const ops = eh.as(keys.ops);
    await rejection(ops.read({ stream: secret }), status.PERMISSION_DENIED);
    await rejection(ops.append({ stream: secret, events: [jsonEvent('x', {})] }), status.PERMISSION_DENIED);
    const shred = await rejection(ops.shredStream({ stream: secret }), status.PERMISSION_DENIED);
    assert.equal(shred.reason, 'PERMISSION_DENIED');
    assert.deepEqual(shred.metadata, { action: 'stream-key:shred', resource: secret });
    const rotate = await rejection(ops.rotateStreamKey({ stream: secret }), status.PERMISSION_DENIED);
    assert.deepEqual(rotate.metadata, { action: 'stream-key:rotate', resource: secret });
    assert.ok(await readable(secret), 'nothing was shredded');

    // Outside the denied globs, "*" still allows both.
    const open = await fresh('/tenants/open');
    assert.equal((await ops.rotateStreamKey({ stream: open })).dekVersion, 2);
    await ops.shredStream({ stream: open });
    await rejection(eh.as(keys.admin).read({ stream: open }), status.FAILED_PRECONDITION);
  });

  it('a tenant allowed "*" on its streams may rotate and shred them, and no others', async () => {
    const own = await fresh('/tenants/acme');
    const other = await fresh('/tenants/other');
    const acme = eh.as(keys.acme);
    assert.equal((await acme.rotateStreamKey({ stream: own })).dekVersion, 2);
    await acme.shredStream({ stream: own });
    assert.equal((await rejection(eh.as(keys.admin).read({ stream: own }), status.FAILED_PRECONDITION)).reason, 'STREAM_SHREDDED');

    await rejection(acme.rotateStreamKey({ stream: other }), status.PERMISSION_DENIED);
    await rejection(acme.shredStream({ stream: other }), status.PERMISSION_DENIED);
    assert.ok(await readable(other));
  });

  it('"stream:*" does not grant them: they are granted by name, "stream-key:*" or "*"', async () => {
    const stream = await fresh('/tenants/acme');
    const tenant = eh.as(keys.tenant);
    await tenant.read({ stream });
    const denied = await rejection(tenant.shredStream({ stream }), status.PERMISSION_DENIED);
    assert.deepEqual(denied.metadata, { action: 'stream-key:shred', resource: stream });
    await rejection(tenant.rotateStreamKey({ stream }), status.PERMISSION_DENIED);

    const rotator = eh.as(keys.rotator);
    assert.equal((await rotator.rotateStreamKey({ stream })).dekVersion, 2);
    await rejection(rotator.shredStream({ stream }), status.PERMISSION_DENIED);
    assert.ok(await readable(stream));
  });

  it('keeps applying keys written after the auth stream\'s own key was rotated elsewhere', async () => {
    // The server holds /$/auth's keys (version 1) in its key cache since it read the stream.
    assert.ok((await eh.rotateAuthStreamKey()) > 1);
    const late = await eh.grant('late', { allow: ['stream:read=/**'] });
    await eh.refresh();
    assert.equal((await eh.as(late).read({ stream: '/' })).entries[0]?.version, 0n);
  });
});
