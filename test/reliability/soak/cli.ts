import { parseArgs } from 'node:util';
import { parseDuration } from '../../../src/config/config';
import { seedFromEnv } from '../support/random';
import { runSoak, soakProblems } from './run';

/**
 * `npm run soak` (10 minutes) or `npm run soak -- --duration 60s` (the CI variant): the mixed
 * workload against a spawned server. Prints the report as JSON and exits 1 on errors, broken
 * subscriptions or memory growth past `--max-rss-growth` MiB.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10m' },
      seed: { type: 'string' },
      'pause-ms': { type: 'string' },
      'max-rss-growth': { type: 'string', default: '150' },
    },
  });
  const durationMs = parseDuration(values.duration);
  if (durationMs === undefined) throw new Error(`--duration ${values.duration}: not a duration such as 60s or 10m`);
  const seed = values.seed !== undefined ? Number(values.seed) : seedFromEnv();
  console.log(`soak: ${values.duration} of mixed load against a spawned server (seed ${seed})`);
  const report = await runSoak({
    durationMs,
    seed,
    ...(values['pause-ms'] !== undefined ? { pauseMs: Number(values['pause-ms']) } : {}),
    log: (line) => console.log(`  ${line}`),
  });
  console.log(JSON.stringify(report, null, 2));
  const problems = soakProblems(report, Number(values['max-rss-growth']));
  const appends = (report.operations.append ?? 0) + (report.operations['append-expected'] ?? 0);
  console.log(
    `soak: ${report.seconds} s, ${appends} appends, ${report.conflicts} expected-version conflicts, ` +
      `append p99 drift ×${report.appendP99Drift}, server RSS ${report.rssMiB.afterWarmUp} → ${report.rssMiB.end} MiB (peak ${report.rssMiB.peak})`,
  );
  if (problems.length > 0) {
    console.error(`soak FAILED:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log('soak passed: no errors, every subscription gapless, memory and descriptors steady');
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
