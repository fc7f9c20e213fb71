import assert from 'node:assert/strict';
import { AppendRequest } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { appendBody, grpcFrame, h2loadArgs, parseCpuLine, parseH2loadLog, parseH2loadOutput, timingScript } from '../../bench/h2load';
import { appendCallCounts, h2loadShape, measuredSeconds, verifyAppends, H2LOAD_FIGURES, type ServerCounts } from '../../bench/unary-h2load';

/**
 * The pure parts of the h2load figures (bench/h2load.ts, bench/unary-h2load.ts): the bodies h2load
 * sends, what it prints, and the check that keeps a figure only when the server really appended.
 */

/**
 * Captured: h2load 1.52.0 against Event Horizon, POSTing an Append to a stream that does not
 * exist (h2load -c 2 -m 1 --warm-up-time 200ms -D 1s). Every call failed with NOT_FOUND, and
 * h2load counts them all as succeeded: gRPC errors come in HTTP 200 responses.
 */
const CAPTURED_OUTPUT = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0.2s of warm-up time and 1s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Application protocol: h2c
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.20s, 1291.00 req/s, 60.78KB/s
requests: 1291 total, 1291 started, 1291 done, 1291 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1291 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 60.78KB (62242) total, 55.43KB (56763) headers (space savings 89.32%), 0B (0) data
                     min         max         mean         sd        +/- sd
