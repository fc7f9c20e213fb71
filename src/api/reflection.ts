import fs from 'node:fs';
import path from 'node:path';
import { status, type Server, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { PROTO_ROOT } from './proto-files';

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), answered from the descriptor set that
 * `npm run generate` builds with `buf build`: the FileDescriptorProtos of proto/ exactly as
 * compiled, under their real names and with their real imports, plus the well-known types they
 * import. Clients that link descriptors (grpcurl, buf curl, grpcui, Postman, the reflection
 * clients of other languages) need both; descriptors rebuilt at runtime from a loaded package
 * definition lack them (that was @grpc/reflection over proto-loader).
 */
export const DESCRIPTOR_SET_PATH = path.join(PROTO_ROOT, 'descriptor-set.binpb');

/** The two services addReflection registers: both versions of the protocol, answered alike. */
export const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

/** What a reflection request asks; `unsupported` is a request kind this module does not know. */
export type ReflectionQuery =
  | { kind: 'fileByFilename'; name: string }
  | { kind: 'fileContainingSymbol'; symbol: string }
  | { kind: 'fileContainingExtension'; containingType: string; number: number }
  | { kind: 'allExtensionNumbersOfType'; type: string }
  | { kind: 'listServices' }
  | { kind: 'unsupported' };

/** The answer to one query: one of the response kinds of ServerReflectionResponse. */
export type ReflectionAnswer =
  | { kind: 'files'; files: Uint8Array[] }
  | { kind: 'extensionNumbers'; type: string; numbers: number[] }
  | { kind: 'services'; names: string[] }
  | { kind: 'error'; code: status; message: string };

interface IndexedFile {
  /** The FileDescriptorProto's bytes as buf wrote them: served unchanged. */
  bytes: Uint8Array;
  dependencies: string[];
}

/** The served schema, indexed by the names reflection clients ask for. */
export class ReflectedSchema {
  private readonly files = new Map<string, IndexedFile>();
  /** Fully-qualified name of every message, enum, service, method and extension -> file name. */
  private readonly symbols = new Map<string, string>();
  /** Extended message -> extension number -> file name. Every message has an entry. */
  private readonly extensions = new Map<string, Map<number, string>>();

