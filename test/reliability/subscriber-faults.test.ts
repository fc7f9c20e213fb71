import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { connect } from '../../clients/ts/src';
import type { Entry } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { eventually } from '../helpers/eventually';
import { api, startTestServer, type Api, type TestServer } from '../helpers/server';
import { watchWriteBuffers } from '../helpers/write-buffers';
import { clientFor } from './support/grpc';
import { LatencyProbe } from './support/latency-probe';
import { heapAfterGc, openFileDescriptors } from './support/resources';

const SUBSCRIBER_PROCESS = path.join(__dirname, 'support', 'subscriber-process.js');
/** The probe's deliveries must stay this quick while the faulty clients misbehave (a shared CI machine). */
const PROMPT_MS = 1500;
/**
 * The probe's deliveries must stay this quick while 2000 subscriptions open or are cancelled at
 * once. Measured up to 1.4 s on the shared 2-core machine (load average 4–6); 1.5–2.5 s there
 * before the subscriptions' own work was cut and spread, 2.4–3.7 s at load average 10–13
 * (RELIABILITY.md). Room for a machine more loaded than that.
 */
const BURST_PROMPT_MS = 4000;
/** Descriptors that may come and go without a leak (the probe's connection, a log file...). */
const FD_SLACK = 4;

/** Starts a client process holding `count` subscriptions and waits until all have caught up. */
async function subscriberProcess(address: string, stream: string, count: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SUBSCRIBER_PROCESS, address, stream, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await said(child, 'ready');
  return child;
}

/**
 * Resolves when the client process prints `word` next. After `timeoutMs` it fails with what the
 * process and `describe` say, rather than leave the test to mocha's timeout with no clue.
 */
function said(child: ChildProcess, word: string, describe: () => string = () => '', timeoutMs = 30_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const stop = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes(word)) return;
      stop();
      resolve();
    };
    const onExit = (code: number | null) => {
      stop();
      reject(new Error(`subscriber process exited with ${code}`));
    };
    const timer = setTimeout(() => {
      child.stdin?.write('status\n');
      // Its answer comes on stdout: give it a moment, then fail with it.
      setTimeout(() => {
        stop();
        reject(new Error(`the subscriber process did not say "${word}" within ${timeoutMs} ms: ${output.trim()}; ${describe()}`));
      }, 500);
    }, timeoutMs);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

