import { Counter, Histogram, type Registry } from 'prom-client';

/** What one pair of label values has observed: how many, their sum, and how many fell in each bucket. */
interface Tally<L extends string> {
  labels: Record<L, string>;
  count: number;
  sum: number;
  /** Observations per bucket, not cumulative; one more than the bounds, for those above them all. */
  perBucket: number[];
}

/** One exported sample, in the shape prom-client's own histogram gives its registry. */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
  /** prom-client's shape: null on buckets (no exemplars kept), undefined on the sum and count. */
  exemplar: null | undefined;
}

/** What prom-client's histogram answers `get` with (its typings do not export the type). */
type Exported<L extends string> = Awaited<ReturnType<Histogram<L>['get']>>;

/**
 * A Prometheus histogram with two labels whose observations skip prom-client's per-call work.
 * prom-client's `observe` hashes and validates the label object at every call (a cached
 * `labels(...)` child too); on the append path the RPC and store histograms did that twice per
 * call. Here an observation finds its tally through two Map lookups of the label values and
 * counts it; the tallies become samples only when Prometheus scrapes (`get`). It is registered
 * and exported as a prom-client Histogram, with the same series and text as before.
 */
export class TalliedHistogram<A extends string, B extends string> extends Histogram<A | B> {
  /** Tallies by the first label value, then the second. Set by reset(), which prom-client's constructor calls. */
  private declare tallies: Map<string, Map<string, Tally<A | B>>>;
  private readonly bounds: readonly number[];

  constructor(
    private readonly config: { name: string; help: string; labelNames: readonly [A, B]; buckets: readonly number[]; registers: Registry[] },
  ) {
    super({ ...config, labelNames: [...config.labelNames], buckets: [...config.buckets], registers: config.registers });
    // Ascending, as Prometheus requires (prom-client exports them in the order given).
    if (config.buckets.some((bound, i) => i > 0 && bound <= (config.buckets[i - 1] as number))) throw new Error(`${config.name}: buckets must ascend`);
    this.bounds = config.buckets;
    this.reset();
  }

  /** Counts one observation of `value` for the label values `a` and `b`. */
  record(a: string, b: string, value: number): void {
    let byB = this.tallies.get(a);
    if (!byB) this.tallies.set(a, (byB = new Map<string, Tally<A | B>>()));
    let tally = byB.get(b);
    if (!tally) {
      const [nameA, nameB] = this.config.labelNames;
      tally = { labels: { [nameA]: a, [nameB]: b } as Record<A | B, string>, count: 0, sum: 0, perBucket: new Array<number>(this.bounds.length + 1).fill(0) };
      byB.set(b, tally);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && value > (this.bounds[bucket] as number)) bucket++;
    tally.perBucket[bucket] = (tally.perBucket[bucket] ?? 0) + 1;
    tally.count++;
    tally.sum += value;
  }

  /** Every pair of label values seen, with its count: what a counter of the same calls exports. */
  *counts(): Iterable<{ labels: Record<A | B, string>; count: number }> {
    for (const byB of this.tallies.values()) for (const tally of byB.values()) yield tally;
  }

  /** What the registry formats as text: labels apart from the label values, as prom-client's histogram gives it. */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    for (const byB of this.tallies.values()) {
      for (const tally of byB.values()) {
        let cumulative = 0;
        this.bounds.forEach((bound, i) => {
          cumulative += tally.perBucket[i] ?? 0;
          values.push(sample({ le: bound }, cumulative, `${this.config.name}_bucket`, tally.labels, null));
        });
        values.push(
          sample({ le: '+Inf' }, tally.count, `${this.config.name}_bucket`, tally.labels, null),
          sample({}, tally.sum, `${this.config.name}_sum`, tally.labels),
          sample({}, tally.count, `${this.config.name}_count`, tally.labels),
        );
      }
    }
    return { name: this.config.name, help: this.config.help, type: 'histogram', aggregator: 'sum', values };
  }

  /** As JSON (getMetricsAsJSON): the label values among the labels. */
  override async get(): Promise<Exported<A | B>> {
    const metric = await this.getForPromString();
    const values = metric.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    // prom-client's typings give `type` as a numeric enum and ask for `collect`; at run time it is this.
    return { ...metric, values } as unknown as Exported<A | B>;
  }

  override reset(): void {
    this.tallies = new Map();
  }
}

function sample(
  labels: Record<string, string | number>, value: number, metricName: string, sharedLabels: Record<string, string>, exemplar?: null,
): Sample {
  return { labels, sharedLabels, value, metricName, exemplar };
}

/**
 * A counter of the same calls as `histogram` (its counts per pair of label values), read from it
 * when scraped: one tally per call for both series.
 */
export function countOf<A extends string, B extends string>(
  histogram: TalliedHistogram<A, B>,
  config: { name: string; help: string; labelNames: readonly [A, B]; registers: Registry[] },
): Counter<A | B> {
  return new Counter<A | B>({
    ...config,
    labelNames: [...config.labelNames],
    collect(this: Counter<A | B>) {
      this.reset();
      for (const { labels, count } of histogram.counts()) this.inc(labels, count);
    },
  });
}
