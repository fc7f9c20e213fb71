import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startAuthTestServer, type AuthTestServer, type GrantedKey } from '../helpers/auth-server';
import { eventually } from '../helpers/eventually';
import { recordFeed, type RecordingFeed } from '../helpers/feed-subscriber';
import { detailsOf, jsonEvent, rejection } from '../helpers/server';

/**
 * A feed delivers only what its key may read: it needs `stream:read` on the subtree it follows,
 * and a stream below it that the policy denies is skipped, entry by entry, with the policy as it
 * is when the entry goes out (docs/operations.md, "The feed and policies").
 */
describe('the feed under auth: what a key may read, also while the feed is open', function () {
  this.timeout(60_000);
  let eh: AuthTestServer;
  let admin: GrantedKey;
  const feeds: RecordingFeed[] = [];
  const streamsOf = (feed: RecordingFeed) => [...new Set(feed.entries.map((entry) => entry.stream))].sort();

  before(async () => {
    eh = await startAuthTestServer();
    admin = await eh.grant('admin', { allow: ['*=/**'] });
    await eh.refresh();
    const writer = eh.as(admin);
    for (const stream of ['/tenants/acme/orders', '/tenants/acme/secret', '/tenants/globex/orders']) {
      await writer.createStream({ stream, createParents: true });
      await writer.append({ stream, events: [jsonEvent('written', { stream })] });
    }
  });
  afterEach(() => {
    for (const feed of feeds.splice(0)) feed.cancel();
  });
  after(async () => {
    await eh.stop();
  });

  it('needs read on the subtree followed: PERMISSION_DENIED otherwise, for SubscribeFeed and ReadFeed', async () => {
    const acme = await eh.grant('acme-only', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const denied = recordFeed(eh.client(acme), { selector: { stream: '/' } });
    feeds.push(denied);
    assert.equal(detailsOf(await denied.failed).code, status.PERMISSION_DENIED);
    await rejection(eh.as(acme).readFeed({ selector: { stream: '/tenants' } }), status.PERMISSION_DENIED);
    const page = await eh.as(acme).readFeed({ selector: { stream: '/tenants/acme' } });
    assert.deepEqual([...new Set(page.entries.map((entry) => entry.stream))].sort(), ['/tenants/acme', '/tenants/acme/orders', '/tenants/acme/secret']);
  });

  it('skips the streams a deny rule covers, in the catch-up and live', async () => {
    const key = await eh.grant('no-secrets', { allow: ['stream:read=/**'], deny: ['stream:read=/tenants/acme/secret'] });
    await eh.refresh();
    const feed = recordFeed(eh.client(key), { selector: { stream: '/tenants' } });
    feeds.push(feed);
    await feed.caughtUp;
    assert.ok(!streamsOf(feed).includes('/tenants/acme/secret'), `catch-up: ${streamsOf(feed).join(', ')}`);
    assert.ok(streamsOf(feed).includes('/tenants/acme/orders'));

    await eh.as(admin).append({ stream: '/tenants/acme/secret', events: [jsonEvent('hidden', {})] });
    await eh.as(admin).append({ stream: '/tenants/globex/orders', events: [jsonEvent('shown', {})] });
    await feed.until((f) => f.entries.some((entry) => entry.events[0]?.type === 'shown'), 'the live entry of globex');
    assert.ok(!feed.entries.some((entry) => entry.events[0]?.type === 'hidden'));

    const page = await eh.as(key).readFeed({ selector: { stream: '/tenants' }, limit: 1000 });
    assert.ok(!page.entries.some((entry) => entry.stream === '/tenants/acme/secret'));
  });

  it('applies a policy change to an open feed: a newly denied stream is skipped; losing the subtree ends it', async () => {
    const key = await eh.grant('changing', { allow: ['stream:read=/tenants/**'] });
    await eh.refresh();
    const feed = recordFeed(eh.client(key), { selector: { stream: '/tenants' } });
    feeds.push(feed);
    await feed.caughtUp;
    const writer = eh.as(admin);

    await eh.setPolicy('changing', { allow: ['stream:read=/tenants/**'], deny: ['stream:read=/tenants/globex/**'] });
    await eh.refresh();
    await writer.append({ stream: '/tenants/globex/orders', events: [jsonEvent('after-deny', {})] });
    await writer.append({ stream: '/tenants/acme/orders', events: [jsonEvent('still-allowed', {})] });
    await feed.until((f) => f.entries.some((entry) => entry.events[0]?.type === 'still-allowed'), 'the allowed entry');
    assert.ok(!feed.entries.some((entry) => entry.events[0]?.type === 'after-deny'), 'the denied stream is skipped from the change on');

    await eh.setPolicy('changing', { allow: ['stream:read=/tenants/acme/**'] });
    await eh.refresh();
    const ended = detailsOf(await feed.failed);
    assert.equal(ended.code, status.PERMISSION_DENIED);
    assert.deepEqual(ended.metadata, { action: 'stream:read', resource: '/tenants' });
    await eventually(() => assert.equal(eh.test.server.feedConsumers(), 0));
  });
});
