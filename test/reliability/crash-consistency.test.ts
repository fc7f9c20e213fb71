import assert from 'node:assert/strict';
import { seedFromEnv } from './support/random';
import { runCrashRounds } from './crash/run';

/** Rounds in CI; `EH_CRASH_ROUNDS` (or `npm run crash -- --rounds N`) runs more. */
const ROUNDS = Number(process.env.EH_CRASH_ROUNDS ?? 20);

describe('reliability: crash consistency of the embedded store (SIGKILL under append load)', function () {
  this.timeout(ROUNDS * 10_000 + 30_000);

  it(`keeps every acknowledged append exactly as acknowledged across ${ROUNDS} kill -9 rounds`, async () => {
    const seed = seedFromEnv();
    const report = await runCrashRounds({ rounds: ROUNDS, seed });
    assert.deepEqual(report.problems, [], `seed ${seed} (replay with EH_SEED=${seed}):\n${report.problems.join('\n')}`);
    assert.equal(report.rounds, ROUNDS);
    assert.ok((report.outcomes.acknowledged ?? 0) > ROUNDS * 10, `enough load: ${JSON.stringify(report.outcomes)}`);
  });
});
