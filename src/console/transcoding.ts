import fs from 'node:fs';
import { createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { isFieldError } from '@bufbuild/protobuf/reflect';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { MethodDefinition } from '@grpc/grpc-js';
import { SERVED_SERVICE } from '../api/served-service';
import { DESCRIPTOR_SET_PATH } from '../api/reflection';
import { InvalidArgumentError } from '../core/errors';

/** The service whose methods the console calls. */
const SERVICE = 'eventhorizon.v1.EventHorizon';

/**
 * The methods the console may call: those that only read. A console that cannot write cannot be
 * turned into a writer by a page it was tricked into loading, whatever the key it holds.
 */
export const CONSOLE_UNARY_METHODS = ['ListChildren', 'DescribeStream', 'Read', 'GetSnapshot', 'ReadFeed'] as const;
export const CONSOLE_STREAMING_METHODS = ['Subscribe', 'SubscribeFeed'] as const;
export type ConsoleMethod = (typeof CONSOLE_UNARY_METHODS)[number] | (typeof CONSOLE_STREAMING_METHODS)[number];

/** One method, with the messages' descriptors and the served (de)serializers. */
export interface TranscodedMethod {
  name: ConsoleMethod;
  /** "/eventhorizon.v1.EventHorizon/Read": what auth policies and logs name. */
  path: string;
  streaming: boolean;
  /** The request as the gRPC handler gets it, from the request's JSON. Throws InvalidArgumentError. */
  readonly requestOf: (json: unknown) => unknown;
  /** A response (or streamed message) as the gRPC call would serialize it, in protobuf's JSON mapping. */
  readonly responseJson: (response: unknown) => JsonValue;
}

/**
 * The console's requests and responses in protobuf's canonical JSON mapping, converted through
 * the binary form: JSON → protobuf-es message (strict: unknown fields and wrong types are
 * refused, naming the field) → bytes → the served deserializer, which gives the handler exactly
 * what a gRPC call of the same request would; and the response through the served serializer
 * (which passes pre-serialized pages through) → bytes → JSON. The descriptors are the ones
 * reflection serves (proto/descriptor-set.binpb), so the JSON is what grpcurl or buf curl print.
 */
export class Transcoder {
  private readonly methods = new Map<string, TranscodedMethod>();

  constructor(descriptorSet: Uint8Array = fs.readFileSync(DESCRIPTOR_SET_PATH)) {
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet));
    const service = registry.getService(SERVICE);
    if (!service) throw new Error(`the descriptor set does not define ${SERVICE}`);
    const served = SERVED_SERVICE as unknown as Record<string, MethodDefinition<unknown, unknown>>;
    for (const name of [...CONSOLE_UNARY_METHODS, ...CONSOLE_STREAMING_METHODS]) {
      const descriptor = service.methods.find((method) => method.name === name);
      const definition = served[name.charAt(0).toLowerCase() + name.slice(1)];
      if (!descriptor || !definition) throw new Error(`${SERVICE} has no method ${name}`);
      const { input, output } = descriptor;
      this.methods.set(name, {
        name,
        path: definition.path,
        streaming: definition.responseStream,
        requestOf: (json) => definition.requestDeserialize(Buffer.from(toBinary(input, parseRequest(input, json)))),
        responseJson: (response) =>
          toJson(output, fromBinary(output, definition.responseSerialize(response)), { alwaysEmitImplicit: true }),
      });
    }
  }

  /** The method of that name, if the console may call it. */
  method(name: string): TranscodedMethod | undefined {
    return this.methods.get(name);
  }
}

/** The request message of a JSON body; a body that is not one is INVALID_ARGUMENT naming the field. */
function parseRequest(schema: DescMessage, json: unknown) {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError([{ field: 'request', description: 'must be a JSON object' }]);
  }
  try {
    return fromJson(schema, json as JsonValue);
  } catch (error) {
    throw new InvalidArgumentError([violationOf(schema, error)]);
  }
}

/** The field a protobuf-es JSON error is about, with its reason. */
function violationOf(schema: DescMessage, error: unknown): { field: string; description: string } {
  const cause = error instanceof Error ? error.cause : undefined;
  if (isFieldError(cause)) {
    const field = cause.field();
    // A field of a nested message (the feed's selector) is named by its path, as the API's own
    // violations are: "selector.event_types".
    const holder = schema.fields.find((f) => f.message?.typeName === field.parent.typeName);
    const prefix = field.parent.typeName === schema.typeName || !holder ? '' : `${holder.name}.`;
    return { field: `${prefix}${field.name}`, description: cause.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  const unknownKey = /key "([^"]*)" is unknown/.exec(message);
  if (unknownKey?.[1] !== undefined) return { field: unknownKey[1], description: 'is not a field of this request' };
  return { field: 'request', description: message.replace(/^cannot decode message \S+ from JSON: /, '') };
}