describe('reliability: subscriber faults (vanishing, stuck, slow and churning clients)', function () {
  this.timeout(90_000);
  let test: TestServer;
  let eh: Api;
  let probe: LatencyProbe;
  let baselineFds: number;

  /** A fresh server with a latency probe subscribed, and the descriptor count to come back to. */
  async function startBench(keepalive?: { timeMs: number; timeoutMs: number }): Promise<void> {
    test = await startTestServer({ heartbeatIntervalMs: 1000, subscriberBufferEntries: 100 }, undefined, keepalive);
    eh = api(test.client);
    await eh.createStream({ stream: '/faults', createParents: true });
    probe = new LatencyProbe(clientFor(test.address), '/faults/probe');
    await probe.start();
    baselineFds = openFileDescriptors();
  }
  beforeEach(async function () {
    // The stuck-client test shortens keepalive (60 s + 20 s) to find the silent client quickly.
    // Only there: with a 1 s timeout a busy server would drop healthy clients too.
    await startBench(this.currentTest?.title.includes('SIGSTOP') ? { timeMs: 1000, timeoutMs: 1000 } : undefined);
  });
  afterEach(async () => {
    probe.stop();
    await test.stop();
  });

  /** Hub and descriptors are back where they were, and the probe was served promptly meanwhile. */
  async function assertRecovered(what: string, promptMs = PROMPT_MS): Promise<void> {
    const hub = test.server.hub;
    assert.equal(probe.report().ended, undefined, `${what}: the probe's subscription ended`);
    await eventually(() => hub.subscriberCount() === 1, 15_000, () => `${what}: ${hub.subscriberCount() - 1} subscriptions left besides the probe`);
    await eventually(() => openFileDescriptors() <= baselineFds + FD_SLACK, 10_000, () => `${what}: ${openFileDescriptors()} descriptors open, baseline ${baselineFds}`);
    const report = probe.report();
    assert.ok(report.delivered > 0, `${what}: the probe received its entries`);
    assert.ok(report.maxMs < promptMs, `${what}: the probe waited up to ${report.maxMs} ms (p99 ${report.p99Ms} ms)`);
    assert.equal(report.failures, 0, `${what}: the probe's appends failed`);
  }

  it('frees the subscriptions of a client process killed while holding 300 of them', async () => {
    await eh.createStream({ stream: '/faults/killed' });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    const child = await subscriberProcess(test.address, '/faults/killed', 300).finally(() => process.off('warning', onWarning));
    // 300 subscriptions listening for shutdown are no leak: Node must not say so on stderr.
    assert.deepEqual(warnings.filter((w) => w.includes('MaxListeners')), []);
    assert.equal(test.server.hub.subscriberCount(), 301);
    probe.reset(); // measured from here: the fault, not the setup
    for (let i = 0; i < 20; i++) await eh.append({ stream: '/faults/killed', events: [{ type: 'x', data: Buffer.from('{}') }] });
    await kill(child);
    await assertRecovered('killed client');
  });

  it('drops a client that neither reads nor answers keepalive pings (SIGSTOP), while appends keep coming', async () => {
    await eh.createStream({ stream: '/faults/stopped' });
    const child = await subscriberProcess(test.address, '/faults/stopped', 50);
    probe.reset();
    child.kill('SIGSTOP');
    try {
      // Enough data to fill the socket buffers of the stopped client: the server must not wait on it.
      const payload = Buffer.from(JSON.stringify({ text: 'z'.repeat(4000) }));
      for (let i = 0; i < 40; i++) {
        await Promise.all(Array.from({ length: 10 }, () => eh.append({ stream: '/faults/stopped', events: [{ type: 'big', data: payload }] })));
      }
      await assertRecovered('stopped client');
    } finally {
      await kill(child);
    }
  });

  it('serves a slow reader everything in order without slowing the others', async () => {
    await eh.createStream({ stream: '/faults/slow' });
    const client = clientFor(test.address);
    const call = client.subscribe({ stream: '/faults/slow' });
    const received: Entry[] = [];
    call.on('data', (message: { message?: { $case: string; value: unknown } }) => {
      if (message.message?.$case === 'entry') received.push(message.message.value as Entry);
      // Reads one message every 5 ms: far slower than the writers below.
      call.pause();
      setTimeout(() => call.resume(), 5);
    });
    call.on('error', () => undefined);
    const total = 600;
    // What grpc-js holds for the slow reader is what could grow (the hub's queue cannot).
    const buffers = watchWriteBuffers('/eventhorizon.v1.EventHorizon/Subscribe');
    try {
      for (let i = 0; i < total / 20; i++) {
        await Promise.all(Array.from({ length: 20 }, () => eh.append({ stream: '/faults/slow', events: [{ type: 'n', data: Buffer.from('{}') }] })));
      }
      await eventually(() => received.length === total + 1, 30_000, () => `the slow reader got ${received.length} of ${total + 1}`);
    } finally {
      buffers.stop();
    }
    // The service waits for 'drain' once write() says the buffer is full (16 messages).
    assert.ok(buffers.largestMessages <= 17, `the server buffered ${buffers.largestMessages} messages for the slow reader`);
    received.forEach((entry, i) => assert.equal(entry.version, BigInt(i)));
    call.cancel();
    client.close();
    await assertRecovered('slow reader');
  });

  it('keeps another subscriber prompt and returns to baseline heap and descriptors while 2 × 2000 subscriptions open and are cancelled at once', async () => {
    await eh.createStream({ stream: '/faults/churn' });
    const hub = test.server.hub;
    const heapBefore = await heapAfterGc();
    const worst = { opening: 0, cancelling: 0 };
    /** The probe's worst delay while `burst` runs, deliveries that outlast it included. */
    const measure = async (phase: keyof typeof worst, burst: () => Promise<void>): Promise<void> => {
      probe.reset();
      await burst();
      await probe.settle();
      const report = probe.report();
      assert.ok(report.delivered > 0, `the probe received its entries while 2000 subscriptions were ${phase}`);
      worst[phase] = Math.max(worst[phase], report.maxMs);
    };
    // The churning client is a process of its own, so that its work does not count as the server's.
    let child: ChildProcess | undefined;
    try {
      await measure('opening', async () => {
        child = await subscriberProcess(test.address, '/faults/churn', 2000);
      });
      assert.ok(child);
      const churning = child;
      for (let cycle = 0; cycle < 2; cycle++) {
        // 2000 cancels at once make the server close the connection (Node's HTTP/2 rapid-reset
        // protection): the second burst opens on a new one, a call caught in between is reopened
        // by the process, as a client would resume it (subscriber-process.ts).
        if (cycle > 0) {
          await measure('opening', async () => {
            churning.stdin?.write('open\n');
            await said(churning, 'ready', () => `the server's hub holds ${hub.subscriberCount()} subscriptions (the probe's included)`);
          });
        }
        assert.equal(hub.subscriberCount(), 2001);
        await measure('cancelling', async () => {
          await eh.append({ stream: '/faults/churn', events: [{ type: 'x', data: Buffer.from('{}') }] });
          churning.stdin?.write('cancel\n');
          await said(churning, 'cancelled');
          await eventually(() => hub.subscriberCount() === 1, 15_000, () => `${hub.subscriberCount() - 1} still subscribed`);
        });
      }
      console.log(`      (the probe waited up to ${worst.opening} ms while 2000 subscriptions opened at once, up to ${worst.cancelling} ms while they were cancelled)`);
      assert.ok(worst.opening < BURST_PROMPT_MS, `the probe waited up to ${worst.opening} ms while 2000 subscriptions opened`);
      assert.ok(worst.cancelling < BURST_PROMPT_MS, `the probe waited up to ${worst.cancelling} ms while 2000 subscriptions were cancelled`);
      // Its one connection stays open: the baseline counts it.
      baselineFds += 1;
      await assertRecovered('churn', BURST_PROMPT_MS);
    } finally {
      if (child) await kill(child);
    }
    const growth = (await heapAfterGc()) - heapBefore;
    // The probe's own entries grow the heap a little; 4000 leaked subscriptions would be far more.
    assert.ok(growth < 8 * 1024 * 1024, `heap grew by ${(growth / 1024 / 1024).toFixed(1)} MiB over 4000 subscriptions`);
  });

  it('resumes, with no gap or duplicate, the library subscriptions of a client whose connection is closed for cancelling over 1000 calls at once', async () => {
    // Node's HTTP/2 rapid-reset protection (nghttp2, CVE-2023-44487: 1000 resets, then 33 a
    // second) answers the 1001st RST_STREAM of a burst with GOAWAY(INTERNAL_ERROR), and the
    // client ends every call on that connection, the open ones with INTERNAL "... Session closed
    // with error code 2". Node 20 cannot raise the limit, and grpc-js's server does not pass
    // Node's later streamResetBurst/streamResetRate on. The client library resumes such calls.
    await eh.createStream({ stream: '/faults/reset' });
    const hub = test.server.hub;
    const kept = 20;
    const cancelled = 1500;
    // One connection of its own for the kept subscriptions and the cancelled calls.
    const library = connect(test.address, { reconnect: { initialMs: 50, maxMs: 200 }, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
    const stops = Array.from({ length: kept }, () => new AbortController());
    const delivered: bigint[][] = stops.map(() => []);
    const caughtUp = stops.map(() => 0);
    const reconnects: string[] = [];
    const subscriptions = stops.map(async (stop, i) => {
      const items = library.subscribe('/faults/reset', { signal: stop.signal, onReconnect: ({ error }) => reconnects.push(error?.message ?? 'ended') });
      for await (const item of items) {
        if (item.kind === 'entry') delivered[i]?.push(item.entry.version);
        else caughtUp[i] = (caughtUp[i] ?? 0) + 1;
      }
    });
    try {
      const calls = Array.from({ length: cancelled }, () => {
        const call = library.raw.subscribe({ stream: '/faults/reset' });
        call.on('error', () => undefined);
        return call;
      });
      await eventually(() => hub.subscriberCount() === 1 + kept + cancelled && caughtUp.every((n) => n === 1), 30_000, () => `the hub holds ${hub.subscriberCount()}`);
      await eh.append({ stream: '/faults/reset', events: [{ type: 'x', data: Buffer.from('{}') }] });
      probe.reset();
      for (const call of calls) call.cancel();
      await eventually(() => hub.subscriberCount() === 1 + kept && caughtUp.every((n) => n >= 2), 15_000, () => `the hub holds ${hub.subscriberCount()}; caught up again: ${caughtUp.filter((n) => n >= 2).length} of ${kept}`);
      assert.ok(reconnects.length >= kept, `the connection stayed open: ${reconnects.length} reconnections (did Node's rapid-reset limit change?)`);
      assert.ok(reconnects.every((why) => why.includes('Session closed with error code 2')), reconnects.join('; '));
      const last = (await eh.append({ stream: '/faults/reset', events: [{ type: 'x', data: Buffer.from('{}') }] })).cursor?.version ?? 0n;
      // Every entry once, in order, across the reconnection (the stream's creation is version 0).
      const expected = Array.from({ length: Number(last) + 1 }, (_, version) => BigInt(version));
      await eventually(() => delivered.every((versions) => versions.length >= expected.length), 10_000, () => `delivered: ${delivered.map((versions) => versions.length).join(',')}`);
      delivered.forEach((versions) => assert.deepEqual(versions, expected));
    } finally {
      for (const stop of stops) stop.abort();
      await Promise.all(subscriptions);
      library.close();
    }
    await assertRecovered('connection closed by the rapid-reset protection', BURST_PROMPT_MS);
  });
});