time for request:      631us      9.60ms      1.53ms      1.14ms    89.00%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :     643.26      646.28      644.77        2.14   100.00%
`;
/** What the server's /metrics said after that run (the 155 calls past h2load's count are the warm-up's). */
const CAPTURED_METRICS = `# HELP eventhorizon_rpc_requests_total Finished RPCs by method and gRPC status code
# TYPE eventhorizon_rpc_requests_total counter
eventhorizon_rpc_requests_total{method="eventhorizon.v1.EventHorizon/Append",code="NOT_FOUND"} 1446
`;
/** The first lines of that run's --log-file. */
const CAPTURED_LOG = `1796121858865898	200	5635
1796121858866123	200	6965
1796121858871593	200	1707
`;
/** bash's \`time\` line after that run (TIMEFORMAT='h2load-cpu %3U %3S'). */
const CAPTURED_STDERR = 'h2load-cpu 0.025 0.046\n';

const counts = (ok: number, extra: Partial<ServerCounts> = {}): ServerCounts => ({ ok, cancelled: 0, otherErrors: 0, ...extra });

describe('bench: h2load figures', () => {
  describe('request bodies', () => {
    it('frames a message with the 5-byte gRPC prefix: uncompressed, big-endian length', () => {
      const frame = grpcFrame(Uint8Array.from([1, 2, 3]));
      assert.deepEqual([...frame], [0, 0, 0, 0, 3, 1, 2, 3]);
      assert.equal(grpcFrame(new Uint8Array(300)).readUInt32BE(1), 300);
    });

    it('encodes an Append that the server can repeat: no request id, no expected version, no event id', () => {
      const body = appendBody('/orders/o-1', { id: '', type: 'order.placed', data: Buffer.from('{"total":1}'), contentType: 'application/json', metadata: {}, occurredAt: undefined });
      assert.equal(body[0], 0);
      assert.equal(body.readUInt32BE(1), body.length - 5);
      const request = AppendRequest.decode(body.subarray(5));
      assert.equal(request.stream, '/orders/o-1');
      assert.equal(request.requestId, '');
      assert.equal(request.expectedVersion, undefined);
      assert.equal(request.events.length, 1);
      assert.equal(request.events[0]?.id, '');
      assert.equal(Buffer.from(request.events[0]?.data ?? []).toString(), '{"total":1}');
    });

    it('asks h2load for gRPC headers, a warm-up and a duration', () => {
      const args = h2loadArgs({ address: '127.0.0.1:5000', bodyFile: 'b.bin', logFile: 'l.tsv', connections: 64, streamsPerConnection: 1, warmupMs: 300, durationMs: 1500 });
      assert.deepEqual(args.slice(0, 6), ['-c', '64', '-m', '1', '-t', '1']);
      for (const pair of [['--warm-up-time', '300ms'], ['-D', '1500ms'], ['-d', 'b.bin'], ['--log-file', 'l.tsv']]) {
        assert.equal(args[args.indexOf(pair[0] as string) + 1], pair[1]);
      }
      assert.ok(args.includes('content-type: application/grpc') && args.includes('te: trailers'));
      assert.equal(args.at(-1), 'http://127.0.0.1:5000/eventhorizon.v1.EventHorizon/Append');
    });

    it('paces a job with a timing script of one call every 1/N s, covering the warm-up and the duration', () => {
      const job = { address: '127.0.0.1:5000', bodyFile: 'b.bin', logFile: 'l.tsv', connections: 1, streamsPerConnection: 1, warmupMs: 1000, durationMs: 2000 };
      const args = h2loadArgs({ ...job, callsPerSecond: 250 });
      assert.equal(args[args.indexOf('--timing-script-file') + 1], 'l.tsv.timing');
      // The script names the URI: none on the command line.
      assert.ok(!args.some((arg) => arg.startsWith('http://')));
      const lines = timingScript(job, 250).trimEnd().split('\n');
      assert.equal(lines.length, 1000);
      assert.deepEqual(lines.slice(0, 2), ['0.000\thttp://127.0.0.1:5000/eventhorizon.v1.EventHorizon/Append', '4.000\thttp://127.0.0.1:5000/eventhorizon.v1.EventHorizon/Append']);
      assert.throws(() => timingScript(job, 0), /positive rate/);
    });

    it('gives each of the 64 streams its own h2load process, one connection each, 64 calls in flight in every c=64 shape', () => {
      assert.deepEqual(H2LOAD_FIGURES.map((f) => [f.key, h2loadShape(f)]), [
        ['c1', { processes: 1, connections: 1, callsPerConnection: 1 }],
        ['c64m64', { processes: 1, connections: 1, callsPerConnection: 64 }],
        ['c64', { processes: 1, connections: 64, callsPerConnection: 1 }],
        ['c64s64', { processes: 64, connections: 1, callsPerConnection: 1 }],
      ]);
    });
  });

  describe('h2load output', () => {
    it('reads the summary of a captured run', () => {
      assert.deepEqual(parseH2loadOutput(CAPTURED_OUTPUT), {
        wallSeconds: 1.2, requestsPerSecond: 1291, total: 1291, started: 1291, done: 1291, succeeded: 1291, failed: 0, errored: 0, timeout: 0,
        status: { '2xx': 1291, '3xx': 0, '4xx': 0, '5xx': 0 },
      });
    });

    it('reads a run that finished in milliseconds', () => {
      assert.equal(parseH2loadOutput(CAPTURED_OUTPUT.replace('finished in 1.20s', 'finished in 523.12ms')).wallSeconds, 0.52312);
    });

    it('fails on output it does not understand rather than report zeros', () => {
      assert.throws(() => parseH2loadOutput('connect to 127.0.0.1 failed\n'), /not understood/);
    });

    it('reads latencies from the per-request log, in milliseconds', () => {
      assert.deepEqual(parseH2loadLog('1796121858865898\t200\t5635\n1796121858866123\t200\t6965\n1796121858866000\t200\t900\n'), {
        latenciesMs: [5.635, 6.965, 0.9], firstStartUs: 1796121858865898, lastEndUs: 1796121858866123 + 6965,
      });
      assert.equal(parseH2loadLog(CAPTURED_LOG).latenciesMs.length, CAPTURED_LOG.trim().split('\n').length);
      assert.throws(() => parseH2loadLog('1796121858865898\t200\n'), /not understood/);
    });

    it('takes the rate over the span of all processes\' calls when their windows are staggered', () => {
      const run = (firstStartUs: number, lastEndUs: number) => ({ log: { latenciesMs: [], firstStartUs, lastEndUs } });
      assert.equal(measuredSeconds([run(0, 1_490_000)], 1500), 1.5);
      assert.equal(measuredSeconds([run(0, 1_500_000), run(500_000, 2_000_000)], 1500), 2);
    });

    it("reads h2load's CPU time from the wrapper's line", () => {
      assert.equal(parseCpuLine(`some h2load noise\n${CAPTURED_STDERR}`), 0.025 + 0.046);
      assert.throws(() => parseCpuLine('nothing'), /not found/);
    });
  });

  describe('success verification', () => {
    it("counts Event Horizon's Append calls by status from its metrics", () => {
      assert.deepEqual(appendCallCounts(CAPTURED_METRICS), counts(0, { otherErrors: 1446 }));
      const more = [
        'eventhorizon_rpc_requests_total{method="eventhorizon.v1.EventHorizon/Append",code="OK"} 120',
        'eventhorizon_rpc_requests_total{method="eventhorizon.v1.EventHorizon/Append",code="CANCELLED"} 2',
        'eventhorizon_rpc_requests_total{method="eventhorizon.v1.EventHorizon/DescribeStream",code="OK"} 64',
        'eventhorizon_rpc_duration_seconds_count{method="eventhorizon.v1.EventHorizon/Append",code="OK"} 120',
      ].join('\n');
      assert.deepEqual(appendCallCounts(`${CAPTURED_METRICS}\n${more}\n`), counts(120, { cancelled: 2, otherErrors: 1446 }));
    });

    it('rejects the captured run: h2load counted successes, the server answered NOT_FOUND', () => {
      const problems = verifyAppends({
        runs: [parseH2loadOutput(CAPTURED_OUTPUT)], before: counts(0, { heads: 0 }), after: { ...appendCallCounts(CAPTURED_METRICS), heads: 0 }, inFlight: 2,
      });
      assert.deepEqual(problems, [
        'the server ended 1446 Append calls with an error status',
        'h2load counted 1291 successes but the server answered only 0 Append calls with OK',
      ]);
    });

    it('accepts a run whose successes the server answered OK and wrote, the warm-up and a cancelled call included', () => {
      const run = parseH2loadOutput(CAPTURED_OUTPUT);
      assert.deepEqual(verifyAppends({ runs: [run], before: counts(10, { heads: 20 }), after: counts(1456, { cancelled: 1, heads: 1467 }), inFlight: 2 }), []);
      // The baseline has no streams: its own count of answered appends is all there is.
      assert.deepEqual(verifyAppends({ runs: [run, run], before: counts(0), after: counts(2600), inFlight: 2 }), []);
    });

    it('rejects heads that did not move by the OK count, and more cancellations than calls in flight', () => {
      const run = parseH2loadOutput(CAPTURED_OUTPUT);
      assert.match(verifyAppends({ runs: [run], before: counts(0, { heads: 0 }), after: counts(1446, { heads: 1000 }), inFlight: 2 }).join(), /heads moved by 1000 entries/);
      assert.match(verifyAppends({ runs: [run], before: counts(0), after: counts(1446, { cancelled: 3 }), inFlight: 2 }).join(), /3 Append calls cancelled, more than the 2 in flight/);
    });

    it("rejects h2load's own failures and non-2xx responses", () => {
      const run = parseH2loadOutput(CAPTURED_OUTPUT);
      const failing = { ...run, failed: 2, status: { ...run.status, '5xx': 2 } };
      assert.deepEqual(verifyAppends({ runs: [run, failing], before: counts(0), after: counts(5000), inFlight: 2 }), [
        'h2load process 2: 2 failed, 0 errored, 0 timed out',
        'h2load process 2: 2 responses with an HTTP status other than 2xx',
      ]);
    });
  });
});
