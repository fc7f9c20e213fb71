import assert from 'node:assert/strict';
import { Admission } from '../../src/realtime/admission';
import { Hub, type LiveFeed } from '../../src/realtime/hub';
import { Lifetime } from '../../src/realtime/lifetime';
import { subscription } from '../../src/realtime/subscription';
import { SubscribeResponse } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { serializeSubscribeResponse } from '../../src/codec/encoded-messages';

describe('realtime building blocks', () => {
  describe('Admission', () => {
    it('starts at most perTurn callers per turn of the event loop, in arrival order, and lets other work run between turns', async () => {
      const admission = new Admission(3);
      const started: number[] = [];
      /** The starts and what else ran, in order. */
      const timeline: string[] = [];
      const all = Array.from({ length: 8 }, (_, i) =>
        admission.enter().then(() => {
          started.push(i);
          timeline.push(`start ${i}`);
        }),
      );
      assert.equal(admission.queued, 5);
      // Work queued for the next turn (like another call's I/O callback) must not wait for all eight.
      setImmediate(() => timeline.push('other work'));
      await Promise.all(all);
      assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.equal(admission.queued, 0);
      // Three in this turn, three in the next, then the other work, then the last two.
      assert.deepEqual(timeline, ['start 0', 'start 1', 'start 2', 'start 3', 'start 4', 'start 5', 'other work', 'start 6', 'start 7']);
    });

    it('starts a caller at once while the turn has room', async () => {
      const admission = new Admission(2);
      let started = false;
      const entered = admission.enter().then(() => (started = true));
      await Promise.resolve();
      assert.equal(started, true, 'started within the same turn');
      await entered;
    });
  });

  describe('Lifetime', () => {
    it('runs the listeners once when it ends, not the removed ones, and at once for late listeners', () => {
      const lifetime = new Lifetime();
      const calls: string[] = [];
      lifetime.onEnd(() => calls.push('a'));
      const stop = lifetime.onEnd(() => calls.push('b'));
      stop();
      lifetime.end();
      lifetime.end();
      assert.deepEqual(calls, ['a']);
      assert.equal(lifetime.ended, true);
      lifetime.onEnd(() => calls.push('late'));
      assert.deepEqual(calls, ['a', 'late']);
    });

    it('runs the others in the order they were added when the first is removed, and a listener object too', () => {
      const lifetime = new Lifetime();
      const calls: string[] = [];
      const stopFirst = lifetime.onEnd(() => calls.push('first'));
      lifetime.onEnd(() => calls.push('second'));
      const feed = { lifetimeEnded: () => calls.push('feed') };
      lifetime.listen(feed);
      lifetime.onEnd(() => calls.push('fourth'));
      stopFirst();
      stopFirst();
      const gone = { lifetimeEnded: () => calls.push('gone') };
      lifetime.listen(gone);
      lifetime.unlisten(gone);
      lifetime.end();
      assert.deepEqual(calls, ['second', 'feed', 'fourth']);
    });
  });

  describe('LiveFeed.wait', () => {
    it('resolves true on an entry, false on timeout and false when the lifetime ends', async () => {
      const hub = new Hub();
      const feed = hub.register('/s', 10);
      const lifetime = new Lifetime();

      const arriving = feed.wait(10_000, lifetime);
      hub.publish('/s', { version: 0n, events: [], recordedAt: new Date() });
      assert.equal(await arriving, true);
      assert.equal(feed.shift()?.version, 0n);

      assert.equal(await feed.wait(5, lifetime), false, 'timeout');

      const ending = feed.wait(10_000, lifetime);
      lifetime.end();
      assert.equal(await ending, false, 'lifetime ended');
      assert.equal(await feed.wait(10_000, lifetime), false, 'already ended');
      hub.unregister(feed);
      assert.equal(hub.subscriberCount(), 0);
    });

    it('times out each waiting feed after its own interval, with one timer for all of them', async () => {
      const hub = new Hub();
      const lifetime = new Lifetime();
      const feeds = Array.from({ length: 3 }, () => hub.register('/s', 10));
      const [short, long, woken] = feeds as [LiveFeed, LiveFeed, LiveFeed];
      const started = Date.now();
      const order: string[] = [];
      const shortDone = short.wait(20, lifetime).then((arrived) => order.push(`short ${arrived}`));
      const longDone = long.wait(60, lifetime).then((arrived) => order.push(`long ${arrived}`));
      const wokenDone = woken.wait(20, lifetime).then((arrived) => order.push(`woken ${arrived}`));
      // An entry wakes all three; only `woken` waits no more, the others wait again.
      hub.publish('/s', { version: 0n, events: [], recordedAt: new Date() });
      await Promise.all([shortDone, longDone, wokenDone]);
      assert.deepEqual(order.sort(), ['long true', 'short true', 'woken true']);
      short.shift();
      long.shift();
      order.length = 0;
      const again = [
        short.wait(20, lifetime).then((arrived) => order.push(`short ${arrived} ${Date.now() - started >= 20}`)),
        long.wait(60, lifetime).then((arrived) => order.push(`long ${arrived} ${Date.now() - started >= 60}`)),
      ];
      await Promise.all(again);
      assert.deepEqual(order, ['short false true', 'long false true']);
      for (const feed of feeds) hub.unregister(feed);
    });
  });

  describe('Hub.close', () => {
    const options = (hub: Hub, lifetime: Lifetime) => ({
      stream: '/s',
      fromVersion: 0n,
      hub,
      readPage: async () => ({ entries: [], more: false }),
      heartbeatIntervalMs: 10_000,
      bufferEntries: 10,
      lifetime,
    });

    it('ends the open subscriptions of the stream with the error, waiting or not, and leaves others open', async () => {
      const hub = new Hub();
      const lifetime = new Lifetime();
      const waiting = subscription(options(hub, lifetime));
      const first = await waiting.next();
      assert.ok(first.done !== true, 'the subscription says caught_up first');
      assert.equal(SubscribeResponse.decode(serializeSubscribeResponse(first.value)).message?.$case, 'caughtUp');
      const other = hub.register('/other', 10);
      const gone = new Error('shredded');

      const next = waiting.next();
      hub.close('/s', gone);
      await assert.rejects(next, (error) => error === gone);
      // Closed feeds left the hub: nothing is published to them, and the stream is not subscribed.
      hub.publish('/s', { version: 1n, events: [], recordedAt: new Date() });
      assert.deepEqual([...hub.subscribedStreams()], ['/other']);
      assert.equal(hub.subscriberCount(), 1);
      hub.unregister(other);
      lifetime.end();
    });

    it('ends a subscription closed during its catch-up, without caught_up, and drops queued entries', async () => {
      const hub = new Hub();
      const lifetime = new Lifetime();
      const gone = new Error('shredded');
      const catchingUp = subscription({
        ...options(hub, lifetime),
        readPage: async () => {
          hub.publish('/s', { version: 0n, events: [], recordedAt: new Date() });
          hub.close('/s', gone);
          return { entries: [], more: false };
        },
      });
      await assert.rejects(catchingUp.next(), (error) => error === gone);
      assert.equal(hub.subscriberCount(), 0);
    });

    it('leaves subscriptions registered after the close alone', async () => {
      const hub = new Hub();
      hub.close('/s', new Error('shredded'));
      const feed = hub.register('/s', 10);
      hub.publish('/s', { version: 0n, events: [], recordedAt: new Date() });
      assert.equal(feed.shift()?.version, 0n);
      assert.equal(feed.failure(), undefined);
    });
  });

  describe('Hub.publish', () => {
    it('pushes at most a few hundred entries per turn of the event loop, lets other work run between, and keeps each feed in version order', async () => {
      const hub = new Hub();
      const feeds = Array.from({ length: 600 }, () => hub.register('/s', 10));
      const other = hub.register('/other', 10);
      const reached = () => feeds.filter((feed) => feed.backlog > 0).length;
      const timeline: string[] = [];
      setImmediate(() => timeline.push(`other work after ${reached()} feeds`));
      hub.publish('/s', { version: 1n, events: [], recordedAt: new Date() });
      hub.publish('/s', { version: 2n, events: [], recordedAt: new Date() });
      hub.publish('/other', { version: 1n, events: [], recordedAt: new Date() });
      const inThisTurn = reached();
      assert.ok(inThisTurn > 0 && inThisTurn < 600, `${inThisTurn} feeds reached in the publishing turn`);
      assert.equal(other.backlog, 0, 'an entry published behind a burst waits for it');
      while (feeds.some((feed) => feed.backlog < 2) || other.backlog < 1) await new Promise((resolve) => setImmediate(resolve));
      assert.match(timeline[0] ?? '', /^other work after \d+ feeds$/);
      assert.ok(!timeline[0]?.endsWith(' 600 feeds'), 'other work ran before the burst was over');
      for (const feed of feeds) assert.deepEqual([feed.shift()?.version, feed.shift()?.version], [1n, 2n]);
    });
  });
});
