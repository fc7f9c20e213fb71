import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium package (.ci/run installs it); playwright-core downloads no browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a quiet headless run on a machine without a display, sandbox or network. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Skips the suite, loudly, when Chromium is missing outside CI; in CI (CI=true) a missing
 * browser fails it instead, so that the browser tests cannot silently stop running.
 */
export function requireChromium(context: Pick<Mocha.Context, 'skip'>, executable = CHROMIUM, env: NodeJS.ProcessEnv = process.env): void {
  if (fs.existsSync(executable)) return;
  const reason = `${executable} is missing: install Debian's chromium package (apt-get install chromium) to run the browser tests`;
  if (env.CI === 'true') throw new Error(reason);
  process.stderr.write(`\n  !!! SKIPPING the web console's browser tests: ${reason}\n\n`);
  context.skip();
}

/** A headless Chromium with a fresh profile, removed on close. */
export interface TestBrowser {
  context: BrowserContext;
  page(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'eh-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
  return {
    context,
    page: () => context.newPage(),
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Takes a screenshot into `dir` and checks it structurally: each selector must match at least
 * the given number of visible elements when it is taken (not its pixels, which change with fonts
 * and Chromium versions). Returns the screenshot's path.
 */
export async function screenshotWith(page: Page, dir: string, name: string, expected: Record<string, number>): Promise<string> {
  const missing: string[] = [];
  for (const [selector, atLeast] of Object.entries(expected)) {
    const visible = await page.locator(selector).filter({ visible: true }).count();
    if (visible < atLeast) missing.push(`${selector}: ${visible} visible, expected at least ${atLeast}`);
  }
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (missing.length > 0) throw new Error(`screenshot ${file} lacks:\n  ${missing.join('\n  ')}`);
  const png = fs.readFileSync(file);
  if (png.subarray(1, 4).toString('latin1') !== 'PNG' || png.byteLength < 1000) throw new Error(`${file} is not a screenshot`);
  return file;
}
