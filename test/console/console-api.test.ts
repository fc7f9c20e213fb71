import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { status } from '@grpc/grpc-js';
import { Direction } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { codeName } from '../../src/observability/interceptor';
import { startAuthTestServer, type AuthTestServer, type GrantedKey } from '../helpers/auth-server';
import { consoleCall, consoleTail, SERVICE_PATH } from '../helpers/console-client';
import { makeTestPki, type TestPki } from '../helpers/certificates';
import { detailsOf, jsonEvent, startTestServer, tempDir, type TestServer } from '../helpers/server';

/**
 * The web console's JSON API over HTTP against a real server (docs/operations.md, "Web console"):
 * the same answers and refusals as the gRPC API, bad input named by field, tails checked again
 * when keys change, and the page's assets served with caching headers.
 */
describe('web console API', function () {
  this.timeout(30_000);

  describe('with auth required', () => {
    let eh: AuthTestServer;
    let url: string;
    let admin: GrantedKey;
    let shopReader: GrantedKey;

    /** Everything the server logged, at every level. */
    let logged = '';

    before(async () => {
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged += chunk.toString('utf8');
          done();
        },
      });
      eh = await startAuthTestServer({ consoleListen: '127.0.0.1:0' }, pino({ level: 'trace' }, sink));
      url = eh.test.server.consoleUrl ?? assert.fail('no console');
      admin = await eh.grant('admin', { allow: ['*=/**'] });
      shopReader = await eh.grant('shop-reader', { allow: ['stream:read=/shop/**', 'snapshot:read=/shop/**'] });
      await eh.refresh();
      const api = eh.as(admin);
      await api.createStream({ stream: '/shop/orders', createParents: true });
      await api.createStream({ stream: '/private', createParents: true });
      await api.append({ stream: '/shop/orders', events: [jsonEvent('order.placed', { id: 1 }, { metadata: { user: 'ann' } })] });
    });
    after(() => eh.stop());

    it('refuses a call without a key with 401 and the gRPC API\'s message', async () => {
      const answer = await consoleCall(url, 'DescribeStream', { stream: '/shop' });
      assert.equal(answer.status, 401);
      assert.equal(answer.body.code, 'UNAUTHENTICATED');
      assert.match(String(answer.body.message), /missing API key/);
      const unknown = await consoleCall(url, 'DescribeStream', { stream: '/shop' }, { key: 'ehk_000000000000_nope' });
      assert.equal(unknown.status, 401);
      assert.match(String(unknown.body.message), /unknown or revoked API key/);
      const overview = await consoleCall(url, '', {}, { path: 'api/v1/console/Overview' });
      assert.equal(overview.status, 401, 'the overview needs a key too');
    });

    it('never logs a key, accepted or refused; logs refusals with the principal', async () => {
      const refused = await consoleCall(url, 'Read', { stream: '/private' }, { key: shopReader.key });
      assert.equal(refused.status, 403);
      const accepted = await consoleCall(url, 'Read', { stream: '/shop/orders' }, { key: shopReader.key });
      assert.equal(accepted.status, 200);
      const unknownKey = 'ehk_123456789abc_not-a-real-secret-but-a-secret-all-the-same';
      assert.equal((await consoleCall(url, 'Read', { stream: '/shop/orders' }, { key: unknownKey })).status, 401);
      assert.match(logged, /"principal":"shop-reader".*"reason":"permission denied: stream:read on \/private".*"msg":"call refused"/);
      assert.match(logged, /"msg":"console call finished"/);
      for (const secret of [shopReader.key, admin.key, unknownKey]) assert.ok(!logged.includes(secret), 'a key in the log');
      assert.ok(!/bearer\s+ehk_/i.test(logged), 'no authorization header in the log');
    });

    it('answers each call as the gRPC API answers the same key: the same policy results', async () => {
      const cases: Array<{ method: string; request: Record<string, unknown>; grpc: () => Promise<unknown> }> = [
        { method: 'DescribeStream', request: { stream: '/shop/orders' }, grpc: () => eh.as(shopReader).describeStream({ stream: '/shop/orders' }) },
        { method: 'DescribeStream', request: { stream: '/private' }, grpc: () => eh.as(shopReader).describeStream({ stream: '/private' }) },
        { method: 'ListChildren', request: { stream: '/' }, grpc: () => eh.as(shopReader).listChildren({ stream: '/' }) },
        { method: 'ListChildren', request: { stream: '/shop' }, grpc: () => eh.as(shopReader).listChildren({ stream: '/shop' }) },
        {
          method: 'Read',
          request: { stream: '/shop/orders', direction: 'DIRECTION_BACKWARD' },
          grpc: () => eh.as(shopReader).read({ stream: '/shop/orders', direction: Direction.DIRECTION_BACKWARD }),
        },
        { method: 'Read', request: { stream: '/private' }, grpc: () => eh.as(shopReader).read({ stream: '/private' }) },
        { method: 'Read', request: { stream: '/shop/missing' }, grpc: () => eh.as(shopReader).read({ stream: '/shop/missing' }) },
        { method: 'GetSnapshot', request: { stream: '/shop/orders', perspective: 'p' }, grpc: () => eh.as(shopReader).getSnapshot({ stream: '/shop/orders', perspective: 'p' }) },
      ];
      for (const { method, request, grpc } of cases) {
        const answer = await consoleCall(url, method, request, { key: shopReader.key });
        const grpcCode = await grpc().then(
          () => status.OK,
          (error: unknown) => detailsOf(error).code,
        );
        const consoleCode = answer.status === 200 ? 'OK' : String(answer.body.code);
        assert.equal(consoleCode, codeName(grpcCode), `${method} ${JSON.stringify(request)}: console ${answer.status} ${JSON.stringify(answer.body)}`);
      }
      const refused = await consoleCall(url, 'Read', { stream: '/private' }, { key: shopReader.key });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.message, 'permission denied: stream:read on /private');
      assert.deepEqual(refused.body.metadata, { action: 'stream:read', resource: '/private' });
    });

    it('answers in protobuf\'s JSON mapping: 64-bit numbers as strings, bytes as base64', async () => {
      const answer = await consoleCall(url, 'Read', { stream: '/shop/orders', fromVersion: '1' }, { key: shopReader.key });
      assert.equal(answer.status, 200);
      const entries = answer.body.entries as Array<{ version: string; events: Array<{ type: string; data: string; metadata: Record<string, string> }> }>;
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.version, '1');
      assert.equal(entries[0]?.events[0]?.type, 'order.placed');
      assert.deepEqual(JSON.parse(Buffer.from(entries[0]?.events[0]?.data ?? '', 'base64').toString('utf8')), { id: 1 });
      assert.deepEqual(entries[0]?.events[0]?.metadata, { user: 'ann' });
      assert.equal(answer.body.headVersion, '1');
    });

    it('answers bad input with 400, naming the field', async () => {
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['Read', { stream: '/shop/orders', fromVersion: 'abc' }, 'from_version'],
        ['Read', { stream: '/shop/orders', limit: 5000 }, 'limit'],
        ['Read', { stream: '/shop/orders', limit: -1 }, 'limit'],
        // (A relative path is refused by the policy first, as by the gRPC API: no glob matches it.)
        ['Read', { stream: '/shop/bad name' }, 'stream'],
        ['Read', { stream: '/shop/orders', colour: 'blue' }, 'colour'],
        ['ListChildren', { stream: '/shop', pageToken: 'not-a-token' }, 'page_token'],
        ['SubscribeFeed', { selector: { stream: '/shop', eventTypes: [3] } }, 'selector.event_types'],
      ];
      for (const [method, request, field] of cases) {
        const answer = method === 'SubscribeFeed' ? await consoleTail(url, 'SubscribeFeed', request, admin.key) : undefined;
        const { status: httpStatus, body } = answer
          ? { status: answer.status, body: (await answer.next()) ?? {} }
          : await consoleCall(url, method, request, { key: admin.key });
        assert.equal(httpStatus, 400, `${method} ${JSON.stringify(request)}: ${JSON.stringify(body)}`);
        assert.equal(body.code, 'INVALID_ARGUMENT');
        const violations = body.violations as Array<{ field: string }>;
        assert.deepEqual(
          violations.map((v) => v.field),
          [field],
          `${method} ${JSON.stringify(request)}: ${JSON.stringify(body)}`,
        );
      }
      const notJson = await consoleCall(url, 'Read', '{"stream":', { key: admin.key });
      assert.equal(notJson.status, 400);
      assert.deepEqual((notJson.body.violations as Array<{ field: string }>).map((v) => v.field), ['request']);
    });

    it('serves only the read-only methods, as POSTs of JSON from its own origin', async () => {
      const append = await consoleCall(url, 'Append', { stream: '/shop/orders', events: [] }, { key: admin.key });
      assert.equal(append.status, 404, 'no writing method');
      const form = await fetch(`${url}${SERVICE_PATH}Read`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
      assert.equal(form.status, 415, 'a form post (no CORS preflight) is refused');
      const get = await fetch(`${url}${SERVICE_PATH}Read`);
      assert.equal(get.status, 405);
      const foreign = await consoleCall(url, 'Read', { stream: '/shop/orders' }, { key: admin.key, headers: { origin: 'https://evil.example' } });
      assert.equal(foreign.status, 403);
    });

    it('ends a tail whose key is revoked, and one whose policy stops allowing it, like Subscribe', async () => {
      const revoked = await eh.grant('tail-revoked', { allow: ['stream:read=/shop/**'] });
      const changing = await eh.grant('tail-changing', { allow: ['stream:read=/shop/**'] });
      const steady = await eh.grant('tail-steady', { allow: ['stream:read=/shop/**'] });
      await eh.refresh();
      const tails = await Promise.all(
        [revoked, changing, steady].map((key) => consoleTail(url, 'Subscribe', { stream: '/shop/orders' }, key.key)),
      );
      for (const tail of tails) {
        assert.equal(tail.status, 200);
        await tail.nextWith('caughtUp');
      }
      await eh.revoke(revoked);
      await eh.setPolicy('tail-changing', { allow: ['stream:read=/elsewhere/**'] });
      await eh.refresh();
      const [revokedTail, changingTail, steadyTail] = tails;
      assert.deepEqual((await revokedTail?.nextWith('error'))?.error, { code: 'UNAUTHENTICATED', message: 'unknown or revoked API key', reason: 'UNAUTHENTICATED' });
      const denied = (await changingTail?.nextWith('error'))?.error as { code: string; message: string };
      assert.equal(denied.code, 'PERMISSION_DENIED');
      assert.equal(denied.message, 'permission denied: stream:read on /shop/orders');
      assert.equal(await revokedTail?.next(), undefined, 'the response ended');
      // The steady key's tail goes on and sees the next append.
      await eh.as(admin).append({ stream: '/shop/orders', events: [jsonEvent('order.paid', { id: 1 })] });
      const entry = (await steadyTail?.nextWith('entry'))?.entry as { version: string };
      assert.equal(entry.version, '2');
      steadyTail?.close();
    });

    it('delivers on a feed tail only the streams the key may read', async () => {
      const api = eh.as(admin);
      await api.createStream({ stream: '/shop/secret', createParents: true });
      const key = await eh.grant('no-secret', { allow: ['stream:read=/shop/**'], deny: ['stream:read=/shop/secret'] });
      await eh.refresh();
      const tail = await consoleTail(url, 'SubscribeFeed', { selector: { stream: '/shop' }, fromNow: true }, key.key);
      assert.equal(tail.status, 200);
      await tail.nextWith('caughtUp');
      await api.append({ stream: '/shop/secret', events: [jsonEvent('secret.kept', {})] });
      await api.append({ stream: '/shop/orders', events: [jsonEvent('order.shipped', { id: 1 })] });
      const entry = (await tail.nextWith('entry')).entry as { stream: string; events: Array<{ type: string }> };
      assert.equal(entry.stream, '/shop/orders', 'the secret stream\'s entry was not delivered');
      assert.equal(entry.events[0]?.type, 'order.shipped');
      tail.close();
    });
  });

  describe('without auth', () => {
    let server: TestServer;
    let url: string;

    before(async () => {
      server = await startTestServer({ consoleListen: '127.0.0.1:0' });
      url = server.server.consoleUrl ?? assert.fail('no console');
    });
    after(() => server.stop());

    it('serves the page with a strict CSP, revalidated by ETag, and assets cached for good', async () => {
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
      assert.equal(page.headers.get('cache-control'), 'no-cache');
      const etag = page.headers.get('etag') ?? assert.fail('no ETag');
      const html = await page.text();
      const script = /src="(\/assets\/[0-9a-f]+\/main\.js)"/.exec(html)?.[1] ?? assert.fail(`no script in ${html}`);
      const again = await fetch(url, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      const asset = await fetch(new URL(script, url), { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(asset.status, 200);
      assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(asset.headers.get('content-type') ?? '', /^text\/javascript/);
      assert.match(await asset.text(), /import .* from '\.\/api\.js'/);
      const stale = await fetch(new URL('/assets/0000000000000000/main.js', url));
      assert.equal(stale.status, 404, 'another build\'s assets are not served as this one\'s');
    });

    it('answers only requests addressed to a loopback name (no DNS rebinding)', async () => {
      const { port } = new URL(url);
      const rebound = await new Promise<number>((resolve, reject) => {
        // fetch does not let a Host header be set: node:http does.
        void import('node:http').then((http) => {
          const request = http.request({ host: '127.0.0.1', port, path: `/${SERVICE_PATH}ListChildren`, method: 'POST', headers: { host: `attacker.example:${port}`, 'content-type': 'application/json' } }, (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          });
          request.on('error', reject);
          request.end('{"stream":"/"}');
        });
      });
      assert.equal(rebound, 403);
      const local = await consoleCall(url, 'ListChildren', { stream: '/' });
      assert.equal(local.status, 200);
    });

    it('shows the overview: health, store, version and counters', async () => {
      const answer = await consoleCall(url, '', {}, { path: 'api/v1/console/Overview' });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.health, 'SERVING');
      assert.equal(answer.body.store, 'sqlite');
      assert.match(String(answer.body.version), /^\d+\.\d+\.\d+/);
      assert.equal(typeof (answer.body.counters as Record<string, unknown>).appends, 'number');
    });

    it('ends its tails with UNAVAILABLE when the server stops', async () => {
      const other = await startTestServer({ consoleListen: '127.0.0.1:0' });
      const otherUrl = other.server.consoleUrl ?? assert.fail('no console');
      const tail = await consoleTail(otherUrl, 'Subscribe', { stream: '/' });
      await tail.nextWith('caughtUp');
      const stopped = other.stop();
      const error = (await tail.nextWith('error')).error as { code: string };
      assert.equal(error.code, 'UNAVAILABLE');
      await stopped;
    });
  });

  describe('transport and address', () => {
    let pki: TestPki;
    let pkiDir: string;

    before(() => {
      pkiDir = tempDir('eh-console-pki-');
      pki = makeTestPki(pkiDir);
    });
    after(() => fs.rmSync(pkiDir, { recursive: true, force: true }));

    it('serves HTTPS with the server\'s certificate, and requires a client certificate under mutual TLS', async () => {
      const tlsServer = await startTestServer({ consoleListen: '127.0.0.1:0', tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
      try {
        const consoleUrl = tlsServer.server.consoleUrl ?? assert.fail('no console');
        assert.match(consoleUrl, /^https:\/\//);
        assert.equal((await httpsGet(consoleUrl, { ca: fs.readFileSync(pki.caCert) })).status, 200);
        await assert.rejects(fetch(consoleUrl.replace('https:', 'http:')), 'no plaintext on the console\'s port');
      } finally {
        await tlsServer.stop();
      }
      const mtlsServer = await startTestServer({
        consoleListen: '127.0.0.1:0',
        tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert },
      });
      try {
        const consoleUrl = mtlsServer.server.consoleUrl ?? assert.fail('no console');
        const ca = fs.readFileSync(pki.caCert);
        await assert.rejects(httpsGet(consoleUrl, { ca }), 'refused without a client certificate');
        const withCertificate = await httpsGet(consoleUrl, { ca, cert: fs.readFileSync(pki.clientCert), key: fs.readFileSync(pki.clientKey) });
        assert.equal(withCertificate.status, 200);
      } finally {
        await mtlsServer.stop();
      }
    });

    it('starts without its development address when that port is taken, and fails on an address that was asked for', async () => {
      const squatter = net.createServer();
      await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
      const taken = `127.0.0.1:${(squatter.address() as net.AddressInfo).port}`;
      try {
        const optional = await startTestServer({ consoleListen: taken, consoleOptional: true });
        assert.equal(optional.server.consoleUrl, undefined, 'served without a console');
        await optional.stop();
        await assert.rejects(startTestServer({ consoleListen: taken, consoleOptional: false }), /EADDRINUSE/);
      } finally {
        squatter.close();
      }
    });
  });
});

/** A GET over HTTPS with the given trust and client certificate. */
function httpsGet(url: string, options: https.RequestOptions): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, options, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0 });
    });
    request.on('error', reject);
  });
}
