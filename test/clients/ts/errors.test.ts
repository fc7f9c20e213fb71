import assert from 'node:assert/strict';
import {
  AlreadyExistsError,
  ConflictError,
  connect,
  decodeStatusDetails,
  EventHorizonError,
  FailedPreconditionError,
  InvalidArgumentError,
  jsonEvent,
  NotFoundError,
  type EventHorizon,
} from '../../../clients/ts/src';
import { failure, startTestServer, type TestServer } from '../../helpers/server';

describe('TypeScript client: typed errors from status details', () => {
  let server: TestServer;
  let client: EventHorizon;

  before(async () => {
    server = await startTestServer();
    client = connect(server.address);
    await client.createStream({ stream: '/errors' });
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  it('NotFoundError names the missing stream', async () => {
    const error = await failure(client.read({ stream: '/nowhere' }));
    assert.ok(error instanceof NotFoundError);
    assert.ok(error instanceof EventHorizonError);
    assert.equal(error.reason, 'STREAM_NOT_FOUND');
    assert.equal(error.stream, '/nowhere');
  });

  it('NotFoundError for a missing parent says PARENT_NOT_FOUND', async () => {
    const error = await failure(client.createStream({ stream: '/missing/child' }));
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.reason, 'PARENT_NOT_FOUND');
    assert.equal(error.metadata['parent'], '/missing');
  });

  it('AlreadyExistsError for a second CreateStream', async () => {
    const error = await failure(client.createStream({ stream: '/errors' }));
    assert.ok(error instanceof AlreadyExistsError);
    assert.equal(error.reason, 'STREAM_ALREADY_EXISTS');
  });

  it('ConflictError carries the actual and expected versions', async () => {
    const error = await failure(
      client.append({ stream: '/errors', events: [jsonEvent('x', {})], expectedVersion: 7n }),
    );
    assert.ok(error instanceof ConflictError);
    assert.equal(error.reason, 'WRONG_EXPECTED_VERSION');
    assert.equal(error.actualVersion, 0n);
    assert.equal(error.expectedVersion, 7n);
  });

  it('InvalidArgumentError lists the field violations', async () => {
    const error = await failure(client.append({ stream: 'no-slash', events: [{ type: '' }] }));
    assert.ok(error instanceof InvalidArgumentError);
    const fields = error.violations.map((violation) => violation.field);
    assert.ok(fields.includes('stream'), `violations: ${JSON.stringify(error.violations)}`);
    assert.ok(fields.some((field) => field.startsWith('events[0]')), `violations: ${JSON.stringify(error.violations)}`);
    for (const violation of error.violations) assert.ok(violation.description.length > 0);
  });

  it('FailedPreconditionError for a snapshot ahead of the stream', async () => {
    const error = await failure(
      client.putSnapshot({ stream: '/errors', perspective: 'p', version: 99n, data: Buffer.from('{}') }),
    );
    assert.ok(error instanceof FailedPreconditionError);
    assert.equal(error.reason, 'SNAPSHOT_AHEAD_OF_STREAM');
  });

  it('FailedPreconditionError names ENCRYPTION_DISABLED when the server has no keyring', async () => {
    const error = await failure(client.rotateStreamKey({ stream: '/errors' }));
    assert.ok(error instanceof FailedPreconditionError, String(error));
    assert.equal(error.reason, 'ENCRYPTION_DISABLED');
  });

  it('a subscription to a missing stream throws NotFoundError instead of retrying', async () => {
    const error = await failure(
      (async () => {
        for await (const item of client.subscribe('/nowhere')) void item;
      })(),
    );
    assert.ok(error instanceof NotFoundError);
  });

  it('decodeStatusDetails reads ErrorInfo from a raw grpc-js error', async () => {
    const error = await failure(
      new Promise((resolve, reject) =>
        client.raw.read({ stream: '/nowhere', limit: 0, direction: 0 }, (e, r) => (e ? reject(e) : resolve(r))),
      ),
    );
    const details = decodeStatusDetails(error);
    assert.equal(details?.reason, 'STREAM_NOT_FOUND');
    assert.equal(details?.domain, 'eventhorizon.v1');
    assert.equal(decodeStatusDetails(new Error('plain')), undefined);
  });

  it('an aborted call fails with a typed CancelledError', async () => {
    const abort = new AbortController();
    abort.abort();
    const error = await failure(client.describeStream({ stream: '/errors' }, { signal: abort.signal }));
    assert.ok(error instanceof EventHorizonError);
    assert.equal(error.name, 'CancelledError');
  });
});
