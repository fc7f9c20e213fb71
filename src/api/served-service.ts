import { EventHorizonService } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { serializeReadResponse, serializeSubscribeResponse } from '../codec/encoded-messages';
import { serializeSubscribeFeedResponse } from '../feed/feed-messages';
import { tolerateMalformedRequests } from './malformed-request';

/**
 * The EventHorizon service as this server serves it: the generated definition with the
 * serializers that pass pre-serialized messages through, and deserializers that tolerate
 * malformed requests. The gRPC server registers it; the web console turns its JSON into requests
 * and its responses into JSON through the same (de)serializers.
 */
export const SERVED_SERVICE = tolerateMalformedRequests({
  ...EventHorizonService,
  // Subscriptions write messages serialized once for all subscribers, and Read answers pages
  // serialized from the stored events (encoded-messages.ts).
  subscribe: { ...EventHorizonService.subscribe, responseSerialize: serializeSubscribeResponse },
  read: { ...EventHorizonService.read, responseSerialize: serializeReadResponse },
  subscribeFeed: { ...EventHorizonService.subscribeFeed, responseSerialize: serializeSubscribeFeedResponse },
});
