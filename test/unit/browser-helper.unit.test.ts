import assert from 'node:assert/strict';
import { requireChromium } from '../helpers/browser';

/** The browser tests may skip outside CI when Chromium is missing, never in CI. */
describe('browser tests without Chromium', () => {
  const missing = '/nonexistent/chromium';

  it('are skipped outside CI', () => {
    let skipped = false;
    const write = process.stderr.write.bind(process.stderr);
    let warned = '';
    process.stderr.write = ((chunk: string) => ((warned += chunk), true));
    try {
      requireChromium({ skip: () => ((skipped = true), undefined as never) }, missing, {});
    } finally {
      process.stderr.write = write;
    }
    assert.ok(skipped);
    assert.match(warned, /SKIPPING the web console's browser tests: \/nonexistent\/chromium is missing/);
  });

  it('fail in CI', () => {
    assert.throws(() => requireChromium({ skip: () => assert.fail('skipped in CI') }, missing, { CI: 'true' }), /chromium is missing/);
  });
});
