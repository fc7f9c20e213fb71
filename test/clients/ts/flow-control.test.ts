import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect, DEFAULT_FLOW_CONTROL_WINDOW } from '../../../clients/ts/src';

/**
 * What the client's connection tells a server of its flow-control windows: a plain HTTP/2 server
 * reads the SETTINGS the client opens with, and the connection window it grants beyond the 64 KiB
 * HTTP/2 starts with (its first WINDOW_UPDATE of the connection, stream 0).
 */
async function windowsSeenByAServer(channelOptions?: Record<string, number>): Promise<{ streamWindow: number; connectionWindow: number }> {
  const server = http2.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const seen = new Promise<{ streamWindow: number; connectionWindow: number }>((resolve) => {
    server.on('session', (session) => {
      session.once('remoteSettings', (settings: http2.Settings) => {
        // Node reports the peer's connection window as the bytes it may still send.
        setTimeout(() => resolve({ streamWindow: settings.initialWindowSize ?? 65_535, connectionWindow: session.state.remoteWindowSize ?? 0 }), 100);
      });
    });
  });
  const client = connect(`127.0.0.1:${(server.address() as AddressInfo).port}`, channelOptions ? { channelOptions } : {});
  // Any call makes the connection; it fails, the server being no gRPC server.
  const call = client.describeStream({ stream: '/' }, { deadlineMs: 300 }).catch(() => undefined);
  try {
    return await seen;
  } finally {
    client.close();
    await call;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('TypeScript client: HTTP/2 flow-control window', () => {
  it('opens its connections with a 1 MiB window per stream and per connection, not HTTP/2\'s 64 KiB', async () => {
    assert.equal(DEFAULT_FLOW_CONTROL_WINDOW, 1024 * 1024);
    const { streamWindow, connectionWindow } = await windowsSeenByAServer();
    assert.equal(streamWindow, DEFAULT_FLOW_CONTROL_WINDOW);
    assert.equal(connectionWindow, DEFAULT_FLOW_CONTROL_WINDOW);
  });

  it('takes another window from channelOptions', async () => {
    const { streamWindow } = await windowsSeenByAServer({ 'grpc-node.flow_control_window': 256 * 1024 });
    assert.equal(streamWindow, 256 * 1024);
  });
});