  /**
   * Indexes a serialized FileDescriptorSet and checks that it links (every import present) and
   * that it defines every listed service: a broken set fails the server's start, not a client.
   */
  constructor(descriptorSet: Uint8Array, readonly services: readonly string[]) {
    // buf writes every file after the files it imports: the order this form of linking needs.
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet));
    for (const service of services) {
      if (!registry.getService(service)) throw new Error(`the descriptor set does not define the service ${service}`);
    }
    for (const bytes of fileDescriptorBytes(descriptorSet)) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      this.files.set(file.name, { bytes, dependencies: file.dependency });
      this.index(file);
    }
  }

  /**
   * Walks the descriptor itself rather than protobuf-es's registry, which hides the synthetic
   * map entry messages that other reflection servers (grpc-go, grpc-java) resolve too.
   */
  private index(file: FileDescriptorProto): void {
    const scope = file.package ? `${file.package}.` : '';
    const add = (symbol: string) => this.symbols.set(symbol, file.name);
    // An extension is named in the scope it is declared in: the package, or a message.
    const extensions = (prefix: string, fields: FieldDescriptorProto[]) => {
      for (const extension of fields) {
        add(`${prefix}${extension.name}`);
        // Compiled descriptors name types fully qualified, with a leading dot.
        const extendee = extension.extendee.replace(/^\./, '');
        const numbers = this.extensions.get(extendee) ?? new Map<number, string>();
        numbers.set(extension.number, file.name);
        this.extensions.set(extendee, numbers);
      }
    };
    const message = (prefix: string, descriptor: DescriptorProto) => {
      const name = `${prefix}${descriptor.name}`;
      add(name);
      if (!this.extensions.has(name)) this.extensions.set(name, new Map());
      for (const nested of descriptor.nestedType) message(`${name}.`, nested);
      for (const nested of descriptor.enumType) add(`${name}.${nested.name}`);
      extensions(`${name}.`, descriptor.extension);
    };
    for (const descriptor of file.messageType) message(scope, descriptor);
    for (const descriptor of file.enumType) add(`${scope}${descriptor.name}`);
    for (const service of file.service) {
      add(`${scope}${service.name}`);
      for (const method of service.method) add(`${scope}${service.name}.${method.name}`);
    }
    extensions(scope, file.extension);
  }

  /** Reads the descriptor set that `npm run generate` wrote. */
  static load(services: readonly string[], file = DESCRIPTOR_SET_PATH): ReflectedSchema {
    return new ReflectedSchema(fs.readFileSync(file), services);
  }

  answer(query: ReflectionQuery): ReflectionAnswer {
    switch (query.kind) {
      case 'listServices':
        return { kind: 'services', names: [...this.services] };
      case 'fileByFilename':
        return this.withDependencies(query.name, `no file named ${query.name}`);
      case 'fileContainingSymbol':
        return this.withDependencies(this.symbols.get(query.symbol), `no symbol named ${query.symbol}`);
      case 'fileContainingExtension':
        return this.withDependencies(
          this.extensions.get(query.containingType)?.get(query.number),
          `no extension ${query.number} of ${query.containingType}`,
        );
      case 'allExtensionNumbersOfType': {
        const numbers = this.extensions.get(query.type);
        if (!numbers) return { kind: 'error', code: status.NOT_FOUND, message: `no message type named ${query.type}` };
        return { kind: 'extensionNumbers', type: query.type, numbers: [...numbers.keys()].sort((a, b) => a - b) };
      }
      case 'unsupported':
        return { kind: 'error', code: status.UNIMPLEMENTED, message: 'this kind of reflection request is not supported' };
    }
  }

  /**
   * The file first, then every file it imports, directly or not, each once: a client can link
   * the answer without asking again. (grpc-go leaves out files already sent on the stream; the
   * protocol allows both, and our files are few and small.)
   */
  private withDependencies(name: string | undefined, notFound: string): ReflectionAnswer {
    if (name === undefined || !this.files.has(name)) return { kind: 'error', code: status.NOT_FOUND, message: notFound };
    const names = [name];
    for (let i = 0; i < names.length; i++) {
      for (const dependency of this.files.get(names[i] ?? '')?.dependencies ?? []) {
        if (!names.includes(dependency)) names.push(dependency);
      }
    }
    return { kind: 'files', files: names.map((file) => this.files.get(file)?.bytes ?? new Uint8Array()) };
  }
}

/** The FileDescriptorProtos of a serialized FileDescriptorSet (field 1), each as its own bytes. */
function fileDescriptorBytes(descriptorSet: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(descriptorSet);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(reader.bytes());
    else reader.skip(wireType, field);
  }
  return files;
}

/**
 * A decoded ServerReflectionRequest. The codec is written by hand over protobuf-es's wire
 * reader and writer: the two messages are small, frozen by the reflection spec, and the same on
 * the wire in v1 and v1alpha; field numbers are those of proto/grpc/reflection/v1/reflection.proto.
 */
export interface ReflectionRequest {
  host: string;
  query: ReflectionQuery;
  /** The request as received, echoed in the response's original_request. */
  bytes: Uint8Array;
}

export function decodeReflectionRequest(bytes: Uint8Array): ReflectionRequest {
  const reader = new BinaryReader(bytes);
  let host = '';
  let query: ReflectionQuery = { kind: 'unsupported' };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    // The fields of the message_request oneof (3 to 7): the last one on the wire wins.
    if (field === 1 && wireType === WireType.LengthDelimited) host = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) query = { kind: 'fileByFilename', name: reader.string() };
    else if (field === 4 && wireType === WireType.LengthDelimited) query = { kind: 'fileContainingSymbol', symbol: reader.string() };
    else if (field === 5 && wireType === WireType.LengthDelimited) query = decodeExtensionRequest(reader.bytes());
    else if (field === 6 && wireType === WireType.LengthDelimited) query = { kind: 'allExtensionNumbersOfType', type: reader.string() };
    else if (field === 7 && wireType === WireType.LengthDelimited) {
      reader.string(); // "*" or anything: every service is listed.
      query = { kind: 'listServices' };
    } else {
      reader.skip(wireType, field);
      // An unknown member of the oneof (a newer kind of request) replaces a known one.
      if (field > 7) query = { kind: 'unsupported' };
    }
  }
  return { host, query, bytes };
}

