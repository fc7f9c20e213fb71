import type * as pb from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { api } from './server';

/**
 * `api()` with its response types spelled out: grpc-js methods are overloaded, so TypeScript
 * cannot infer their response types through `api()` and leaves them `unknown`.
 */
export function typedApi(client: EventHorizonClient) {
  const untyped = api(client);
  return {
    createStream: (r: Parameters<typeof untyped.createStream>[0]) =>
      untyped.createStream(r) as Promise<pb.CreateStreamResponse>,
    append: (r: Parameters<typeof untyped.append>[0]) => untyped.append(r) as Promise<pb.AppendResponse>,
    read: (r: Parameters<typeof untyped.read>[0]) => untyped.read(r) as Promise<pb.ReadResponse>,
    describeStream: (r: Parameters<typeof untyped.describeStream>[0]) =>
      untyped.describeStream(r) as Promise<pb.DescribeStreamResponse>,
    listChildren: (r: Parameters<typeof untyped.listChildren>[0]) =>
      untyped.listChildren(r) as Promise<pb.ListChildrenResponse>,
  };
}

/** The typed API of one server. */
export type TypedApi = ReturnType<typeof typedApi>;
