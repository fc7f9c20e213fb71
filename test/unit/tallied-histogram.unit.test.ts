import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { countOf, TalliedHistogram } from '../../src/observability/tallied-histogram';

const BUCKETS = [0.0005, 0.001, 0.005, 1];
const OBSERVED: Array<[string, string, number]> = [
  ['eventhorizon.v1.EventHorizon/Append', 'OK', 0.0003],
  ['eventhorizon.v1.EventHorizon/Append', 'OK', 0.0005],
  ['eventhorizon.v1.EventHorizon/Append', 'OK', 0.002],
  ['eventhorizon.v1.EventHorizon/Append', 'NOT_FOUND', 0.0007],
  ['eventhorizon.v1.EventHorizon/Read', 'OK', 3],
  ['eventhorizon.v1.EventHorizon/Append', 'OK', 0.9],
];

/** The same observations into prom-client's own histogram and counter, and into the tallied ones. */
function both() {
  const config = { name: 'calls_seconds', help: 'Calls by method and code', labelNames: ['method', 'code'] as const, buckets: BUCKETS };
  const counterConfig = { name: 'calls_total', help: 'Calls by method and code', labelNames: ['method', 'code'] as const };
  const reference = new Registry();
  const histogram = new Histogram({ ...config, labelNames: [...config.labelNames], registers: [reference] });
  const counter = new Counter({ ...counterConfig, labelNames: [...counterConfig.labelNames], registers: [reference] });
  const tallied = new Registry();
  const fast = new TalliedHistogram({ ...config, registers: [tallied] });
  countOf(fast, { ...counterConfig, registers: [tallied] });
  for (const [method, code, seconds] of OBSERVED) {
    histogram.observe({ method, code }, seconds);
    counter.inc({ method, code });
    fast.record(method, code, seconds);
  }
  return { reference, tallied, fast };
}

describe('TalliedHistogram', () => {
  it("exports the text of prom-client's histogram and counter for the same observations", async () => {
    const { reference, tallied } = both();
    const text = await tallied.metrics();
    assert.equal(text, await reference.metrics());
    assert.match(text, /^calls_seconds_bucket\{le="0.001",method="eventhorizon.v1.EventHorizon\/Append",code="OK"\} 2$/m);
    assert.match(text, /^calls_total\{method="eventhorizon.v1.EventHorizon\/Append",code="OK"\} 4$/m);
  });

  it('exports the same JSON, and nothing once reset', async () => {
    const { reference, tallied, fast } = both();
    assert.deepEqual(await tallied.getMetricsAsJSON(), await reference.getMetricsAsJSON());
    fast.reset();
    assert.deepEqual((await fast.get()).values, []);
    assert.doesNotMatch(await tallied.metrics(), /^calls_total\{/m);
  });

  it('refuses buckets that do not ascend', () => {
    assert.throws(
      () => new TalliedHistogram({ name: 'x_seconds', help: 'x', labelNames: ['a', 'b'] as const, buckets: [0.005, 0.001], registers: [] }),
      /buckets must ascend/,
    );
  });
});
