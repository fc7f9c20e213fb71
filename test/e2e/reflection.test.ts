import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMethod, type FileRegistry, type JsonValue } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { PROTO_ROOT } from '../../src/api/proto-files';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * A reflection client that knows nothing of the API, as grpcurl is: it downloads the descriptors,
 * links them (a missing import fails, as it does in grpcurl), and calls the API with nothing but
 * what it linked. The reflection messages themselves are encoded by protobufjs from the vendored
 * reflection.proto: a codec independent of the server's.
 */
interface ReflectionResponse {
  valid_host: string;
  original_request?: Record<string, unknown>;
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionRequest =
  | { host?: string; list_services: string }
  | { host?: string; file_by_filename: string }
  | { host?: string; file_containing_symbol: string }
  | { host?: string; file_containing_extension: { containing_type: string; extension_number: number } }
  | { host?: string; all_extension_numbers_of_type: string };

type ReflectionCall = grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
type ReflectionClient = grpc.Client & { ServerReflectionInfo(): ReflectionCall };
type Version = 'v1' | 'v1alpha';

function reflectionClient(version: Version, address: string): ReflectionClient {
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    arrays: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: new (address: string, creds: grpc.ChannelCredentials) => ReflectionClient }> };
  };
  const service = loaded.grpc.reflection[version]?.ServerReflection;
  if (!service) throw new Error(`reflection ${version} not found`);
  return new service(address, grpc.credentials.createInsecure());
}

/** Sends requests on one reflection stream, as grpcurl does, and collects one answer for each. */
async function askAll(client: ReflectionClient, requests: ReflectionRequest[]): Promise<ReflectionResponse[]> {
  const call = client.ServerReflectionInfo();
  const answers: ReflectionResponse[] = [];
  const done = new Promise<ReflectionResponse[]>((resolve, reject) => {
    call.on('data', (response: ReflectionResponse) => {
      answers.push(response);
      if (answers.length === requests.length) {
        call.end();
        resolve(answers);
      }
    });
    call.on('error', reject);
  });
  for (const request of requests) call.write(request);
  return done;
}

async function ask(client: ReflectionClient, request: ReflectionRequest): Promise<ReflectionResponse> {
  const [answer] = await askAll(client, [request]);
  if (!answer) throw new Error('no answer');
  return answer;
}

