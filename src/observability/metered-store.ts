import type {
  AppendCommand,
  AppendResult,
  CreateStreamCommand,
  CreateStreamResult,
  BackgroundLog,
  ConsumerGroupStore,
  EventStore,
  FeedPage,
  FeedQuery,
  Position,
  PutSnapshotOptions,
  PutSnapshotResult,
  ReadPage,
  ReadQuery,
  SnapshotRecord,
  StoreBackground,
  StoreFeatures,
  StreamInfo,
  StreamKeys,
  WrappedKey,
} from '../store/port';
import type { Metrics } from './metrics';

/**
 * A decorator of any `EventStore` that times each operation, so that store latency is measured
 * the same way for every adapter and no adapter carries metrics code.
 */
export class MeteredStore implements EventStore {
  constructor(private readonly inner: EventStore, private readonly metrics: Metrics) {}

  get features(): StoreFeatures {
    return this.inner.features;
  }

  /** Group state goes through unmetered: its writes are batched and few. */
  get groups(): ConsumerGroupStore | undefined {
    return this.inner.groups;
  }

  background(log: BackgroundLog): StoreBackground | undefined {
    return this.inner.background?.(log);
  }

  open(): Promise<void> {
    return this.time('open', () => this.inner.open());
  }

  init(rootPayload: Uint8Array, recordedAt: Date): Promise<void> {
    return this.time('init', () => this.inner.init(rootPayload, recordedAt));
  }

  createStream(command: CreateStreamCommand): Promise<CreateStreamResult> {
    return this.time('createStream', () => this.inner.createStream(command));
  }

  append(command: AppendCommand): Promise<AppendResult> {
    return this.time('append', () => this.inner.append(command));
  }

  read(stream: string, query: ReadQuery): Promise<ReadPage> {
    return this.time('read', () => this.inner.read(stream, query));
  }

  readFeed(query: FeedQuery): Promise<FeedPage> {
    return this.time('readFeed', () => this.inner.readFeed(query));
  }

  feedHead(): Promise<Position> {
    return this.time('feedHead', () => this.inner.feedHead());
  }

  describe(stream: string): Promise<StreamInfo | undefined> {
    return this.time('describe', () => this.inner.describe(stream));
  }

  listChildren(stream: string, after: string | undefined, limit: number): Promise<string[]> {
    return this.time('listChildren', () => this.inner.listChildren(stream, after, limit));
  }

  putSnapshot(stream: string, snapshot: SnapshotRecord, options?: PutSnapshotOptions): Promise<PutSnapshotResult> {
    return this.time('putSnapshot', () => this.inner.putSnapshot(stream, snapshot, options));
  }

  getSnapshot(stream: string, perspective: string): Promise<SnapshotRecord | undefined> {
    return this.time('getSnapshot', () => this.inner.getSnapshot(stream, perspective));
  }

  deleteSnapshot(stream: string, perspective: string): Promise<boolean> {
    return this.time('deleteSnapshot', () => this.inner.deleteSnapshot(stream, perspective));
  }

  listPerspectives(stream: string): Promise<string[]> {
    return this.time('listPerspectives', () => this.inner.listPerspectives(stream));
  }

  getStreamKeys(stream: string): Promise<StreamKeys> {
    return this.time('getStreamKeys', () => this.inner.getStreamKeys(stream));
  }

  addStreamKey(stream: string, key: WrappedKey): Promise<boolean> {
    return this.time('addStreamKey', () => this.inner.addStreamKey(stream, key));
  }

  rewrapStreamKey(stream: string, dekVersion: number, expectedKekId: string, kekId: string, wrapped: Uint8Array): Promise<boolean> {
    return this.time('rewrapStreamKey', () => this.inner.rewrapStreamKey(stream, dekVersion, expectedKekId, kekId, wrapped));
  }

  shredStreamKeys(stream: string, shreddedAt: Date): Promise<void> {
    return this.time('shredStreamKeys', () => this.inner.shredStreamKeys(stream, shreddedAt));
  }

  listStreamKeys(after: string | undefined, limit: number): Promise<Array<{ stream: string; keys: WrappedKey[] }>> {
    return this.time('listStreamKeys', () => this.inner.listStreamKeys(after, limit));
  }

  ping(): Promise<boolean> {
    return this.time('ping', () => this.inner.ping());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async time<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      this.metrics.storeDuration.record(operation, 'ok', (performance.now() - started) / 1000);
      return result;
    } catch (error) {
      this.metrics.storeDuration.record(operation, 'error', (performance.now() - started) / 1000);
      throw error;
    }
  }
}