/** ExtensionRequest: containing_type = 1, extension_number = 2. */
function decodeExtensionRequest(bytes: Uint8Array): ReflectionQuery {
  const reader = new BinaryReader(bytes);
  let containingType = '';
  let number = 0;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) containingType = reader.string();
    else if (field === 2 && wireType === WireType.Varint) number = reader.int32();
    else reader.skip(wireType, field);
  }
  return { kind: 'fileContainingExtension', containingType, number };
}

/**
 * ServerReflectionResponse: valid_host = 1, original_request = 2, then the message_response
 * oneof: file_descriptor_response = 4 (repeated bytes file_descriptor_proto = 1),
 * all_extension_numbers_response = 5 (base_type_name = 1, repeated int32 extension_number = 2),
 * list_services_response = 6 (repeated ServiceResponse service = 1, each name = 1),
 * error_response = 7 (error_code = 1, error_message = 2).
 */
export function encodeReflectionResponse(request: ReflectionRequest, answer: ReflectionAnswer): Uint8Array {
  const writer = new BinaryWriter();
  writer.tag(1, WireType.LengthDelimited).string(request.host);
  writer.tag(2, WireType.LengthDelimited).bytes(request.bytes);
  switch (answer.kind) {
    case 'files':
      writer.tag(4, WireType.LengthDelimited).fork();
      for (const file of answer.files) writer.tag(1, WireType.LengthDelimited).bytes(file);
      writer.join();
      break;
    case 'extensionNumbers':
      writer.tag(5, WireType.LengthDelimited).fork();
      writer.tag(1, WireType.LengthDelimited).string(answer.type);
      writer.tag(2, WireType.LengthDelimited).fork();
      for (const number of answer.numbers) writer.int32(number);
      writer.join();
      writer.join();
      break;
    case 'services':
      writer.tag(6, WireType.LengthDelimited).fork();
      for (const name of answer.names) writer.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(name).join();
      writer.join();
      break;
    case 'error':
      writer.tag(7, WireType.LengthDelimited).fork();
      writer.tag(1, WireType.Varint).int32(answer.code);
      writer.tag(2, WireType.LengthDelimited).string(answer.message);
      writer.join();
      break;
  }
  return writer.finish();
}

/** A request whose bytes do not decode: the call ends with INVALID_ARGUMENT, not INTERNAL. */
class MalformedReflectionRequest {
  constructor(readonly problem: string) {}
}

type ReflectionCall = ServerDuplexStream<ReflectionRequest | MalformedReflectionRequest, Uint8Array>;

/** Registers ServerReflectionInfo of both reflection versions, answering from `schema`. */
export function addReflection(server: Server, schema: ReflectedSchema): void {
  for (const version of ['v1', 'v1alpha']) {
    const definition: ServiceDefinition = {
      ServerReflectionInfo: {
        path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        requestStream: true,
        responseStream: true,
        requestSerialize: (request: ReflectionRequest) => Buffer.from(request.bytes),
        requestDeserialize: (bytes: Buffer) => {
          try {
            return decodeReflectionRequest(bytes);
          } catch (error) {
            return new MalformedReflectionRequest(error instanceof Error ? error.message : String(error));
          }
        },
        responseSerialize: (response: Uint8Array) => Buffer.from(response),
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    };
    server.addService(definition, {
      ServerReflectionInfo: (call: ReflectionCall) => {
        call.on('data', (request: ReflectionRequest | MalformedReflectionRequest) => {
          if (request instanceof MalformedReflectionRequest) {
            call.emit('error', { code: status.INVALID_ARGUMENT, details: `malformed reflection request: ${request.problem}` });
            return;
          }
          call.write(encodeReflectionResponse(request, schema.answer(request.query)));
        });
        call.on('end', () => call.end());
      },
    });
  }
}
