import assert from 'node:assert/strict';
import fs from 'node:fs';
import { credentials } from '@grpc/grpc-js';
import { checkHealth } from '../../src/observability/health-client';
import { clientCredentials } from '../../src/tls/credentials';
import { makeTestPki, type TestPki } from '../helpers/certificates';
import { runCli } from '../helpers/cli';
import { startTestServer, tempDir, type TestServer } from '../helpers/server';

/** The status a health check ends with, or the gRPC code it fails with. */
async function outcome(address: string, creds: Parameters<typeof checkHealth>[1]): Promise<string> {
  try {
    return await checkHealth(address, creds, '', 3000);
  } catch (error) {
    return `failed: ${(error as { code?: number }).code}`;
  }
}

describe('TLS', function () {
  this.timeout(60_000);
  let pkiDir: string;
  let pki: TestPki;
  before(() => {
    pkiDir = tempDir('eh-pki-');
    pki = makeTestPki(pkiDir);
  });
  after(() => fs.rmSync(pkiDir, { recursive: true, force: true }));

  describe('server certificate', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
    });
    after(async () => server.stop());

    it('completes the handshake with a client that trusts the CA', async () => {
      assert.equal(await outcome(server.address, clientCredentials({ caFile: pki.caCert })), 'SERVING');
    });

    it('fails the handshake with a client that trusts another CA', async () => {
      assert.match(await outcome(server.address, clientCredentials({ caFile: pki.otherCaCert })), /^failed/);
    });

    it('does not talk plaintext', async () => {
      assert.match(await outcome(server.address, credentials.createInsecure()), /^failed/);
    });

    it('is reachable by the CLI with --tls-ca', async () => {
      const result = await runCli(['health', '--address', server.address, '--tls-ca', pki.caCert]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), 'SERVING');
    });
  });

  describe('mutual TLS', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert },
      });
    });
    after(async () => server.stop());

    it('accepts a client certificate signed by the client CA', async () => {
      const creds = clientCredentials({ caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey });
      assert.equal(await outcome(server.address, creds), 'SERVING');
    });

    it('refuses a client without a certificate', async () => {
      assert.match(await outcome(server.address, clientCredentials({ caFile: pki.caCert })), /^failed/);
    });

    it('refuses a client whose certificate another CA signed', async () => {
      // The other CA's own self-signed certificate: a well-formed certificate the client CA never signed.
      const creds = clientCredentials({
        caFile: pki.caCert,
        certFile: pki.otherCaCert,
        keyFile: pki.otherCaCert.replace(/\.crt$/, '.key'),
      });
      assert.match(await outcome(server.address, creds), /^failed/);
    });
  });
});
