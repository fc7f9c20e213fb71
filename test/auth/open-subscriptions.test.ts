import assert from 'node:assert/strict';
import { Metadata, status, type ClientReadableStream } from '@grpc/grpc-js';
import type { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { SubscribeRequest, type SubscribeResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { startAuthTestServer, type AuthTestServer, type GrantedKey } from '../helpers/auth-server';
import { detailsOf, jsonEvent } from '../helpers/server';
import { eventually } from '../helpers/eventually';
import { loggedLines } from '../helpers/log-lines';

/** An open Subscribe call: what it received, and how it ended. */
interface OpenSubscription {
  call: ClientReadableStream<SubscribeResponse>;
  versions: bigint[];
  caughtUp: Promise<void>;
  /** The status it ended with (OK when it ended without error). */
  ended: Promise<{ code: number; reason?: string | undefined; metadata: Record<string, string> }>;
}

function subscribe(client: EventHorizonClient, stream: string): OpenSubscription {
  const call = client.subscribe(SubscribeRequest.fromPartial({ stream }));
  const versions: bigint[] = [];
  let caughtUp = () => undefined as void;
  const caught = new Promise<void>((resolve) => (caughtUp = resolve));
  const ended = new Promise<{ code: number; reason?: string | undefined; metadata: Record<string, string> }>((resolve) => {
    call.on('error', (error) => resolve(detailsOf(error)));
    call.on('end', () => resolve({ code: status.OK, metadata: {} }));
  });
  call.on('data', (message: SubscribeResponse) => {
    if (message.message?.$case === 'entry') versions.push(message.message.value.version);
    if (message.message?.$case === 'caughtUp') caughtUp();
  });
  return { call, versions, caughtUp: caught, ended };
}

/** Resolves with the outcome, or rejects when it takes longer than `ms`. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Keys and policies are checked when a call starts; a Subscribe stays open for as long as the
 * client likes (heartbeats keep it alive). When keys or policies change, the open subscriptions
 * are checked again (issue 12, item 5).
 */
describe('open subscriptions when keys and policies change (gRPC)', function () {
  this.timeout(60_000);
  let eh: AuthTestServer;
  let admin: GrantedKey;
  const stream = '/tenants/acme/orders';
  const open: OpenSubscription[] = [];
  const start = async (key: GrantedKey) => {
    const subscription = subscribe(eh.client(key), stream);
    open.push(subscription);
    await within(5000, subscription.caughtUp, 'caught up');
    return subscription;
  };

  before(async () => {
    eh = await startAuthTestServer();
    admin = await eh.grant('admin', { allow: ['*=/**'] });
    await eh.refresh();
    await eh.as(admin).createStream({ stream, createParents: true });
  });
  afterEach(() => {
    for (const subscription of open.splice(0)) subscription.call.cancel();
  });
  after(async () => {
    await eh.stop();
  });

  it('ends a subscription whose key is revoked with UNAUTHENTICATED, and keeps the others', async () => {
    const revoked = await eh.grant('revoked', { allow: ['stream:read=/tenants/acme/**'] });
    const steady = await eh.grant('steady', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const doomed = await start(revoked);
    const kept = await start(steady);

    await eh.revoke(revoked);
    await eh.refresh();
    const ended = await within(5000, doomed.ended, 'the revoked key\'s subscription ended');
    assert.equal(ended.code, status.UNAUTHENTICATED);
    assert.equal(ended.reason, 'UNAUTHENTICATED');

    // The other one still delivers, and the ended one's resources are released.
    const { cursor } = await eh.as(admin).append({ stream, events: [jsonEvent('placed', {})] });
    await eventually(() => assert.ok(kept.versions.includes(cursor?.version ?? -1n)));
    assert.ok(!doomed.versions.includes(cursor?.version ?? -1n));
    await eventually(() => assert.equal(eh.test.server.hub.subscriberCount(), 1));
  });

  it('ends a subscription whose policy no longer allows reading with PERMISSION_DENIED', async () => {
    const changing = await eh.grant('changing', { allow: ['stream:read=/tenants/acme/**'] });
    const unrelated = await eh.grant('unrelated', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const doomed = await start(changing);
    const kept = await start(unrelated);

    // Still allowed after a change that does not concern it: it goes on.
    await eh.setPolicy('changing', { allow: ['stream:read,stream:append=/tenants/acme/**'] });
    await eh.refresh();
    const first = await eh.as(admin).append({ stream, events: [jsonEvent('placed', {})] });
    await eventually(() => assert.ok(doomed.versions.includes(first.cursor?.version ?? -1n)));
    await eh.setPolicy('changing', { allow: ['stream:*=/tenants/**'], deny: ['stream:read=/tenants/acme/orders'] });
    await eh.refresh();
    const ended = await within(5000, doomed.ended, 'the denied subscription ended');
    assert.equal(ended.code, status.PERMISSION_DENIED);
    assert.deepEqual(ended.metadata, { action: 'stream:read', resource: stream });

    const { cursor } = await eh.as(admin).append({ stream, events: [jsonEvent('placed', {})] });
    await eventually(() => assert.ok(kept.versions.includes(cursor?.version ?? -1n)));
  });

  it('ends a subscription cleanly while entries are being delivered to it', async () => {
    const busy = await eh.grant('busy', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const doomed = await start(busy);
    const writer = eh.as(admin);
    let writing = true;
    const appends = (async () => {
      while (writing) await writer.append({ stream, events: [jsonEvent('tick', { pad: 'x'.repeat(2000) })] });
    })();
    await eventually(() => assert.ok(doomed.versions.length >= 20));
    await eh.revoke(busy);
    await eh.refresh();
    const ended = await within(5000, doomed.ended, 'the busy subscription ended');
    writing = false;
    await appends;
    // The refusal, not a broken stream (INTERNAL) or a cancel.
    assert.equal(ended.code, status.UNAUTHENTICATED);
    await eventually(() => assert.equal(eh.test.server.hub.subscriberCount(), 0));
  });

  it('ends a subscription whose client stopped reading, once it reads again', async () => {
    const slow = await eh.grant('slow', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const doomed = await start(slow);
    doomed.call.pause();
    for (let i = 0; i < 200; i++) await eh.as(admin).append({ stream, events: [jsonEvent('tick', { pad: 'x'.repeat(4000) })] });
    await eh.revoke(slow);
    await eh.refresh();
    doomed.call.resume();
    const ended = await within(5000, doomed.ended, 'the paused subscription ended');
    assert.equal(ended.code, status.UNAUTHENTICATED);
    await eventually(() => assert.equal(eh.test.server.hub.subscriberCount(), 0));
  });

  it('ends a subscription whose principal\'s policy is removed with PERMISSION_DENIED', async () => {
    const removed = await eh.grant('removed', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const doomed = await start(removed);
    await eh.removePolicy('removed');
    await eh.refresh();
    const ended = await within(5000, doomed.ended, 'the subscription ended');
    assert.equal(ended.code, status.PERMISSION_DENIED);
  });
});

describe('refused and ended subscriptions in the logs and statuses', function () {
  this.timeout(60_000);

  it('name the call\'s request id and principal: a Subscribe without a key, and one whose key is revoked', async () => {
    const { logger, lines } = loggedLines('info');
    const eh = await startAuthTestServer({}, logger);
    try {
      const admin = await eh.grant('admin', { allow: ['*=/**'] });
      const reader = await eh.grant('reader', { allow: ['stream:read=/logged/**'] });
      await eh.refresh();
      await eh.as(admin).createStream({ stream: '/logged/s', createParents: true });

      // No key: refused before any message, the id travels with the status.
      const anonymous = new Metadata();
      anonymous.set('x-request-id', 'trace-anonymous');
      const refused = eh.test.client.subscribe(SubscribeRequest.fromPartial({ stream: '/logged/s' }), anonymous);
      refused.on('data', () => undefined);
      const error = await new Promise<{ code?: number; metadata?: Metadata }>((resolve) => refused.on('error', resolve));
      assert.equal(error.code, status.UNAUTHENTICATED);
      assert.deepEqual(error.metadata?.get('x-request-id'), ['trace-anonymous']);
      await eventually(() => assert.ok(lines.some((line) => line.msg === 'call refused' && line.requestId === 'trace-anonymous')));

      // Open, then its key revoked: the id was in its headers, the line names it and the principal.
      const metadata = new Metadata();
      metadata.set('x-request-id', 'trace-reader');
      const open = eh.client(reader).subscribe(SubscribeRequest.fromPartial({ stream: '/logged/s' }), metadata);
      const ended = new Promise<{ code?: number }>((resolve) => open.on('error', resolve));
      const headers = await new Promise<Metadata>((resolve) => open.on('metadata', resolve));
      open.on('data', () => undefined);
      assert.deepEqual(headers.get('x-request-id'), ['trace-reader']);
      await eh.revoke(reader);
      await eh.refresh();
      assert.equal((await ended).code, status.UNAUTHENTICATED);
      await eventually(() => {
        const line = lines.find((l) => l.msg === 'open call ended: no longer authorized');
        assert.equal(line?.requestId, 'trace-reader');
        assert.equal(line.principal, 'reader');
        assert.equal(line.method, 'eventhorizon.v1.EventHorizon/Subscribe');
      });
    } finally {
      await eh.stop();
    }
  });
});
