import type { ServerConfig } from '../config/config';
import type { StoreHealthMonitor } from '../observability/health';
import type { Metrics } from '../observability/metrics';
import { SERVER_VERSION } from '../version';
import type { OverviewSource, TailKind } from './console-server';

/** What the overview reads. */
export interface OverviewParts {
  config: ServerConfig;
  metrics: Metrics;
  health: StoreHealthMonitor;
  /** Open feed subscriptions (SubscribeFeed calls and the console's feed tails). */
  feedConsumers(): number;
  encrypting: boolean;
  startedAt: Date;
}

/**
 * The console's overview: the server's health, store and version, and counters the page turns
 * into rates (appends/s, mean subscriber lag) from two readings, so that the server keeps no
 * per-viewer state. Everything here is also on the health check and /metrics; no stream data.
 */
export function overviewSource(parts: OverviewParts): OverviewSource {
  const { config, metrics } = parts;
  return async (tails: Record<TailKind, number>) => {
    const lag = await metrics.subscriptionLag.get();
    const lagValue = (suffix: string) => lag.values.find((v) => v.metricName === `eventhorizon_subscription_lag_seconds${suffix}`)?.value ?? 0;
    const serving = parts.health.serving;
    return {
      version: SERVER_VERSION,
      store: config.store,
      health: serving === undefined ? 'UNKNOWN' : serving ? 'SERVING' : 'NOT_SERVING',
      auth: config.auth,
      tls: config.tls.certFile !== undefined,
      mutualTls: config.tls.clientCaFile !== undefined,
      encryption: parts.encrypting,
      startedAt: parts.startedAt.toISOString(),
      now: new Date().toISOString(),
      counters: {
        appends: sum(await metrics.appends.get()),
        eventsAppended: sum(await metrics.events.get()),
        // Open subscriptions: gRPC Subscribe calls and the console's stream tails; the feed's
        // consumers include the console's feed tails and SubscribeFeed calls.
        subscribeCalls: sum(await metrics.subscriptions.get()),
        consoleStreamTails: tails.subscribe,
        feedSubscriptions: parts.feedConsumers(),
        consoleFeedTails: tails.feed,
        subscriberLagSecondsSum: lagValue('_sum'),
        subscriberLagCount: lagValue('_count'),
      },
    };
  };
}

function sum(metric: { values: Array<{ value: number }> }): number {
  return metric.values.reduce((total, { value }) => total + value, 0);
}