async function filesOf(client: ReflectionClient, request: ReflectionRequest): Promise<FileDescriptorProto[]> {
  const response = await ask(client, request);
  assert.equal(response.error_response, undefined, `${JSON.stringify(request)}: ${response.error_response?.error_message}`);
  return (response.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

/**
 * What grpcurl does: the file containing the symbol, then every import by file name until no
 * import is missing, then linking. Returns the registry and the files in the order received.
 */
async function linkSymbol(client: ReflectionClient, symbol: string): Promise<{ registry: FileRegistry; files: FileDescriptorProto[] }> {
  const files = new Map<string, FileDescriptorProto>();
  const first = await filesOf(client, { file_containing_symbol: symbol });
  for (const file of first) files.set(file.name, file);
  const asked = new Set<string>();
  for (let missing = importsToAsk(files, asked); missing.length > 0; missing = importsToAsk(files, asked)) {
    for (const name of missing) {
      asked.add(name);
      const answer = await filesOf(client, { file_by_filename: name });
      assert.equal(answer[0]?.name, name, `file_by_filename ${name} answers that file first`);
      for (const file of answer) if (!files.has(file.name)) files.set(file.name, file);
    }
  }
  const [root] = first;
  if (!root) throw new Error(`no file for ${symbol}`);
  try {
    // Throws on any import that was not received, and on type names that do not resolve.
    return { registry: createFileRegistry(root, (name) => files.get(name)), files: [...files.values()] };
  } catch (error) {
    const received = [...files.values()].map((f) => `${f.name} (imports: ${f.dependency.join(', ') || 'none'})`);
    throw new Error(`linking the files of ${symbol} failed: ${String(error)}; received ${received.join('; ')}`);
  }
}

/** Every import of the files known so far not yet asked for by name (grpcurl asks for each). */
function importsToAsk(files: Map<string, FileDescriptorProto>, asked: Set<string>): string[] {
  const names = new Set<string>();
  for (const file of files.values()) for (const dependency of file.dependency) if (!asked.has(dependency)) names.add(dependency);
  return [...names];
}

/** A method found in the linked registry only: no generated code, no .proto file. */
function methodOf(registry: FileRegistry, service: string, name: string): DescMethod {
  const method = registry.getService(service)?.methods.find((m) => m.name === name);
  if (!method) throw new Error(`${service}/${name} is not in the linked descriptors`);
  return method;
}

const rawBytes = {
  serialize: (bytes: Uint8Array): Buffer => Buffer.from(bytes),
  deserialize: (bytes: Buffer): Buffer => bytes,
};

/** Calls a unary method with a JSON request, encoded and decoded with the linked descriptors. */
function callUnary(client: grpc.Client, method: DescMethod, request: JsonValue): Promise<JsonValue> {
  const bytes = toBinary(method.input, fromJson(method.input, request));
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${method.parent.typeName}/${method.name}`, rawBytes.serialize, rawBytes.deserialize, bytes, (error, reply) =>
      error || !reply ? reject(error ?? new Error('no reply')) : resolve(toJson(method.output, fromBinary(method.output, reply))),
    );
  });
}

/** Subscribes with a JSON request and collects the decoded messages up to caught_up. */
function subscribeUntilCaughtUp(client: grpc.Client, method: DescMethod, request: JsonValue): Promise<JsonValue[]> {
  const bytes = toBinary(method.input, fromJson(method.input, request));
  const call = client.makeServerStreamRequest(`/${method.parent.typeName}/${method.name}`, rawBytes.serialize, rawBytes.deserialize, bytes);
  const messages: JsonValue[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (reply: Buffer) => {
      const message = toJson(method.output, fromBinary(method.output, reply));
      messages.push(message);
      if (typeof message === 'object' && message !== null && 'caughtUp' in message) {
        call.cancel();
        resolve(messages);
      }
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) reject(error);
    });
  });
}

const EXPECTED_SERVICES = [
  'eventhorizon.v1.EventHorizon',
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];

describe('server reflection', () => {
  let test: TestServer;
  before(async () => (test = await startTestServer()));
  after(async () => test.stop());

  for (const version of ['v1', 'v1alpha'] as const) {
    describe(`grpc.reflection.${version}`, () => {
      let client: ReflectionClient;
      beforeEach(() => (client = reflectionClient(version, test.address)));
      afterEach(() => client.close());

      it('lists every service the server serves', async () => {
        const listed = await ask(client, { host: 'eh.example', list_services: '*' });
        assert.deepEqual(listed.list_services_response?.service.map((s) => s.name), EXPECTED_SERVICES);
        assert.equal(listed.valid_host, 'eh.example');
        assert.equal(listed.original_request?.['list_services'], '*');
      });

      it('serves the files of proto/ under their own names, with their imports', async () => {
        const { files } = await linkSymbol(client, 'eventhorizon.v1.EventHorizon');
        assert.deepEqual(files.map((f) => f.name), ['eventhorizon/v1/eventhorizon.proto', 'google/protobuf/timestamp.proto']);
        assert.deepEqual(files[0]?.dependency, ['google/protobuf/timestamp.proto']);
        // The comments come along: grpcurl's `describe` prints them.
        const comments = files[0]?.sourceCodeInfo?.location.map((l) => l.leadingComments).join('') ?? '';
        assert.match(comments, /CaughtUp|caught/i);

        const status = await linkSymbol(client, 'google.rpc.Status');
        assert.deepEqual(status.files.map((f) => f.name), ['google/rpc/status.proto', 'google/protobuf/any.proto']);
        const details = await linkSymbol(client, 'google.rpc.ErrorInfo');
        assert.deepEqual(details.files.map((f) => f.name), ['google/rpc/error_details.proto', 'google/protobuf/duration.proto']);
        const health = await linkSymbol(client, 'grpc.health.v1.Health');
        assert.deepEqual(health.files.map((f) => f.name), ['grpc/health/v1/health.proto']);
      });

      it('resolves methods, nested and well-known types by symbol', async () => {
        for (const [symbol, file] of [
          ['eventhorizon.v1.EventHorizon.Append', 'eventhorizon/v1/eventhorizon.proto'],
          ['eventhorizon.v1.AppendRequest', 'eventhorizon/v1/eventhorizon.proto'],
          ['eventhorizon.v1.Direction', 'eventhorizon/v1/eventhorizon.proto'],
          ['eventhorizon.v1.Event.MetadataEntry', 'eventhorizon/v1/eventhorizon.proto'],
          ['google.protobuf.Timestamp', 'google/protobuf/timestamp.proto'],
          ['grpc.health.v1.HealthCheckResponse.ServingStatus', 'grpc/health/v1/health.proto'],
          [`grpc.reflection.${version}.ServerReflection`, `grpc/reflection/${version}/reflection.proto`],
        ] as const) {
          const files = await filesOf(client, { file_containing_symbol: symbol });
          assert.equal(files[0]?.name, file, symbol);
        }
      });

      it('answers NOT_FOUND for unknown symbols, files and extensions, on the same stream', async () => {
        const answers = await askAll(client, [
          { file_containing_symbol: 'eventhorizon.v1.NoSuchThing' },
          { file_by_filename: 'eventhorizon_v1.proto' },
          { file_containing_extension: { containing_type: 'eventhorizon.v1.Event', extension_number: 100 } },
          { all_extension_numbers_of_type: 'eventhorizon.v1.NoSuchThing' },
          { all_extension_numbers_of_type: 'eventhorizon.v1.Event' },
          { file_containing_symbol: 'eventhorizon.v1.Event' },
        ]);
        for (const answer of answers.slice(0, 4)) {
          assert.equal(answer.error_response?.error_code, grpc.status.NOT_FOUND, JSON.stringify(answer.original_request));
        }
        // A known message without extensions has none, which is not an error.
        assert.deepEqual(answers[4]?.all_extension_numbers_response, { base_type_name: 'eventhorizon.v1.Event', extension_number: [] });
        // The stream still answers after errors.
        assert.equal(answers[5]?.error_response, undefined);
      });

      it('ends a stream whose request bytes do not decode with INVALID_ARGUMENT', async () => {
        const raw = new grpc.Client(test.address, grpc.credentials.createInsecure());
        try {
          const call = raw.makeBidiStreamRequest(`/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`, rawBytes.serialize, rawBytes.deserialize);
          const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
          call.write(Uint8Array.of(0x22, 0x05, 0x61)); // file_containing_symbol, 5 bytes long, 1 sent
          assert.equal((await ended).code, grpc.status.INVALID_ARGUMENT);
        } finally {
          raw.close();
        }
      });

      it('is enough to call Append and Subscribe with JSON, as grpcurl does', async () => {
        const { registry } = await linkSymbol(client, 'eventhorizon.v1.EventHorizon');
        const api = new grpc.Client(test.address, grpc.credentials.createInsecure());
        try {
          const stream = `/reflection-${version}`;
          const service = 'eventhorizon.v1.EventHorizon';
          const created = await callUnary(api, methodOf(registry, service, 'CreateStream'), { stream, createParents: true });
          assert.deepEqual(created, { head: { stream }, created: [stream] });
          const appended = await callUnary(api, methodOf(registry, service, 'Append'), {
            stream,
            expected_version: '0',
            request_id: 'reflection-1',
            events: [{ type: 'order.placed', data: Buffer.from('{"id":42}').toString('base64'), metadata: { user: 'ann' }, occurredAt: '2026-01-02T03:04:05Z' }],
          });
          assert.deepEqual(appended, { cursor: { stream, version: '1' } });

          const messages = await subscribeUntilCaughtUp(api, methodOf(registry, service, 'Subscribe'), { stream, fromVersion: '0' });
          // Entry 0 records the stream's creation, entry 1 is ours, then caught_up.
          assert.equal(messages.length, 3, JSON.stringify(messages));
          const entry = (messages[1] as { entry: { version: string; recordedAt: string; events: Array<Record<string, unknown>> } }).entry;
          assert.equal(entry.version, '1');
          assert.match(entry.recordedAt, /^\d{4}-\d\d-\d\dT/); // a google.protobuf.Timestamp, decoded
          assert.equal(entry.events[0]?.['type'], 'order.placed');
          assert.equal(entry.events[0]?.['occurredAt'], '2026-01-02T03:04:05Z');
          assert.deepEqual(entry.events[0]?.['metadata'], { user: 'ann' });
          assert.equal(Buffer.from(String(entry.events[0]?.['data']), 'base64').toString(), '{"id":42}');
          assert.deepEqual(messages[2], { caughtUp: { version: '1' } });
        } finally {
          api.close();
        }
      });

      it('is enough to call the health service', async () => {
        const { registry } = await linkSymbol(client, 'grpc.health.v1.Health');
        const api = new grpc.Client(test.address, grpc.credentials.createInsecure());
        try {
          const check = methodOf(registry, 'grpc.health.v1.Health', 'Check');
          assert.deepEqual(await callUnary(api, check, { service: 'eventhorizon.v1.EventHorizon' }), { status: 'SERVING' });
        } finally {
          api.close();
        }
      });
    });
  }
});

describe('server reflection with API keys required', () => {
  it('still answers without a key: it shows the schema, never data', async () => {
    const test = await startTestServer({ auth: 'required' });
    const client = reflectionClient('v1', test.address);
    try {
      const { registry } = await linkSymbol(client, 'eventhorizon.v1.EventHorizon');
      assert.ok(registry.getMessage('eventhorizon.v1.AppendRequest'));
    } finally {
      client.close();
      await test.stop();
    }
  });
});

describe('health checks', () => {
  it('reports SERVING for the server and the API service', async () => {
    const test = await startTestServer();
    const definition = protoLoader.loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), {
      keepCase: true,
      enums: String,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & {
        Check(request: { service: string }, callback: (error: grpc.ServiceError | null, response: { status: string }) => void): void;
      } } } };
    };
    const client = new loaded.grpc.health.v1.Health(test.address, grpc.credentials.createInsecure());
    try {
      for (const service of ['', 'eventhorizon.v1.EventHorizon']) {
        const answer = await new Promise<{ status: string }>((resolve, reject) =>
          client.Check({ service }, (error, response) => (error ? reject(error) : resolve(response))),
        );
        assert.equal(answer.status, 'SERVING');
      }
    } finally {
      client.close();
      await test.stop();
    }
  });
});
