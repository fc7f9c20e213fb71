import assert from 'node:assert/strict';
import fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import {
  decodeReflectionRequest,
  DESCRIPTOR_SET_PATH,
  encodeReflectionResponse,
  ReflectedSchema,
  type ReflectionAnswer,
} from '../../src/api/reflection';

/**
 * The hand-written reflection codec against protobuf-es's generic codec driven by the vendored
 * reflection.proto (from the same descriptor set): field numbers and wire types must agree.
 */
const SET = fs.readFileSync(DESCRIPTOR_SET_PATH);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, SET));

function message(name: string): DescMessage {
  const desc = registry.getMessage(name);
  if (!desc) throw new Error(`${name} is not in the descriptor set`);
  return desc;
}

describe('reflection codec and schema', () => {
  for (const version of ['v1', 'v1alpha']) {
    const Request = message(`grpc.reflection.${version}.ServerReflectionRequest`);
    const Response = message(`grpc.reflection.${version}.ServerReflectionResponse`);
    const encode = (json: JsonValue) => toBinary(Request, fromJson(Request, json));
    const respond = (json: JsonValue, answer: ReflectionAnswer) =>
      toJson(Response, fromBinary(Response, encodeReflectionResponse(decodeReflectionRequest(encode(json)), answer)));

    it(`decodes every kind of request (${version})`, () => {
      const cases: Array<[JsonValue, unknown]> = [
        [{ host: 'h', fileByFilename: 'a/b.proto' }, { kind: 'fileByFilename', name: 'a/b.proto' }],
        [{ fileContainingSymbol: 'p.M' }, { kind: 'fileContainingSymbol', symbol: 'p.M' }],
        [{ fileContainingExtension: { containingType: 'p.M', extensionNumber: 1000 } }, { kind: 'fileContainingExtension', containingType: 'p.M', number: 1000 }],
        [{ allExtensionNumbersOfType: 'p.M' }, { kind: 'allExtensionNumbersOfType', type: 'p.M' }],
        [{ listServices: '*' }, { kind: 'listServices' }],
        [{ host: 'h' }, { kind: 'unsupported' }],
      ];
      for (const [json, query] of cases) assert.deepEqual(decodeReflectionRequest(encode(json)).query, query, JSON.stringify(json));
      assert.equal(decodeReflectionRequest(encode({ host: 'h', listServices: '' })).host, 'h');
    });

    it(`encodes every kind of response, echoing the request (${version})`, () => {
      const request = { host: 'h', fileContainingSymbol: 'p.M' };
      assert.deepEqual(respond(request, { kind: 'files', files: [Uint8Array.of(1, 2), Uint8Array.of(3)] }), {
        validHost: 'h',
        originalRequest: request,
        fileDescriptorResponse: { fileDescriptorProto: ['AQI=', 'Aw=='] },
      });
      assert.deepEqual(respond(request, { kind: 'extensionNumbers', type: 'p.M', numbers: [5, 1000] }), {
        validHost: 'h',
        originalRequest: request,
        allExtensionNumbersResponse: { baseTypeName: 'p.M', extensionNumber: [5, 1000] },
      });
      assert.deepEqual(respond(request, { kind: 'services', names: ['a.A', 'b.B'] }), {
        validHost: 'h',
        originalRequest: request,
        listServicesResponse: { service: [{ name: 'a.A' }, { name: 'b.B' }] },
      });
      assert.deepEqual(respond(request, { kind: 'error', code: status.NOT_FOUND, message: 'no' }), {
        validHost: 'h',
        originalRequest: request,
        errorResponse: { errorCode: status.NOT_FOUND, errorMessage: 'no' },
      });
    });
  }

  it('answers UNIMPLEMENTED to a kind of request from a newer protocol', () => {
    // Field 8 would be a new member of the message_request oneof, after list_services (7).
    const bytes = Uint8Array.of(0x3a, 0x01, 0x2a, 0x42, 0x01, 0x78); // list_services "*", then field 8 "x"
    const query = decodeReflectionRequest(bytes).query;
    assert.deepEqual(query, { kind: 'unsupported' });
    const answer = new ReflectedSchema(SET, []).answer(query);
    assert.equal(answer.kind === 'error' && answer.code, status.UNIMPLEMENTED);
  });

  it('refuses, at start, a set without a listed service or with a missing import', () => {
    assert.throws(() => new ReflectedSchema(SET, ['eventhorizon.v1.NoSuchService']), /NoSuchService/);
    const set = fromBinary(FileDescriptorSetSchema, SET);
    const withoutTimestamp = create(FileDescriptorSetSchema, { file: set.file.filter((f) => f.name !== 'google/protobuf/timestamp.proto') });
    assert.throws(() => new ReflectedSchema(toBinary(FileDescriptorSetSchema, withoutTimestamp), []), /timestamp/);
  });

  it('serves each file with its transitive imports, each once, the file first', () => {
    const schema = new ReflectedSchema(SET, []);
    const answer = schema.answer({ kind: 'fileContainingSymbol', symbol: 'google.rpc.BadRequest.FieldViolation' });
    assert.equal(answer.kind, 'files');
    const names = answer.kind === 'files' ? answer.files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name) : [];
    assert.deepEqual(names, ['google/rpc/error_details.proto', 'google/protobuf/duration.proto']);
  });
});
