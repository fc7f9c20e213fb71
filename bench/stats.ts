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
