import assert from 'node:assert/strict';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * A reflection client that has no copy of our .proto files, as grpcurl is: it must be able to list
 * the services and resolve every message of the API, over both reflection versions.
 */
const REFLECTION_PROTOS = path.dirname(require.resolve('@grpc/reflection/package.json'));

interface ReflectionResponse {
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionCall = grpc.ClientDuplexStream<Record<string, string>, ReflectionResponse>;
type ReflectionClient = grpc.Client & { ServerReflectionInfo(): ReflectionCall };

function reflectionClient(version: 'v1' | 'v1alpha', address: string): ReflectionClient {
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [path.join(REFLECTION_PROTOS, 'build', 'proto')],
    keepCase: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: new (address: string, creds: grpc.ChannelCredentials) => ReflectionClient }> };
  };
  const service = loaded.grpc.reflection[version]?.ServerReflection;
  if (!service) throw new Error(`reflection ${version} not found`);
  return new service(address, grpc.credentials.createInsecure());
}

/** Sends one reflection request and waits for its answer. */
function ask(client: ReflectionClient, request: Record<string, string>): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
}

async function filesFor(client: ReflectionClient, symbol: string): Promise<FileDescriptorProto[]> {
  const response = await ask(client, { file_containing_symbol: symbol });
  assert.equal(response.error_response, undefined, `resolving ${symbol}: ${response.error_response?.error_message}`);
  return (response.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );
}

describe('server reflection', () => {
  let test: TestServer;
  before(async () => (test = await startTestServer()));
  after(async () => test.stop());

  for (const version of ['v1', 'v1alpha'] as const) {
    it(`lists services and resolves every API message (${version})`, async () => {
      const client = reflectionClient(version, test.address);
      try {
        const listed = await ask(client, { list_services: '' });
        const services = listed.list_services_response?.service.map((s) => s.name) ?? [];
        assert.ok(services.includes('eventhorizon.v1.EventHorizon'), services.join(', '));
        assert.ok(services.includes('grpc.health.v1.Health'), services.join(', '));

        const files = await filesFor(client, 'eventhorizon.v1.EventHorizon');
        const api = files.find((f) => f.package === 'eventhorizon.v1');
        assert.ok(api, 'the API file is returned');
        const methods = api.service[0]?.method.map((m) => m.name) ?? [];
        assert.deepEqual(methods.sort(), [
          'Append', 'CreateStream', 'DeleteSnapshot', 'DescribeStream', 'GetSnapshot', 'ListChildren',
          'PutSnapshot', 'Read', 'RotateStreamKey', 'ShredStream', 'Subscribe',
        ]);
        // Every dependency comes along, so a client can decode Timestamp fields.
        const timestamp = files.find((f) => f.package === 'google.protobuf' && f.messageType.some((m) => m.name === 'Timestamp'));
        assert.ok(timestamp, `Timestamp among ${files.map((f) => f.name).join(', ')}`);

        for (const message of api.messageType) {
          const resolved = await filesFor(client, `eventhorizon.v1.${message.name}`);
          assert.ok(resolved.some((f) => f.messageType.some((m) => m.name === message.name)), message.name);
        }
        // The error details, so grpcurl can print them.
        const details = await filesFor(client, 'google.rpc.ErrorInfo');
        assert.ok(details.some((f) => f.messageType.some((m) => m.name === 'ErrorInfo')));
      } finally {
        client.close();
      }
    });
  }
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
