/**
 * @eventhorizon/client: the TypeScript client of Event Horizon. `connect()` gives a typed,
 * promise-based client; `Reader` keeps read models; errors are typed classes. The generated
 * message types and grpc-js stubs are re-exported as `pb` for everything else.
 */
export {
  connect,
  DEFAULT_FLOW_CONTROL_WINDOW,
  EventHorizon,
  type CallSettings,
  type ConnectOptions,
  type ReadAllOptions,
  type TlsOptions,
  type TokenSource,
} from './client';
export { Backoff, type BackoffOptions } from './backoff';
export {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  decodeStatusDetails,
  ERROR_DOMAIN,
  EventHorizonError,
  FailedPreconditionError,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  PermissionDeniedError,
  toClientError,
  UnauthenticatedError,
  UnavailableError,
  type FieldViolation,
  type StatusDetails,
} from './errors';
export { eventData, jsonEvent, jsonSnapshots } from './json';
export {
  Reader,
  type Decision,
  type ReaderOptions,
  type ReadModel,
  type TransactWriteOptions,
  type TransactWriteResult,
} from './reader';
export { follow, type FeedItem, type FollowOptions } from './feed';
export {
  consume,
  type ConsumeHandler,
  type ConsumeOptions,
  type ConsumerEvent,
  type ConsumerTransport,
  type DeliveryContext,
  type GroupConsumer,
} from './consumer';
export {
  memoryPositionStore,
  SubtreeReader,
  type PositionStore,
  type SubtreeModel,
  type SubtreeReaderOptions,
} from './subtree-reader';
export {
  resumableSubscription,
  type ReconnectInfo,
  type SubscribeOptions,
  type SubscriptionItem,
} from './subscription';
export type { Entry, Event, FeedEntry, Snapshot } from './gen/eventhorizon/v1/eventhorizon';
/** The generated messages, enums and grpc-js stubs of eventhorizon.v1. */
export * as pb from './gen/eventhorizon/v1/eventhorizon';
