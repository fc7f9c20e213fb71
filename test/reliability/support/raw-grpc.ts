import http2 from 'node:http2';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** What a call with hand-made bytes came to: a gRPC status code and its message. */
export interface RawOutcome {
  code: number;
  details: string;
}

/**
 * Sends `message` as the serialized request of `method` (well framed by grpc-js, but any bytes
 * inside): for requests no generated client would build.
 */
export function sendRawMessage(address: string, method: string, message: Uint8Array, timeoutMs = 5000): Promise<RawOutcome> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise<RawOutcome>((resolve) => {
    client.makeUnaryRequest<Uint8Array, Buffer>(
      `/eventhorizon.v1.EventHorizon/${method}`,
      (bytes) => Buffer.from(bytes),
      (bytes) => bytes,
      message,
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error) => resolve(error ? { code: error.code, details: error.details } : { code: 0, details: '' }),
    );
  }).finally(() => client.close());
}

/**
 * POSTs `body` as the whole HTTP/2 request body of a gRPC call, framing included, from a raw
 * HTTP/2 client: garbage frames, lying length prefixes, truncated messages. Resolves with the
 * grpc-status the server answered, or -1 when it answered none.
 */
export function postRawBody(address: string, path: string, body: Uint8Array, timeoutMs = 5000): Promise<RawOutcome> {
  return new Promise<RawOutcome>((resolve) => {
    const session = http2.connect(`http://${address}`);
    let settled = false;
    const finish = (outcome: RawOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ code: -1, details: `no grpc-status within ${timeoutMs} ms` }), timeoutMs);
    session.on('error', (error: Error) => finish({ code: -1, details: `session error: ${error.message}` }));
    const request = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let headerStatus: string | undefined;
    let headerMessage = '';
    request.on('response', (headers) => {
      const found = headers['grpc-status'];
      if (typeof found === 'string') headerStatus = found; // trailers-only response
      headerMessage = String(headers['grpc-message'] ?? '');
    });
    request.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      const found = trailers['grpc-status'];
      if (typeof found === 'string') headerStatus = found;
      headerMessage = String(trailers['grpc-message'] ?? headerMessage);
    });
    request.on('data', () => undefined);
    request.on('error', (error: Error) => finish({ code: headerStatus !== undefined ? Number(headerStatus) : -1, details: `stream error: ${error.message}` }));
    request.on('close', () =>
      finish(headerStatus !== undefined ? { code: Number(headerStatus), details: decodeURIComponent(headerMessage) } : { code: -1, details: 'closed without grpc-status' }),
    );
    request.end(Buffer.from(body));
  });
}

/** A gRPC length-prefixed message frame: flag byte, big-endian length, message. */
export function grpcFrame(message: Uint8Array, compressedFlag = 0, declaredLength = message.byteLength): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressedFlag, 0);
  prefix.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([prefix, Buffer.from(message)]);
}

/**
 * An AppendRequest whose one event carries an `occurred_at` Timestamp of any seconds and nanos,
 * including ones no JavaScript Date can hold (the generated client cannot send those).
 */
export function appendWithTimestamp(stream: string, seconds: bigint, nanos: number): Uint8Array {
  const timestamp = new BinaryWriter().uint32(8).int64(seconds).uint32(16).int32(nanos).finish();
  const event = new BinaryWriter()
    .uint32(18).string('fuzz.timestamp') // type = 2
    .uint32(50).bytes(timestamp) // occurred_at = 6
    .finish();
  return new BinaryWriter()
    .uint32(10).string(stream) // stream = 1
    .uint32(18).bytes(event) // events = 2
    .finish();
}
