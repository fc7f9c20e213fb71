import assert from 'node:assert/strict';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { AppendRequest, SubscribeRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { checkHealth } from '../../src/observability/health-client';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { eventually } from '../helpers/eventually';
import { loggedLines } from '../helpers/log-lines';
import { api, jsonEvent, rejection, startTestServer, tempDir, type TestServer } from '../helpers/server';

/** Reads the value of one series (name plus exact label set) from a Prometheus text page. */
function sample(page: string, series: string): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(server: TestServer): Promise<string> {
  const response = await fetch(`http://${server.server.metricsAddress}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

describe('metrics endpoint', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server.stop());

  it('counts RPCs by method and code, appends, events, payload bytes and store latency', async () => {
    const calls = api(server.client);
    await calls.createStream({ stream: '/metrics', events: [jsonEvent('opened', { n: 0 })] });
    const big = { text: 'x'.repeat(4000) };
    await calls.append({ stream: '/metrics', events: [jsonEvent('a', big), jsonEvent('b', big)] });
    await calls.append({ stream: '/metrics', events: [jsonEvent('c', { n: 3 })] });
    await calls.read({ stream: '/metrics' });
    await rejection(calls.read({ stream: '/missing' }), status.NOT_FOUND);

    const page = await scrape(server);
    const service = 'eventhorizon.v1.EventHorizon';
    assert.equal(sample(page, `eventhorizon_rpc_requests_total{method="${service}/Append",code="OK"}`), 2);
    assert.equal(sample(page, `eventhorizon_rpc_requests_total{method="${service}/Read",code="OK"}`), 1);
    assert.equal(sample(page, `eventhorizon_rpc_requests_total{method="${service}/Read",code="NOT_FOUND"}`), 1);
    assert.equal(sample(page, `eventhorizon_rpc_duration_seconds_count{method="${service}/Append",code="OK"}`), 2);
    assert.equal(sample(page, 'eventhorizon_appends_total'), 3);
    assert.equal(sample(page, 'eventhorizon_events_appended_total'), 4);
    const raw = sample(page, 'eventhorizon_payload_bytes_total{form="raw"}') ?? 0;
    const stored = sample(page, 'eventhorizon_payload_bytes_total{form="stored"}') ?? 0;
    assert.ok(raw > 8000, `raw bytes ${raw}`);
    assert.ok(stored < raw / 2, `repetitive data compresses: ${stored} of ${raw}`);
    assert.ok((sample(page, 'eventhorizon_store_operation_duration_seconds_count{operation="append",outcome="ok"}') ?? 0) >= 2);
    assert.ok((sample(page, 'eventhorizon_store_operation_duration_seconds_count{operation="read",outcome="error"}') ?? 0) >= 1);
    assert.equal(sample(page, 'eventhorizon_store_up'), 1);
    assert.match(page, /^eventhorizon_process_cpu_user_seconds_total /m);
  });

  it('shows live subscriptions and how far behind they are delivered', async () => {
    const calls = api(server.client);
    await calls.createStream({ stream: '/live' });
    const subscription = server.client.subscribe(SubscribeRequest.fromPartial({ stream: '/live' }));
    const received: string[] = [];
    const caughtUp = new Promise<void>((resolve) =>
      subscription.on('data', (message: { message?: { $case: string } }) => {
        received.push(message.message?.$case ?? '');
        if (message.message?.$case === 'caughtUp') resolve();
      }),
    );
    subscription.on('error', () => undefined);
    await caughtUp;
    assert.equal(sample(await scrape(server), 'eventhorizon_subscriptions_active'), 1);
    await calls.append({ stream: '/live', events: [jsonEvent('live', {})] });
    await eventually(() => received.filter((kind) => kind === 'entry').length === 2);
    subscription.cancel();
    let page = '';
    await eventually(async () => sample((page = await scrape(server)), 'eventhorizon_subscriptions_active') === 0);
    assert.ok((sample(page, 'eventhorizon_subscription_lag_seconds_count') ?? 0) >= 2, 'entry 0 and the live entry');
  });

  it('echoes the request id of a call, or gives it one', async () => {
    const metadata = new Metadata();
    metadata.set('x-request-id', 'trace-42');
    const headers = await new Promise<Metadata>((resolve, reject) => {
      const call = server.client.describeStream({ stream: '/' }, metadata, (error) => error && reject(error));
      call.on('metadata', resolve);
    });
    assert.deepEqual(headers.get('x-request-id'), ['trace-42']);
    const error = await rejection(api(server.client).describeStream({ stream: '/nope' }), status.NOT_FOUND);
    assert.equal(error.code, status.NOT_FOUND);
  });

  it('answers 404 off the metrics path', async () => {
    const response = await fetch(`http://${server.server.metricsAddress}/other`);
    assert.equal(response.status, 404);
  });
});

