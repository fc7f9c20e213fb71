import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  CreateStreamRequest,
  DescribeStreamRequest,
  EventHorizonClient,
  ReadFeedRequest,
  type DescribeStreamResponse,
} from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/** The few unary calls the orchestrator makes itself to set scenarios up and read results. */
export class SetupClient {
  private readonly client: EventHorizonClient;

  constructor(address: string) {
    this.client = new EventHorizonClient(address, credentials.createInsecure());
  }

  /** Creates streams (and missing parents), `concurrency` calls at a time. */
  async createStreams(paths: string[], concurrency = 32): Promise<void> {
    let next = 0;
    const loop = async (): Promise<void> => {
      while (next < paths.length) {
        const stream = paths[next++] as string;
        await new Promise<void>((resolve, reject) =>
          this.client.createStream(CreateStreamRequest.fromPartial({ stream, createParents: true }), (error: ServiceError | null) =>
            // A parent created by a neighbour call is as good as one created by this call.
            error && error.code !== 6 /* ALREADY_EXISTS */ ? reject(error) : resolve(),
          ),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, loop));
  }

  describe(stream: string): Promise<DescribeStreamResponse> {
    return new Promise((resolve, reject) =>
      this.client.describeStream(DescribeStreamRequest.fromPartial({ stream }), (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  }

  /** The newest position of the feed (ReadFeed's head_position). */
  feedHead(): Promise<bigint> {
    return new Promise((resolve, reject) =>
      this.client.readFeed(ReadFeedRequest.fromPartial({ selector: { stream: '/' }, limit: 1 }), (error, response) =>
        error ? reject(error) : resolve(response.headPosition),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}
