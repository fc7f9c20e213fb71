import type { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { EventStore } from '../store/port';
import type { Metrics } from './metrics';

/**
 * Pings the store periodically and mirrors the answer into the gRPC health service (SERVING or
 * NOT_SERVING) and the `eventhorizon_store_up` gauge, so that load balancers and orchestrators
 * stop sending calls while the store is unreachable and resume when it answers again.
 */
export class StoreHealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private healthy: boolean | undefined;
  private stopped = false;

  constructor(
    private readonly options: {
      store: EventStore;
      health: HealthImplementation;
      /** Services whose status follows the store's. */
      services: string[];
      intervalMs: number;
      metrics: Metrics;
      logger: Logger;
    },
  ) {}

  /** The store's answer to the last ping; undefined before the first. */
  get serving(): boolean | undefined {
    return this.healthy;
  }

  /** Checks now, then every interval until `stop()`. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  /** Stops checking; the server's shutdown sets the final NOT_SERVING itself. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Pings the store once and updates the status. */
  async check(): Promise<boolean> {
    const { store, logger } = this.options;
    let healthy: boolean;
    try {
      healthy = await store.ping();
    } catch (error) {
      logger.debug({ err: error }, 'store ping failed');
      healthy = false;
    }
    if (this.stopped) return healthy;
    this.options.metrics.storeUp.set(healthy ? 1 : 0);
    if (healthy !== this.healthy) {
      if (this.healthy !== undefined || !healthy) {
        logger[healthy ? 'info' : 'error']({ healthy }, healthy ? 'store reachable again' : 'store unreachable');
      }
      this.healthy = healthy;
      for (const service of this.options.services) {
        this.options.health.setStatus(service, healthy ? 'SERVING' : 'NOT_SERVING');
      }
    }
    return healthy;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), this.options.intervalMs);
    // The monitor alone must not keep the process alive.
    this.timer.unref();
  }
}