describe('health', () => {
  it('turns NOT_SERVING while the store does not answer, and back', async () => {
    let reachable = true;
    const dataDir = tempDir();
    const server = await startTestServer({ dataDir }, () => {
      const store = new SqliteStore({ dataDir });
      const ping = store.ping.bind(store);
      store.ping = async () => {
        if (!reachable) throw new Error('connection refused');
        return ping();
      };
      return store;
    });
    try {
      const insecure = credentials.createInsecure();
      assert.equal(await checkHealth(server.address, insecure), 'SERVING');
      reachable = false;
      assert.equal(await server.server.checkHealth(), false);
      assert.equal(await checkHealth(server.address, insecure), 'NOT_SERVING');
      assert.equal(await checkHealth(server.address, insecure, 'eventhorizon.v1.EventHorizon'), 'NOT_SERVING');
      assert.equal(sample(await scrape(server), 'eventhorizon_store_up'), 0);
      reachable = true;
      assert.equal(await server.server.checkHealth(), true);
      assert.equal(await checkHealth(server.address, insecure), 'SERVING');
    } finally {
      await server.stop();
    }
  });

  it('checks periodically', async () => {
    let reachable = true;
    const dataDir = tempDir();
    const server = await startTestServer({ dataDir, healthCheckIntervalMs: 20 }, () => {
      const store = new SqliteStore({ dataDir });
      store.ping = async () => reachable;
      return store;
    });
    try {
      reachable = false;
      // Nobody calls checkHealth here: only the periodic check can flip the status.
      await eventually(async () => (await checkHealth(server.address, credentials.createInsecure())) === 'NOT_SERVING');
    } finally {
      await server.stop();
    }
  });
});

describe('logs of a call', () => {
  it('of a subscription: its request id is echoed in its headers, or in the status alone, and its end is logged and counted', async () => {
    const { logger, lines } = loggedLines('debug');
    const server = await startTestServer({}, undefined, undefined, logger);
    try {
      await api(server.client).createStream({ stream: '/watched' });
      const metadata = new Metadata();
      metadata.set('x-request-id', 'trace-sub');
      const subscription = server.client.subscribe(SubscribeRequest.fromPartial({ stream: '/watched' }), metadata);
      subscription.on('error', () => undefined);
      const headers = await new Promise<Metadata>((resolve) => subscription.on('metadata', resolve));
      assert.deepEqual(headers.get('x-request-id'), ['trace-sub']);
      await eventually(async () => sample(await scrape(server), 'eventhorizon_subscriptions_active') === 1);
      subscription.cancel();
      const method = 'eventhorizon.v1.EventHorizon/Subscribe';
      await eventually(
        () => lines.some((line) => line.msg === 'call finished' && line.requestId === 'trace-sub'),
        5000,
        () => `no "call finished" line for trace-sub in ${JSON.stringify(lines)}`,
      );
      const finished = lines.find((line) => line.msg === 'call finished' && line.requestId === 'trace-sub');
      assert.equal(finished?.method, method);
      assert.equal(finished.code, 'CANCELLED');
      const page = await scrape(server);
      assert.equal(sample(page, 'eventhorizon_subscriptions_active'), 0);
      assert.equal(sample(page, `eventhorizon_rpc_requests_total{method="${method}",code="CANCELLED"}`), 1);

      // Refused before any message: the status travels without headers, and the id with it.
      const refusedMetadata = new Metadata();
      refusedMetadata.set('x-request-id', 'trace-refused');
      const refused = server.client.subscribe(SubscribeRequest.fromPartial({ stream: 'no-slash' }), refusedMetadata);
      refused.on('data', () => undefined);
      const error = await new Promise<{ code?: number; metadata?: Metadata }>((resolve) => refused.on('error', resolve));
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.deepEqual(error.metadata?.get('x-request-id'), ['trace-refused']);
      await eventually(() => lines.some((line) => line.requestId === 'trace-refused' && line.code === 'INVALID_ARGUMENT'));
    } finally {
      await server.stop();
    }
  });

  it('name its request id and method, in the unexpected error and in the end of the call', async () => {
    const { logger, lines } = loggedLines('debug');
    const dataDir = tempDir();
    const server = await startTestServer(
      { dataDir },
      () => {
        const store = new SqliteStore({ dataDir });
        // Not a domain error: the handler logs it as unexpected and answers INTERNAL.
        store.append = () => Promise.reject(new Error('disk on fire'));
        return store;
      },
      undefined,
      logger,
    );
    try {
      await api(server.client).createStream({ stream: '/logged' });
      const metadata = new Metadata();
      metadata.set('x-request-id', 'trace-7');
      await new Promise<void>((resolve) => {
        server.client.append(AppendRequest.fromPartial({ stream: '/logged', events: [jsonEvent('a', {})] }), metadata, (error) => {
          assert.equal(error?.code, status.INTERNAL);
          resolve();
        });
      });
      const method = 'eventhorizon.v1.EventHorizon/Append';
      await eventually(
        () => lines.some((line) => line.msg === 'call failed' && line.requestId === 'trace-7'),
        5000,
        () => `no "call failed" line for trace-7 in ${JSON.stringify(lines)}`,
      );
      const unexpected = lines.find((line) => line.msg === 'unexpected error');
      assert.equal(unexpected?.requestId, 'trace-7');
      assert.equal(unexpected.method, 'Append', "the handler's own method field wins, as with the logger's mixin before");
      const failed = lines.find((line) => line.msg === 'call failed');
      assert.equal(failed?.method, method);
      assert.equal(failed.code, 'INTERNAL');
    } finally {
      await server.stop();
    }
  });
});
