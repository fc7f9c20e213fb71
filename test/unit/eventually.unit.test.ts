import assert from 'node:assert/strict';
import { eventually } from '../helpers/eventually';

describe('eventually()', () => {
  it('returns once the condition holds or the assertions pass', async () => {
    let calls = 0;
    await eventually(() => ++calls === 3, 1000);
    assert.equal(calls, 3);
    let tries = 0;
    await eventually(() => assert.ok(++tries >= 2), 1000);
    assert.equal(tries, 2);
  });

  it('fails after the timeout with the last assertion failure, or the description', async () => {
    let tries = 0;
    await assert.rejects(
      eventually(() => assert.ok(++tries < 0, `try ${tries}`), 60),
      (error: Error) => /^not within 60 ms: try \d+$/.test(error.message) && error.message !== 'not within 60 ms: try 1',
    );
    await assert.rejects(eventually(() => false, 30, () => 'still closed'), { message: 'not within 30 ms: still closed' });
  });
});
