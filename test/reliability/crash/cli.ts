import { parseArgs } from 'node:util';
import { seedFromEnv } from '../support/random';
import { runCrashRounds } from './run';

/**
 * `npm run crash -- --rounds 500 [--seed N] [--writers 16]`: the crash-consistency run at any
 * size, outside mocha. Exits 1 with the problems when a guarantee broke.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string' }, seed: { type: 'string' }, writers: { type: 'string' }, 'max-load-ms': { type: 'string' } },
  });
  const seed = values.seed !== undefined ? Number(values.seed) : seedFromEnv();
  const started = Date.now();
  const report = await runCrashRounds({
    rounds: Number(values.rounds ?? 100),
    seed,
    ...(values.writers !== undefined ? { writers: Number(values.writers) } : {}),
    ...(values['max-load-ms'] !== undefined ? { maxLoadMs: Number(values['max-load-ms']) } : {}),
    log: (line) => console.log(line),
  });
  console.log(JSON.stringify({ ...report, problems: report.problems.length, seconds: Math.round((Date.now() - started) / 1000) }));
  if (report.problems.length > 0) {
    console.error(report.problems.join('\n'));
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
