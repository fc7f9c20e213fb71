import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import { connect } from '../../../clients/ts/src';
import {
  EventHorizonService,
  type DescribeStreamRequest,
  type DescribeStreamResponse,
  type SubscribeRequest,
  type SubscribeResponse,
} from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { tempDir } from '../../helpers/server';

/**
 * A stand-in server answering DescribeStream with the caller's `authorization` header and, under
 * mutual TLS, the client certificate's subject, so that tests can see what the client sent.
 */
async function startEchoServer(credentials: ServerCredentials): Promise<{ address: string; stop(): void }> {
  const server = new Server();
  server.addService(EventHorizonService, {
    describeStream(
      call: ServerUnaryCall<DescribeStreamRequest, DescribeStreamResponse>,
      callback: sendUnaryData<DescribeStreamResponse>,
    ) {
      const authorization = call.metadata.get('authorization')[0];
      callback(null, {
        stream: typeof authorization === 'string' ? authorization : '',
        headVersion: 0n,
        childCount: 0n,
        bytesStored: 0n,
        snapshotPerspectives: [String(call.getAuthContext().sslPeerCertificate?.subject.CN ?? '')],
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** A CA, a server certificate for localhost and a client certificate, made with openssl. */
function makeCertificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', Buffer> {
  const script = `
    set -e
    cd "$1"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 1 -out ca.pem
    for who in server client; do
      key $who.key
      openssl req -new -key $who.key -subj /CN=$who -out $who.csr
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > $who.ext
      openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile $who.ext -out $who.pem 2>/dev/null
    done`;
  execFileSync('bash', ['-c', script, 'certs', dir], { stdio: 'pipe' });
  const read = (name: string) => fs.readFileSync(path.join(dir, name));
  return {
    ca: read('ca.pem'),
    serverCert: read('server.pem'),
    serverKey: read('server.key'),
    clientCert: read('client.pem'),
    clientKey: read('client.key'),
  };
}

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('TypeScript client: connect options', () => {
  it('refuses a token on a plaintext connection unless allowed', () => {
    assert.throws(() => connect('127.0.0.1:1', { token: 'secret' }), /a token needs TLS/);
  });

  it('sends a bearer token, fixed or fetched per call, on an allowed plaintext connection', async () => {
    const echo = await startEchoServer(ServerCredentials.createInsecure());
    let fetched = 0;
    const fixed = connect(echo.address, { token: 'fixed-token', allowInsecureToken: true });
    const rotating = connect(echo.address, {
      token: async () => `rotating-${(fetched += 1)}`,
      allowInsecureToken: true,
    });
    try {
      assert.equal((await fixed.describeStream({ stream: '/' })).stream, 'Bearer fixed-token');
      assert.equal((await rotating.describeStream({ stream: '/' })).stream, 'Bearer rotating-1');
      assert.equal((await rotating.describeStream({ stream: '/' })).stream, 'Bearer rotating-2');
    } finally {
      fixed.close();
      rotating.close();
      echo.stop();
    }
  });

  it('connects with TLS to a private CA, presents a client certificate, and sends the token', async function () {
    if (!hasOpenssl()) {
      // openssl comes with Debian's base system; without it this one test cannot make certificates.
      if (process.env['CI'] === 'true') throw new Error('openssl is missing');
      console.warn('    SKIPPED: openssl is not installed, so no test certificates can be made');
      this.skip();
    }
    const dir = tempDir('eh-tls-');
    try {
      const certs = makeCertificates(dir);
      const echo = await startEchoServer(
        ServerCredentials.createSsl(certs.ca, [{ cert_chain: certs.serverCert, private_key: certs.serverKey }], true),
      );
      const client = connect(echo.address.replace('127.0.0.1', 'localhost'), {
        tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
        token: 'tls-token',
      });
      try {
        const response = await client.describeStream({ stream: '/' });
        assert.equal(response.stream, 'Bearer tls-token');
        assert.deepEqual(response.snapshotPerspectives, ['client']);
      } finally {
        client.close();
        echo.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a call past its deadline with DeadlineExceededError', async () => {
    const server = new Server();
    // A server that never answers DescribeStream.
    server.addService(EventHorizonService, { describeStream: () => undefined });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    const client = connect(`127.0.0.1:${port}`, { deadlineMs: 200 });
    try {
      await assert.rejects(client.describeStream({ stream: '/' }), { name: 'DeadlineExceededError' });
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe('TypeScript client: subscription idle timeout', () => {
  it('reconnects from the next version when the server goes silent without closing', async () => {
    const requests: Array<bigint | undefined> = [];
    const server = new Server();
    server.addService(EventHorizonService, {
      // First call: entry 0, caught up, then silence (a half-open connection, as seen from here).
      // Later calls: the next entry and caught up.
      subscribe(call: ServerWritableStream<SubscribeRequest, SubscribeResponse>) {
        requests.push(call.request.fromVersion);
        const version = call.request.fromVersion ?? 0n;
        call.write({ message: { $case: 'entry', value: { version, events: [] } } });
        call.write({ message: { $case: 'caughtUp', value: { version } } });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    const client = connect(`127.0.0.1:${port}`);
    const versions: bigint[] = [];
    try {
      for await (const item of client.subscribe('/quiet', { idleTimeoutMs: 200, backoff: { initialMs: 10, maxMs: 20 } })) {
        if (item.kind === 'entry') versions.push(item.entry.version);
        if (versions.length === 3) break;
      }
      assert.deepEqual(versions, [0n, 1n, 2n]);
      assert.deepEqual(requests, [0n, 1n, 2n]);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
