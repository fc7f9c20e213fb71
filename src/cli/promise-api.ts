import type { ServiceError } from '@grpc/grpc-js';
import * as pb from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { DeepPartial, EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

type Callback<Res> = (error: ServiceError | null, response: Res) => void;

/**
 * Promise-returning unary calls of the generated client; requests may omit fields (proto
 * defaults). Shared by the CLI and the tests so that both speak to the server the same way.
 */
export function promiseApi(client: EventHorizonClient) {
  const bind =
    <Req, Res>(
      codec: { fromPartial(partial: DeepPartial<Req>): Req },
      method: (request: Req, callback: Callback<Res>) => unknown,
    ) =>
    (request: DeepPartial<Req>): Promise<Res> =>
      new Promise<Res>((resolve, reject) =>
        method.call(client, codec.fromPartial(request), (error: ServiceError | null, response: Res) =>
          error ? reject(error) : resolve(response),
        ),
      );
  return {
    createStream: bind<pb.CreateStreamRequest, pb.CreateStreamResponse>(pb.CreateStreamRequest, client.createStream),
    append: bind<pb.AppendRequest, pb.AppendResponse>(pb.AppendRequest, client.append),
    read: bind<pb.ReadRequest, pb.ReadResponse>(pb.ReadRequest, client.read),
    putSnapshot: bind<pb.PutSnapshotRequest, pb.PutSnapshotResponse>(pb.PutSnapshotRequest, client.putSnapshot),
    getSnapshot: bind<pb.GetSnapshotRequest, pb.GetSnapshotResponse>(pb.GetSnapshotRequest, client.getSnapshot),
    deleteSnapshot: bind<pb.DeleteSnapshotRequest, pb.DeleteSnapshotResponse>(pb.DeleteSnapshotRequest, client.deleteSnapshot),
    describeStream: bind<pb.DescribeStreamRequest, pb.DescribeStreamResponse>(pb.DescribeStreamRequest, client.describeStream),
    listChildren: bind<pb.ListChildrenRequest, pb.ListChildrenResponse>(pb.ListChildrenRequest, client.listChildren),
    rotateStreamKey: bind<pb.RotateStreamKeyRequest, pb.RotateStreamKeyResponse>(pb.RotateStreamKeyRequest, client.rotateStreamKey),
    shredStream: bind<pb.ShredStreamRequest, pb.ShredStreamResponse>(pb.ShredStreamRequest, client.shredStream),
    readFeed: bind<pb.ReadFeedRequest, pb.ReadFeedResponse>(pb.ReadFeedRequest, client.readFeed),
    createConsumerGroup: bind<pb.CreateConsumerGroupRequest, pb.CreateConsumerGroupResponse>(pb.CreateConsumerGroupRequest, client.createConsumerGroup),
    describeConsumerGroup: bind<pb.DescribeConsumerGroupRequest, pb.DescribeConsumerGroupResponse>(pb.DescribeConsumerGroupRequest, client.describeConsumerGroup),
    listConsumerGroups: bind<pb.ListConsumerGroupsRequest, pb.ListConsumerGroupsResponse>(pb.ListConsumerGroupsRequest, client.listConsumerGroups),
    deleteConsumerGroup: bind<pb.DeleteConsumerGroupRequest, pb.DeleteConsumerGroupResponse>(pb.DeleteConsumerGroupRequest, client.deleteConsumerGroup),
    resetConsumerGroup: bind<pb.ResetConsumerGroupRequest, pb.ResetConsumerGroupResponse>(pb.ResetConsumerGroupRequest, client.resetConsumerGroup),
    ack: bind<pb.AckRequest, pb.AckResponse>(pb.AckRequest, client.ack),
  };
}
