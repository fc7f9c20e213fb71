/** Small statistics helpers for benchmark samples. */

/** The q-quantile (0..1) of samples, by nearest rank; NaN for no samples. Sorts a copy. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** The median of the values: what BENCHMARKS.md reports for repeated runs. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  p50: number;
  p99: number;
  count: number;
}

/** Summarises latency samples (milliseconds). */
export function summarise(samples: readonly number[]): LatencySummary {
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), count: samples.length };
}

/** Latencies of events stamped with their send time, as the subscribers of a fan-out saw them. */
export interface StampedLatencies {
  sentAtMs: readonly number[];
  latenciesMs: readonly number[];
}

/**
 * The latency of a fan-out window: of the events sent from `startedMs` on, the summary, and the
 * p50 of those sent in its first and last thirds (whether a backlog grows).
 */
export function windowLatency(results: readonly StampedLatencies[], startedMs: number, durationMs: number): LatencySummary & { firstThirdP50: number; lastThirdP50: number } {
  const events = results.flatMap((r) => r.sentAtMs.map((at, i) => ({ since: at - startedMs, latency: r.latenciesMs[i] ?? Number.NaN })));
  const measured = events.filter((e) => e.since >= 0);
  const third = durationMs / 3;
  const sentIn = (from: number, to: number) => measured.filter((e) => e.since >= from && e.since < to).map((e) => e.latency);
  return {
    ...summarise(measured.map((e) => e.latency)),
    firstThirdP50: quantile(sentIn(0, third), 0.5),
    lastThirdP50: quantile(sentIn(2 * third, Number.POSITIVE_INFINITY), 0.5),
  };
}
